"""One bad message on the Redis bus is dropped alone: the subscription stays, the next one is numbered."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from realtime.bus import bridge, inbound

from realtime.delivery import messages
from realtime.bus.bridge import BusBridge, LocalDelivery
from realtime.bus.inbound import DropReason
from realtime.delivery.history import get_history
from realtime.wire.protocol import decode
from tests.fixtures.bus import shared_redis_url, spec_price_update

PRICE = "market.price_update"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def price_text(**data_changes: Any) -> str:
    raw = spec_price_update("SAP", 1.0)
    raw["data"].update(data_changes)
    return json.dumps(raw)


def price_with(field: str, literal: str) -> str:
    """A price update whose `data.<field>` is the JSON text `literal`, as written."""
    return price_text(**{field: "@@"}).replace('"@@"', literal)


# One message of every kind that once could (or still might) escape the bridge's validation,
# with the reason it is dropped for.
MALFORMED: dict[str, tuple[str | bytes, DropReason]] = {
    "command response nested 1000 deep": (
        json.dumps(
            {
                "type": "command_response",
                "event": "x.response",
                "target_client": "desk-1",
                "correlation_id": "c",
                "data": {"status": "success", "command": "x", "result": "@@"},
            }
        ).replace('"@@"', deep(1000)),
        DropReason.INVALID_VALUE,
    ),
    "command response nested 900 deep": (
        json.dumps(
            {
                "type": "command_response",
                "event": "x.response",
                "target_client": "desk-1",
                "correlation_id": "c",
                "data": {"status": "success", "command": "x", "result": "@@"},
            }
        ).replace('"@@"', deep(900)),
        DropReason.INVALID_VALUE,
    ),
    "nested 100000 deep": (deep(100_000), DropReason.INVALID_VALUE),
    "event data nested 40 deep": (price_with("source", deep(40)), DropReason.INVALID_VALUE),
    "huge exponent": (price_with("price", "1e999999999"), DropReason.INVALID_VALUE),
    "number with 60 digits": (price_with("price", "1." + "1" * 60), DropReason.INVALID_VALUE),
    "integer of 5000 digits": (price_with("volume", "9" * 5000), DropReason.INVALID_VALUE),
    "integer of 100 digits": (price_with("volume", "9" * 100), DropReason.INVALID_VALUE),
    "invalid UTF-8": (b"\xff\xfe\xfa" + price_text().encode(), DropReason.MALFORMED_JSON),
    "a JSON array": ("[1, 2]", DropReason.INVALID_ENVELOPE),
    "JSON null": ("null", DropReason.INVALID_ENVELOPE),
    "a JSON string": ('"market.price_update"', DropReason.INVALID_ENVELOPE),
    "truncated JSON": (price_text()[:40], DropReason.MALFORMED_JSON),
    "event of wrong type": ('{"type": ["market"], "event": "market.price_update"}', DropReason.INVALID_ENVELOPE),
    "field of wrong type": (price_with("volume", '"many"'), DropReason.INVALID_DATA),
    "data not an object": (json.dumps({**spec_price_update("SAP", 1.0), "data": [1]}), DropReason.INVALID_DATA),
    "string of 200000 characters": (price_text(source="x" * 200_000), DropReason.INVALID_VALUE),
    "NaN": (price_with("price", "NaN"), DropReason.MALFORMED_JSON),
    "Infinity": (price_with("price", "-Infinity"), DropReason.MALFORMED_JSON),
    "lone surrogate in a value": (price_with("source", '"\\ud800"'), DropReason.MALFORMED_JSON),
    "lone surrogate in a key": (price_text().replace('"source"', '"\\udfff"'), DropReason.MALFORMED_JSON),
    "unknown event type": (price_text().replace(PRICE, "market.moon"), DropReason.UNKNOWN_EVENT),
    "over the size limit": ("x" * (inbound.MAX_BUS_MESSAGE_BYTES + 1), DropReason.TOO_LARGE),
}


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("realtime_bus_messages_dropped_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_bus_message_is_rejected_with_a_reason_and_nothing_else_escapes(name):
    raw, reason = MALFORMED[name]
    with pytest.raises(inbound.BusMessageRejected) as caught:
        inbound.parse_bus_message(raw)
    assert caught.value.reason == reason, str(caught.value)


class Routed:
    """A stand-in fan-out that records what the bridge routes to this process's sockets."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def route(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.arrived.set()

    async def next_broadcast(self, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for position, message in enumerate(self.messages):
                    if messages.is_broadcast(message):
                        del self.messages[: position + 1]
                        return message
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def bus_on_redis(settings):
    """Point the bus and the history at the shared Redis, under names of this test's own."""
    tag = uuid.uuid4().hex[:10]
    settings.REDIS_URL = shared_redis_url()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [shared_redis_url()], "prefix": f"poison-{tag}"},
        }
    }
    channel = f"test-{tag}:events:websocket"
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": shared_redis_url(), "EVENTS_CHANNEL": channel}
    publisher = aioredis.Redis.from_url(shared_redis_url())
    yield publisher, channel
    keys = await publisher.keys(f"poison-{tag}:*")
    if keys:
        await publisher.delete(*keys)
    await publisher.aclose()
    await get_history().client.aclose()


async def test_each_malformed_message_is_dropped_alone_and_the_next_valid_one_is_delivered_and_numbered(bus_on_redis):
    # given the bridge of a process subscribed to the bus on a real Redis, numbering in its history
    publisher, channel = bus_on_redis
    routed = Routed()
    subscriber = BusBridge(LocalDelivery(routed))
    await subscriber.start()
    try:
        await publisher.publish(channel, price_text(symbol="FIRST"))
        last = decode((await routed.next_broadcast())["text"])["seq"]

        for name, (raw, reason) in MALFORMED.items():
            before = dropped(reason)
            # when a malformed message comes, then a valid one right behind it
            symbol = f"V{last}"
            await publisher.publish(channel, raw)
            await publisher.publish(channel, price_text(symbol=symbol))

            # then the valid one is the next thing delivered, with the next number, on the same
            # subscription, and the bad one was counted under its reason
            frame = decode((await routed.next_broadcast())["text"])
            assert (frame["data"]["symbol"], frame["seq"]) == (symbol, last + 1), name
            last = frame["seq"]
            assert dropped(reason) == before + 1, name
        assert subscriber.connected and subscriber.dropped == len(MALFORMED)
    finally:
        await subscriber.stop()


async def test_a_message_that_fails_to_build_or_to_route_is_dropped_alone(bus_on_redis, monkeypatch):
    # given a bridge whose frame building fails once, for one message, and routing once for another
    publisher, channel = bus_on_redis
    routed = Routed()
    build = messages.build_event_message
    route = routed.route

    def failing_build(event_type, data, **options):
        if data.get("symbol") == "BADBUILD":
            raise TypeError("cannot encode this")
        return build(event_type, data, **options)

    def failing_route(message):
        if b"BADROUTE" in message["text"].encode():
            raise RuntimeError("a socket's defect")
        route(message)

    monkeypatch.setattr(messages, "build_event_message", failing_build)
    routed.route = failing_route
    subscriber = BusBridge(LocalDelivery(routed))
    await subscriber.start()
    try:
        delivery_failures = dropped(DropReason.DELIVERY_FAILED)
        # when both come, each followed by a good one
        for symbol in ("BADBUILD", "GOOD1", "BADROUTE", "GOOD2"):
            await publisher.publish(channel, price_text(symbol=symbol))

        # then the good ones arrive in order and the subscription stays
        first, second = [decode((await routed.next_broadcast())["text"]) for _ in range(2)]
        assert [first["data"]["symbol"], second["data"]["symbol"]] == ["GOOD1", "GOOD2"]
        assert subscriber.connected and subscriber.dropped == 2
        assert dropped(DropReason.DELIVERY_FAILED) == delivery_failures + 1
    finally:
        await subscriber.stop()


def test_drops_of_one_reason_are_logged_once_per_interval_and_all_counted(caplog):
    log = bridge.DropLog()
    before = dropped(DropReason.MALFORMED_JSON)
    with caplog.at_level("WARNING", logger="realtime.bus.bridge"):
        for _ in range(50):
            log.record(DropReason.MALFORMED_JSON, "malformed JSON", b"{")
        log.record(DropReason.DUPLICATE, "the same bytes", b"{}")
    lines = [record.getMessage() for record in caplog.records if "bus message dropped" in record.getMessage()]
    assert len(lines) == 2 and "reason=malformed_json" in lines[0] and "reason=duplicate" in lines[1]
    assert dropped(DropReason.MALFORMED_JSON) == before + 50


@pytest.mark.django_db(transaction=True)
async def test_a_logged_drop_reaches_the_event_inspector_of_monitors_only(ws_connect, operator_user, staff_user):
    """The inspector (monitors) sees each logged drop as `system.bus_message_dropped`; a trader
    may not even subscribe to it."""
    from tests.fixtures.users import grant
    from tests.fixtures.ws import login_cookie

    await sync_to_async(grant)(operator_user, "realtime.monitor_gateway")
    monitor, _ = await ws_connect(cookie=await login_cookie(operator_user))
    trader, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await monitor.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.bus_message_dropped"]}}
    )
    assert (await monitor.receive_event("subscription.confirmed"))["data"]["event_type"] == "system.bus_message_dropped"
    await trader.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.bus_message_dropped"]}}
    )
    refused = await trader.receive_event("permission_denied")
    assert refused["data"]["event_type"] == "system.bus_message_dropped"

    log = bridge.DropLog()
    log.record(DropReason.MALFORMED_JSON, "malformed JSON", b'{"broken": \xff')
    log.record(DropReason.MALFORMED_JSON, "malformed JSON", b"{")  # within the interval: counted, not told

    shown = (await monitor.receive_event("system.bus_message_dropped"))["data"]
    assert (shown["reason"], shown["detail"], shown["dropped_since_last"]) == ("malformed_json", "malformed JSON", 0)
    assert shown["excerpt"].startswith('{"broken": ')
