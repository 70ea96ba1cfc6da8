"""Every command, with arguments a hostile or careless client sends: an answer, never a crash.

Hypothesis draws a command of the registry and a data object built from the argument names the
commands read, each with an odd value (wrong types, exotic numbers, other scripts' digits, deep
nesting, huge strings). Every answer must be a success or a refusal with a code other than
`internal_error`, the socket must stay open, and what the database holds afterwards must still
obey the precision of its columns and the rules of the books (no negative cash or quantity).
"""

import asyncio
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from portfolio.models import Portfolio, Position
from realtime.connection.commands import registry
from realtime.wire.protocol import decode
from tests.fixtures.ws import session_cookie, socket_on_own_loop
from trading.models import Order

pytestmark = pytest.mark.django_db(transaction=True)

# Commands that leave the process (forwarded to services on the bus) are not this test's subject.
COMMANDS = sorted(name for name in registry.names())
ARGUMENTS = [
    "symbol",
    "side",
    "quantity",
    "price",
    "stop_price",
    "order_type",
    "portfolio_id",
    "order_id",
    "client_order_id",
    "request_id",
    "avg_cost",
    "reason",
    "alert_id",
    "analysis_type",
    "client_id",
    "condition",
    "parameters",
    "threshold",
    "symbols",
    "event_types",
    "since",
    "alert_type",
    "message",
]
odd_text = st.sampled_from(
    [
        "",
        " ",
        "SAP",
        "sap",
        "buy",
        "sell",
        "market",
        "limit",
        "stop",
        "1",
        "0",
        "-1",
        "1e3",
        "1E-9",
        "NaN",
        "Infinity",
        "-0",
        "0.00001",
        "1_0",
        "١٢",
        "²",
        "０１",
        "1" * 60,
        "x" * 5000,
        "\x00",
        "\ud800",
        "' OR 1=1 --",
        "<script>",
        "technical",
        "fundamental",
        "sentiment",
        "price_above",
        "9" * 19,
    ]
)
odd_numbers = st.sampled_from([0, -1, 1, 2**63, -(2**63), 10**30, 1e308, -1e-308, 0.1, 1.5e-7, 123456789.123456789])
odd_values = st.recursive(
    st.none() | st.booleans() | odd_numbers | odd_text | st.integers(-(2**70), 2**70),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(ARGUMENTS) | st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
data_objects = st.dictionaries(st.sampled_from(ARGUMENTS), odd_values, max_size=6)

# Arguments a command accepts, so that one or two odd values reach past the first check.
NEAR_VALID: dict[str, dict[str, object]] = {
    "place_order": {"symbol": "SAP", "side": "buy", "quantity": 1, "order_type": "market"},
    "modify_order": {"order_id": "ORDER", "quantity": 2, "price": 150},
    "cancel_order": {"order_id": "ORDER"},
    "update_position": {"symbol": "SAP", "quantity": 5, "avg_cost": 100, "reason": "count"},
    "refresh_portfolio": {"portfolio_id": "PORTFOLIO"},
    "start_analysis": {"symbol": "SAP", "analysis_type": "technical"},
    "subscribe_alerts": {"symbol": "SAP", "condition": "price_above", "threshold": 100},
    "remove_alert": {"alert_id": 1},
}


def test_no_command_argument_makes_a_command_fail_unexpectedly(superuser, portfolio_with_position, sap, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_PER_SECOND": 100000, "RATE_LIMIT_BURST": 100000}
    portfolio_with_position.members.add(superuser)
    with socket_on_own_loop(session_cookie(superuser)) as (loop, communicator):
        answered: dict[str, int] = {}
        count = {"sent": 0}

        async def ask(command: str, data) -> dict:
            count["sent"] += 1
            correlation = f"fuzz-{count['sent']}"
            frame = {"type": "user", "event": command, "data": data, "correlation_id": correlation}
            text = json.dumps(frame, ensure_ascii=False)
            # A lone surrogate is no character: a real socket carries only UTF-8, so a client can send
            # one only escaped, and such a string is no text to read; the frame is refused whole,
            # before its correlation id is known.
            unreadable = any("\ud800" <= character <= "\udfff" for character in text)
            await communicator.send_to(text_data=json.dumps(frame) if unreadable else text)
            async with asyncio.timeout(10):
                while True:
                    message = decode(await communicator.receive_from(timeout=10))
                    if unreadable and message["type"] == "error":
                        assert message["data"]["code"] == "invalid_message_format", message
                        return message
                    if message.get("correlation_id") == correlation and message["type"] in (
                        "command_response",
                        "error",
                    ):
                        return message

        resting = loop.run_until_complete(
            ask("place_order", {"symbol": "SAP", "side": "buy", "quantity": 1, "order_type": "limit", "price": 100})
        )
        ids = {"ORDER": resting["data"]["result"]["order_id"], "PORTFOLIO": portfolio_with_position.pk}
        succeeded: dict[str, int] = {}

        @hypothesis_settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.data())
        def check(data) -> None:
            if data.draw(st.booleans()):
                command = data.draw(st.sampled_from(sorted(NEAR_VALID)))
                arguments = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in NEAR_VALID[command].items()}
                arguments.update(data.draw(st.dictionaries(st.sampled_from(ARGUMENTS), odd_values, max_size=2)))
            else:
                command = data.draw(st.sampled_from(COMMANDS))
                arguments = data.draw(data_objects | odd_values)
            answer = loop.run_until_complete(ask(command, arguments))
            text = json.dumps(answer, default=str)
            assert "Traceback" not in text and "internal_error" not in text, (command, arguments, answer)
            answered[command] = answered.get(command, 0) + 1
            if answer["type"] == "command_response" and answer["data"]["status"] == "success":
                succeeded[command] = succeeded.get(command, 0) + 1

        check()
        assert not communicator.future.done(), "the consumer crashed"
        assert set(answered) >= {"place_order", "cancel_order", "modify_order", "update_position"}
        assert succeeded.get("place_order"), "no drawn order got past the checks: the draws are too odd"

    # The books still obey their rules and every stored number fits its column exactly.
    for p in Portfolio.objects.all():
        assert p.cash >= 0 and p.cash == p.cash.quantize(Decimal("0.01"))
    for position in Position.objects.all():
        assert position.quantity >= 0
    for order in Order.objects.all():
        assert order.quantity > 0 and order.filled_quantity <= order.quantity
