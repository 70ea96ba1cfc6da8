"""The JSON encoding of the wire format: exact decimals, no NaN, every envelope key."""

import asyncio
from decimal import Decimal

import pytest

from realtime.delivery.outbox import Outbox
from realtime.wire.protocol import decode, encode, envelope
from core.times import isoformat, utc_now


def test_decimal_goes_out_as_the_exact_json_number():
    assert encode({"price": Decimal("100.10")}) == '{"price":100.10}'
    assert encode({"q": Decimal("0.000001"), "n": 3}) == '{"q":0.000001,"n":3}'


def test_incoming_fractions_are_parsed_as_decimal_and_integers_stay_integers():
    parsed = decode('{"price": 100.10, "quantity": 3, "tiny": 1e-7}')
    assert parsed == {"price": Decimal("100.10"), "quantity": 3, "tiny": Decimal("1E-7")}
    assert isinstance(parsed["price"], Decimal) and isinstance(parsed["quantity"], int)


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}'])
def test_nan_and_infinity_are_rejected_on_input(text):
    with pytest.raises(ValueError):
        decode(text)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_nan_and_infinity_are_never_written(value):
    with pytest.raises(ValueError):
        encode({"x": value})


def test_envelope_has_every_key_and_a_utc_timestamp():
    message = envelope("system", "pong", {"timestamp": "t"})
    assert list(message) == ["type", "event", "data", "timestamp", "correlation_id", "source_service", "target_client"]
    assert message["timestamp"].endswith("Z") and message["correlation_id"]
    assert isoformat(utc_now()).endswith("Z")


async def test_outbox_keeps_only_the_newest_tick_per_key_for_a_socket_behind():
    sent: list[str] = []

    async def record(text: str) -> None:
        sent.append(text)

    outbox = Outbox(record, limit=10, on_overflow=lambda: None)
    outbox.put("order-1")
    outbox.put("SAP@100", conflate_key=("market.price_update", "SAP"))
    outbox.put("SAP@101", conflate_key=("market.price_update", "SAP"))
    outbox.put("order-2")
    await outbox.flush()
    assert sent == ["order-1", "SAP@101", "order-2"]
    assert outbox.conflated == 1


async def test_outbox_gives_up_a_socket_that_cannot_take_messages_that_must_not_be_dropped():
    overflowed = []

    async def stuck(text: str) -> None:
        await asyncio.sleep(3600)

    outbox = Outbox(stuck, limit=3, on_overflow=lambda: overflowed.append(True))
    for number in range(5):
        outbox.put(f"fill-{number}")
    assert overflowed == [True]
    outbox.close()
