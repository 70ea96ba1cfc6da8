"""The bus's inbound checks at their bounds: size, depth, strings, numbers, envelope and command responses."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from realtime.bus import bridge

from realtime.delivery import messages
from realtime.bus.inbound import (
    MAX_BUS_DEPTH,
    MAX_BUS_MESSAGE_BYTES,
    MAX_BUS_STRING,
    BusMessageRejected,
    DropReason,
    check_bus_value,
    parse_bus_message,
)
from realtime.wire.protocol import decode
from tests.fixtures.bus import spec_command_response, spec_price_update


def rejection(value) -> tuple[str, DropReason]:
    with pytest.raises(BusMessageRejected) as rejected:
        check_bus_value(value)
    return str(rejected.value), rejected.value.reason


def nested(depth: int):
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


ACCEPTED_VALUES = [
    nested(MAX_BUS_DEPTH),
    "x" * MAX_BUS_STRING,
    {"k" * MAX_BUS_STRING: 1},
    Decimal("1" * 40),
    Decimal("1e40"),
    Decimal("1e-40"),
    int("9" * 40),
    Decimal("0e-999"),
    0,
    True,
    1.5,
    None,
]


@pytest.mark.parametrize("value", ACCEPTED_VALUES, ids=range(len(ACCEPTED_VALUES)))
def test_a_value_within_every_bound_passes(value):
    assert check_bus_value(value) is None


OUT_OF_RANGE = DropReason.INVALID_VALUE
REJECTED_VALUES = [
    (nested(MAX_BUS_DEPTH + 1), "nested deeper than 32 levels"),
    ([[0]] * 2 + [nested(MAX_BUS_DEPTH)], "nested deeper than 32 levels"),
    ("x" * (MAX_BUS_STRING + 1), "a string longer than 65536 characters"),
    ({"k" * (MAX_BUS_STRING + 1): 1}, "a string longer than 65536 characters"),
    ({"k": "\ud800"}, "a string with a lone surrogate (not UTF-8)"),
    ({"\udfff": 1}, "a string with a lone surrogate (not UTF-8)"),
    ([Decimal("1" * 41)], "a number out of range (" + "1" * 40 + ")"),
    (Decimal("1e41"), "a number out of range (1E+41)"),
    (Decimal("-1e-41"), "a number out of range (-1E-41)"),
    (int("1" * 41), "a number out of range (" + "1" * 40 + ")"),
]


@pytest.mark.parametrize(("value", "message"), REJECTED_VALUES, ids=range(len(REJECTED_VALUES)))
def test_a_value_out_of_bounds_is_rejected_saying_which_bound(value, message):
    assert rejection(value) == (message, OUT_OF_RANGE)


def test_a_message_is_rejected_past_its_byte_limit_and_kept_at_it():
    raw = json.dumps(spec_price_update("SAP", 1.0))
    padded = raw[:-1] + " " * (MAX_BUS_MESSAGE_BYTES - len(raw)) + "}"
    assert len(padded) == MAX_BUS_MESSAGE_BYTES

    assert parse_bus_message(padded)["group"] == "ev.market.price_update"
    with pytest.raises(BusMessageRejected) as rejected:
        parse_bus_message(padded[:-1] + " }")
    assert (str(rejected.value), rejected.value.reason) == ("larger than 1048576 bytes", DropReason.TOO_LARGE)


def rejected(raw) -> tuple[str, DropReason]:
    with pytest.raises(BusMessageRejected) as refusal:
        parse_bus_message(raw if isinstance(raw, (str, bytes)) else json.dumps(raw))
    return str(refusal.value), refusal.value.reason


def price(**envelope) -> dict:
    raw = spec_price_update("SAP", 1.0)
    raw.update(envelope)
    return raw


def response(data=None, **envelope) -> dict:
    raw = spec_command_response("desk-7", "start_analysis", {"id": "a1"}, "c-1")
    if data is not None:
        raw["data"] = data
    raw.update(envelope)
    return raw


ENVELOPE = DropReason.INVALID_ENVELOPE
DATA = DropReason.INVALID_DATA
EXACTLY = "a command_response's data has exactly status, command and result"
STATUS = "status must be success or error, and command must match the event"
REJECTED_MESSAGES = [
    ("[" * 10_000 + "]" * 10_000, ("nested deeper than 32 levels", OUT_OF_RANGE)),
    ('"text"', ("not a JSON object", ENVELOPE)),
    (price(correlation_id=""), ("correlation_id must be a string of 1 to 128 characters", ENVELOPE)),
    (price(correlation_id="c" * 129), ("correlation_id must be a string of 1 to 128 characters", ENVELOPE)),
    (price(source_service=5), ("source_service must be a string of 1 to 256 characters", ENVELOPE)),
    (price(source_service="s" * 257), ("source_service must be a string of 1 to 256 characters", ENVELOPE)),
    (price(target_client="bad id!"), ("target_client must be a client id", ENVELOPE)),
    (price(target_client=7), ("target_client must be a client id", ENVELOPE)),
    (price(event=5), ("'type' and 'event' must be strings", ENVELOPE)),
    (price(type="system"), ("type 'system' does not match the category 'market' of market.price_update", ENVELOPE)),
    (
        price(type="s" * 50),
        (f"type {'s' * 40!r} does not match the category 'market' of market.price_update", ENVELOPE),
    ),
    (price(event="m" * 150), ("unknown event type " + repr("m" * 100), DropReason.UNKNOWN_EVENT)),
    (price(data={"symbol": "SAP"}), (None, DATA)),
    (response(target_client=None), ("a command_response needs a target_client", ENVELOPE)),
    (response(event="start_analysis"), ("a command_response's event is '<command>.response'", ENVELOPE)),
    (response(event="Bad Name.response"), ("a command_response's event is '<command>.response'", ENVELOPE)),
    (response(data=[]), (EXACTLY, DATA)),
    (response(data={"status": "success", "command": "start_analysis"}), (EXACTLY, DATA)),
    (response(data={"status": "fine", "command": "start_analysis", "result": 1}), (STATUS, DATA)),
    (response(data={"status": "error", "command": "other", "result": 1}), (STATUS, DATA)),
]


@pytest.mark.parametrize(("raw", "expected"), REJECTED_MESSAGES, ids=range(len(REJECTED_MESSAGES)))
def test_a_bad_bus_message_is_rejected_with_its_reason(raw, expected):
    message, reason = rejected(raw)

    assert reason == expected[1]
    if expected[0] is not None:
        assert message == expected[0]


def test_malformed_json_is_named_with_the_parsers_words():
    message, reason = rejected("{oops")

    assert reason == DropReason.MALFORMED_JSON
    assert message.startswith("malformed JSON (JSON is malformed: object keys must be strings (byte 1))")


def test_a_frame_that_cannot_be_built_is_rejected_as_invalid_data(monkeypatch):
    def failing(*args, **kwargs):
        raise TypeError("x" * 300)

    monkeypatch.setattr(messages, "build_event_message", failing)

    assert rejected(price()) == ("cannot be encoded (TypeError: " + "x" * 200 + ")", DATA)


def test_one_character_is_enough_for_a_correlation_id_and_a_source():
    frame = decode(parse_bus_message(json.dumps(price(correlation_id="c", source_service="s")))["text"])

    assert (frame["correlation_id"], frame["source_service"]) == ("c", "s")


def test_an_event_keeps_its_envelope_fields():
    message = parse_bus_message(
        json.dumps(price(correlation_id="c" * 128, source_service="s" * 256, target_client="desk-7"))
    )
    frame = decode(message["text"])

    assert message["group"] == "client.desk-7"
    assert (frame["correlation_id"], frame["source_service"], frame["target_client"]) == (
        "c" * 128,
        "s" * 256,
        "desk-7",
    )


def test_a_command_response_error_reaches_its_client_with_its_envelope():
    message = parse_bus_message(
        json.dumps(
            response(
                data={"status": "error", "command": "start_analysis", "result": {"code": "x"}},
                source_service="analysis",
            )
        )
    )
    frame = decode(message["text"])

    assert (message["type"], message["group"]) == (messages.DIRECT, "client.desk-7")
    assert (frame["event"], frame["correlation_id"], frame["source_service"], frame["target_client"]) == (
        "start_analysis.response",
        "c-1",
        "analysis",
        "desk-7",
    )
    assert frame["data"] == {"status": "error", "command": "start_analysis", "result": {"code": "x"}}


def test_the_bus_is_on_only_with_a_url_and_the_bridge_not_off(settings):
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": "redis://127.0.0.1:6379/0", "BRIDGE": "local"}
    assert bridge.bus_enabled() is True
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "BRIDGE": "off"}
    assert bridge.bus_enabled() is False
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": "", "BRIDGE": "local"}
    assert bridge.bus_enabled() is False


class Drops:
    """Stands in for the bridge's drop log: records what each drop was logged with."""

    def __init__(self) -> None:
        self.records: list[tuple] = []

    def record(self, reason, text, raw, *, exc_info=False) -> None:
        self.records.append((reason, text, raw, exc_info))


@pytest.fixture
def drops(monkeypatch) -> Drops:
    log = Drops()
    monkeypatch.setattr(bridge, "drops", log)
    return log


VALID = json.dumps(spec_price_update("SAP", 1.0)).encode()


def counts(subscriber) -> tuple[int, int, int]:
    return subscriber.received, subscriber.delivered, subscriber.dropped


async def test_a_valid_message_is_delivered_with_its_raw_bytes_sync_or_async(drops):
    handed = []

    async def deliver_later(message, raw):
        handed.append(("async", message["group"], raw))

    for deliver in (lambda message, raw: handed.append(("sync", message["group"], raw)), deliver_later):
        subscriber = bridge.BusBridge(deliver, url="redis://127.0.0.1:1/0")
        await subscriber.handle(VALID)
        assert counts(subscriber) == (1, 1, 0)

    assert handed == [("sync", "ev.market.price_update", VALID), ("async", "ev.market.price_update", VALID)]
    assert drops.records == []


async def test_each_message_a_bridge_cannot_deliver_is_dropped_alone_with_its_reason(drops, monkeypatch):
    outcomes = iter([BusMessageRejected("heard before", DropReason.DUPLICATE), RuntimeError("boom"), None])

    def deliver(message, raw):
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    subscriber = bridge.BusBridge(deliver, url="redis://127.0.0.1:1/0")
    await subscriber.handle(b"[]")
    await subscriber.handle(VALID)
    await subscriber.handle(VALID)
    await subscriber.handle(VALID)
    monkeypatch.setattr(bridge, "parse_bus_message", lambda raw: {}["missing"])
    await subscriber.handle(b"{}")

    assert counts(subscriber) == (5, 1, 4)
    assert drops.records == [
        (DropReason.INVALID_ENVELOPE, "not a JSON object", b"[]", False),
        (DropReason.DUPLICATE, "heard before", VALID, False),
        (DropReason.DELIVERY_FAILED, "RuntimeError: boom", VALID, True),
        (DropReason.INVALID_DATA, "KeyError: 'missing'", b"{}", True),
    ]


async def test_a_cancelled_delivery_is_not_a_drop(drops):
    def deliver(message, raw):
        raise asyncio.CancelledError

    subscriber = bridge.BusBridge(deliver, url="redis://127.0.0.1:1/0")
    with pytest.raises(asyncio.CancelledError):
        await subscriber.handle(VALID)

    assert counts(subscriber) == (1, 0, 0) and drops.records == []


async def test_every_delivered_message_is_counted(drops):
    handed = []
    subscriber = bridge.BusBridge(lambda message, raw: handed.append(raw), url="redis://127.0.0.1:1/0")

    for _ in range(3):
        await subscriber.handle(VALID)

    assert counts(subscriber) == (3, 3, 0) and handed == [VALID] * 3
