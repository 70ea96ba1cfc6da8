"""Property-based fuzzing of the client protocol: thousands of generated and mutated messages."""

import json

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.protocol import decode
from tests.fixtures.ws import session_cookie, socket_on_own_loop

pytestmark = pytest.mark.django_db(transaction=True)

ENVELOPE = {"type", "event", "data", "timestamp", "correlation_id", "source_service", "target_client"}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
names = st.sampled_from(sorted(EVENT_SCHEMAS) + ["market.nope", "Bad Name", "", "x" * 200, "system"]) | st.text(
    max_size=30
)
commands = st.sampled_from(["get_connection_info", "unknown_thing", "Drop Table", ""]) | st.text(max_size=30)

structured = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscription", "user", "ping", "pong", "error"]) | json_values},
    optional={
        "event": st.sampled_from(["subscribe", "unsubscribe", "heartbeat"]) | commands | json_values,
        "data": st.fixed_dictionaries(
            {}, optional={"event_types": st.lists(names, max_size=5) | json_values, "since": json_values}
        )
        | json_values,
        "correlation_id": st.text(max_size=40) | json_values,
        "timestamp": st.text(max_size=30),
    },
)


def mutate(text: str, data) -> str:
    """Insert, delete or replace characters of a valid message."""
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, max(len(chars) - 1, 0)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.sampled_from(list('{}[]",:0123456789aeNI\\ \x00é')))
        if action == "insert":
            chars.insert(position, char)
        elif chars and action == "delete":
            del chars[position]
        elif chars:
            chars[position] = char
    return "".join(chars)


VALID = [
    '{"type":"subscription","event":"subscribe","data":{"event_types":["market.price_update"]}}',
    '{"type":"ping","event":"heartbeat","data":{}}',
    '{"type":"user","event":"get_connection_info","data":{},"correlation_id":"abc"}',
    '{"type":"subscription","event":"unsubscribe","data":{"event_types":["market.alert"]}}',
]


def test_every_generated_message_is_answered_and_nothing_escapes(staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_PER_SECOND": 100000, "RATE_LIMIT_BURST": 100000}
    with socket_on_own_loop(session_cookie(staff_user)) as (loop, communicator):
        sent = {"count": 0}

        async def round_trip(text: str) -> list[dict]:
            sent["count"] += 1
            sentinel = f"sentinel-{sent['count']}"
            await communicator.send_input({"type": "websocket.receive", "text": text})  # empty frames too
            await communicator.send_to(
                text_data=json.dumps({"type": "ping", "event": "heartbeat", "correlation_id": sentinel})
            )
            replies = []
            while True:
                message = decode(await communicator.receive_from(timeout=5))
                assert set(message) == ENVELOPE, message
                if message["event"] == "pong" and message["correlation_id"] == sentinel:
                    break
                replies.append(message)
            if not replies:  # commands answer from their own task, possibly after the sentinel
                replies.append(decode(await communicator.receive_from(timeout=5)))
            return replies

        @hypothesis_settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.data())
        def check(data) -> None:
            kind = data.draw(st.sampled_from(["structured", "mutated", "raw"]))
            if kind == "structured":
                text = json.dumps(data.draw(structured), ensure_ascii=data.draw(st.booleans()))
            elif kind == "mutated":
                text = mutate(data.draw(st.sampled_from(VALID)), data)
            else:
                text = data.draw(st.text(max_size=60))
            replies = loop.run_until_complete(round_trip(text))
            assert replies, f"no answer to {text!r}"
            for reply in replies:
                assert reply["type"] in {"system", "error", "command_response"}, reply
                assert "Traceback" not in json.dumps(reply, default=str)

        check()
        assert sent["count"] >= 1500
        assert not communicator.future.done(), "the consumer crashed"
