"""The service library's dispatchers over real Redis: the spec's message on its channel, the bus
errors, ids the gateway would drop, where their settings come from, Sentinel.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

import aktienanalyse_events as library
from aktienanalyse_events import BusError, SyncWebSocketEventDispatcher, WebSocketEventDispatcher, codec
from realtime.bus.inbound import parse_bus_message
from realtime.wire.protocol import decode
from tests.fixtures.bus import shared_redis_url
from tests.fixtures.servers import free_port
from tests.fixtures.service_library import Listener, channels


# Dispatcher, over real Redis


async def test_async_dispatcher_publishes_the_spec_message_on_its_channel():
    events_channel, _ = channels()
    async with Listener(events_channel) as gateway:
        async with WebSocketEventDispatcher(shared_redis_url(), events_channel, "risk-service") as dispatcher:
            alert = library.MarketAlertEvent(
                symbol="SAP", message="VaR breached", severity="critical", threshold=Decimal("1.05")
            )
            assert await dispatcher.emit_market_alert(alert) == 1
            await dispatcher.emit(alert, target_client="desk-7", correlation_id="c-9")
        broadcast, targeted = await gateway.next(), await gateway.next()

    assert (broadcast["type"], broadcast["event"], broadcast["source_service"]) == (
        "market",
        "market.alert",
        "risk-service",
    )
    assert broadcast["data"] == decode(codec.encode(alert.to_websocket_data())) and broadcast["data"][
        "threshold"
    ] == Decimal("1.05")
    assert "target_client" not in broadcast and broadcast["correlation_id"]
    assert (targeted["target_client"], targeted["correlation_id"]) == ("desk-7", "c-9")
    parse_bus_message(codec.encode(broadcast))  # the gateway takes both
    parse_bus_message(codec.encode(targeted))


async def test_sync_dispatcher_publishes_the_same_message():
    events_channel, _ = channels()
    async with Listener(events_channel) as gateway:
        with SyncWebSocketEventDispatcher(shared_redis_url(), events_channel, "batch-job") as dispatcher:
            receivers = await asyncio.to_thread(
                dispatcher.emit_price_update, library.PriceUpdateEvent(symbol="SAP", price=Decimal("142.37"))
            )
        message = await gateway.next()

    assert receivers == 1
    assert (message["event"], message["data"]["price"], message["source_service"]) == (
        "market.price_update",
        Decimal("142.37"),
        "batch-job",
    )


async def test_dispatcher_says_once_that_no_gateway_listens_and_once_that_one_does_again(caplog):
    events_channel, _ = channels()
    caplog.set_level("INFO", logger="aktienanalyse_events.dispatcher")
    async with WebSocketEventDispatcher(shared_redis_url(), events_channel) as dispatcher:
        unheard = [await dispatcher.emit(library.MarketAlertEvent(symbol="SAP")) for _ in range(3)]
        async with Listener(events_channel):
            heard = await dispatcher.emit(library.MarketAlertEvent(symbol="SAP"))

    assert (unheard, heard) == ([0, 0, 0], 1)
    assert [r.getMessage() for r in caplog.records] == [
        f"market.alert published on {events_channel}, but no gateway listens there",
        f"a gateway listens on {events_channel} again",
    ]


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_dispatcher_raises_bus_error_when_redis_cannot_be_reached(kind):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    event = library.MarketAlertEvent(symbol="SAP")
    with pytest.raises(BusError, match="market.alert not published"):
        if kind == "async":
            await WebSocketEventDispatcher(url).emit(event)
        else:
            await asyncio.to_thread(SyncWebSocketEventDispatcher(url).emit, event)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"target_client": "no spaces"}, "not a client id"),
        ({"correlation_id": "x" * 129}, "correlation_id"),
        ({"correlation_id": ""}, "correlation_id"),
    ],
)
async def test_dispatcher_refuses_ids_the_gateway_would_drop_before_publishing(options, error):
    with pytest.raises(BusError, match=error):
        await WebSocketEventDispatcher(f"redis://127.0.0.1:{free_port()}/0").emit(library.MarketAlertEvent(), **options)


def test_settings_come_from_arguments_then_the_gateways_environment_then_the_spec(monkeypatch):
    for name in ("REDIS_BUS_URL", "REDIS_URL", "BUS_EVENTS_CHANNEL", "BUS_COMMANDS_CHANNEL", "SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    spec = library.BusSettings.resolve()
    monkeypatch.setenv("REDIS_URL", "redis://a:6379/1, redis://b:6379/1")
    monkeypatch.setenv("SERVICE_NAME", "news")
    gateway = library.BusSettings.resolve()
    monkeypatch.setenv("REDIS_BUS_URL", "redis://bus:6379/2")
    given = library.BusSettings.resolve(redis_url="redis://mine/3", events_channel="ev")

    assert (spec.redis_url, spec.events_channel, spec.commands_channel) == (
        "redis://localhost:6379/0",
        "aktienanalyse:events:websocket",
        "aktienanalyse:events:user_commands",
    )
    assert (gateway.redis_url, gateway.service_name) == ("redis://a:6379/1", "news")
    assert (given.redis_url, given.events_channel, library.BusSettings.resolve().redis_url) == (
        "redis://mine/3",
        "ev",
        "redis://bus:6379/2",
    )


def test_settings_follow_the_gateways_sentinels_when_it_has_no_redis_url(monkeypatch):
    for name in ("REDIS_BUS_URL", "REDIS_URL", "REDIS_SENTINEL_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_SENTINELS", "10.0.0.5:26379, 10.0.0.6:26379")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "desk")

    settings = library.BusSettings.resolve()
    client = settings.sync_client()

    assert settings.redis_url == "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/desk/0"
    assert client.connection_pool.service_name == "desk"
    assert [s.connection_pool.connection_kwargs["host"] for s in client.connection_pool.sentinel_manager.sentinels] == [
        "10.0.0.5",
        "10.0.0.6",
    ]
    client.close()


async def test_dispatchers_publish_to_the_primary_the_sentinels_name(own_redis, tmp_path, monkeypatch):
    from tests.fixtures.servers import SentinelServer

    sentinel = SentinelServer(tmp_path, own_redis, master="bus-primary", quorum=1)
    sentinel.start()
    events_channel, _ = channels()
    listener = aioredis.Redis.from_url(own_redis.url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(events_channel)
    try:
        for name in ("REDIS_BUS_URL", "REDIS_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("REDIS_SENTINELS", f"127.0.0.1:{sentinel.port}")
        monkeypatch.setenv("REDIS_SENTINEL_MASTER", "bus-primary")
        async with WebSocketEventDispatcher(channel=events_channel, service_name="risk-service") as dispatcher:
            assert await dispatcher.emit(library.MarketAlertEvent(symbol="SAP")) == 1
        with SyncWebSocketEventDispatcher(channel=events_channel, service_name="batch-job") as sync_dispatcher:
            assert await asyncio.to_thread(sync_dispatcher.emit, library.MarketAlertEvent(symbol="SIE")) == 1
        heard = []
        async with asyncio.timeout(5):
            while len(heard) < 2:
                item = await pubsub.get_message(timeout=1)
                if item is not None:
                    heard.append(decode(item["data"]))
        assert [(m["source_service"], m["data"]["symbol"]) for m in heard] == [
            ("risk-service", "SAP"),
            ("batch-job", "SIE"),
        ]
    finally:
        await pubsub.aclose()
        await listener.aclose()
        sentinel.kill()
