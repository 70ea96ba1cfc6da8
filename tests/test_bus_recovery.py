"""Bus events in the default `local` bridge mode are numbered alike on every process and replayable.

The history stores' numbering on its own (once per bus message, batches, new epochs) is pinned in
tests/test_history_numbering.py.
"""

from __future__ import annotations

import json
import os
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis
from channels.layers import channel_layers, get_channel_layer

from realtime.delivery.dispatch import asend_event
from realtime.delivery.history import get_history
from core.times import utc_now_iso
from tests.fixtures.bus import Bus, LiveClient, new_bus, publish_marker, shared_redis_url, spec_price_update
from tests.fixtures.spec_bus_messages import spec_bus_text
from tests.fixtures.spec_events import MarketAlertEvent
from tests.fixtures.waiting import aeventually
from tests.fixtures.ws import send_marker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PRICE = "market.price_update"
ALERT = "market.alert"


def unique_symbol() -> str:
    return "R" + uuid.uuid4().hex[:8].upper()


def is_price(symbol: str):
    return lambda frame: frame["event"] == PRICE and frame["data"]["symbol"] == symbol


def prices(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["event"] == PRICE]


async def subscribe(
    client: LiveClient,
    *,
    since: dict[str, Any] | None = None,
    symbols: list[str] | None = None,
    event_type: str = PRICE,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Subscribe to one event type; return the frames replayed before the confirmation, and the confirmation."""
    data: dict[str, Any] = {"event_types": [event_type]}
    if since is not None:
        data["since"] = {event_type: since}
    if symbols is not None:
        data["symbols"] = symbols
    await client.send({"type": "subscription", "event": "subscribe", "data": data})
    frames = await client.receive_until(lambda frame: frame["event"] == "subscription.confirmed")
    return frames[:-1], frames[-1]


def position(frame: dict[str, Any]) -> dict[str, Any]:
    return {"seq": frame["seq"], "epoch": frame["epoch"]}


async def history_reaches(bus: Bus, event_type: str, seq: int, timeout: float = 30) -> None:
    """Wait until the shared history has numbered `event_type` up to `seq`."""
    probe = redis.Redis.from_url(bus.redis_url)
    key = f"{bus.layer_prefix}:history:{event_type}:seq"
    try:
        # redis-py types `get` once for both clients (`Awaitable | Any`); the blocking one answers bytes or None.
        def numbered() -> bool:
            return int(probe.get(key) or 0) >= seq  # type: ignore[arg-type]

        await aeventually(numbered, timeout=timeout, message=f"history of {event_type} at {seq}")
    finally:
        probe.close()


def alert_data(symbol: str) -> dict[str, Any]:
    return {
        "alert_type": "price_threshold",
        "symbol": symbol,
        "message": f"{symbol} crossed",
        "severity": "info",
        "trigger_value": Decimal("1"),
        "current_value": Decimal("1"),
        "threshold": Decimal("1"),
        "timestamp": utc_now_iso(),
    }


def spec_alert(symbol: str) -> str:
    """An alert as a service written against the spec publishes it on the bus (floats)."""
    return spec_bus_text(
        MarketAlertEvent(
            alert_type="price_threshold",
            symbol=symbol,
            message=f"{symbol} crossed",
            severity="info",
            trigger_value=Decimal("1"),
            current_value=Decimal("1"),
            threshold=Decimal("1"),
            timestamp=utc_now_iso(),
        )
    )


@pytest.fixture
async def django_side_on(settings):
    """Point this test process's dispatch (channel layer and history) at a bus's Redis and prefix."""
    used: list[Bus] = []

    def use(bus: Bus) -> None:
        backend = os.environ.get("CHANNEL_LAYER_BACKEND", "core")
        settings.REDIS_URL = bus.redis_url
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"
                if backend == "pubsub"
                else "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [bus.redis_url], "prefix": bus.layer_prefix},
            }
        }
        channel_layers.backends.clear()
        used.append(bus)

    yield use
    if used:
        await get_channel_layer().flush()
        await get_history().client.aclose()
    channel_layers.backends.clear()


# Gateway processes on one bus


async def test_bus_event_reaches_a_subscriber_on_each_process_once_with_the_same_seq_and_epoch(
    gateways, live_clients, staff_user, other_staff_user
):
    # given two gateway processes in the default local mode, a price subscriber on each
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    on_a = await live_clients(process_a, staff_user)
    on_b = await live_clients(process_b, other_staff_user)
    (_, confirmed_a), (_, confirmed_b) = [await subscribe(client) for client in (on_a, on_b)]
    assert (confirmed_a["data"]["seq"], confirmed_a["data"]["epoch"]) == (
        confirmed_b["data"]["seq"],
        confirmed_b["data"]["epoch"],
    )
    start, epoch = confirmed_a["data"]["seq"], confirmed_a["data"]["epoch"]
    symbols = [unique_symbol() for _ in range(3)]

    # when a service publishes three prices on the bus as the spec's dispatcher does
    for symbol in symbols:
        assert bus.publish(spec_price_update(symbol, 50.25)) == 2

    # then each subscriber got each once, in bus order, numbered on from the stream's position
    got = {}
    for client in (on_a, on_b):
        frames = prices(await client.receive_until(is_price(symbols[-1])))
        assert [frame["data"]["symbol"] for frame in frames] == symbols
        assert [frame["seq"] for frame in frames] == [start + 1, start + 2, start + 3]
        assert {frame["epoch"] for frame in frames} == {epoch}
        await client.nothing_before(publish_marker(bus, client))  # no event twice
        got[client] = frames
    # and both processes sent the same frames (the one stored for replay), not each its own
    assert got[on_a] == got[on_b]
    assert got[on_a][0]["data"]["price"] == Decimal("50.25")


async def test_client_reconnecting_with_since_gets_the_bus_events_it_missed_in_order(
    gateways, live_clients, staff_user
):
    # given two gateway processes and a client on A that has seen one bus event
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    client = await live_clients(process_a, staff_user)
    await subscribe(client)
    first = unique_symbol()
    bus.publish(spec_price_update(first, 1.0))
    seen = await client.receive_event(PRICE)
    assert seen["data"]["symbol"] == first

    # when it disconnects, four events are published while no one subscribes anywhere, and it
    # comes back on the other process with `since`
    await client.close()
    missed = [unique_symbol() for _ in range(4)]
    for symbol in missed:
        bus.publish(spec_price_update(symbol, 2.0))
    await history_reaches(bus, PRICE, seen["seq"] + len(missed))
    again = await live_clients(process_b, staff_user)
    replayed, confirmed = await subscribe(again, since=position(seen))

    # then it gets exactly those four, in order, with their numbers, and is told it recovered
    assert [frame["data"]["symbol"] for frame in replayed] == missed
    assert [frame["seq"] for frame in replayed] == [seen["seq"] + n for n in (1, 2, 3, 4)]
    assert {frame["epoch"] for frame in replayed} == {seen["epoch"]}
    assert confirmed["data"]["recovered"] is True
    assert (confirmed["data"]["seq"], confirmed["data"]["epoch"]) == (seen["seq"] + 4, seen["epoch"])

    # and the next bus event follows live with the next number (each was stored once), no repeat
    live = unique_symbol()
    bus.publish(spec_price_update(live, 3.0))
    frame = await again.receive_event(PRICE)
    assert (frame["data"]["symbol"], frame["seq"]) == (live, seen["seq"] + 5)
    await again.nothing_before(publish_marker(bus, again))


async def test_bus_events_reach_symbol_subscribers_live_and_on_replay(gateways, live_clients, staff_user):
    # given a client narrowed to one instrument and one for all instruments, on one process
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1)
    wanted, other = unique_symbol(), unique_symbol()
    narrowed = await live_clients(process, staff_user)
    everything = await live_clients(process, staff_user)
    _, confirmed = await subscribe(narrowed, symbols=[wanted])
    await subscribe(everything)
    start = confirmed["data"]["seq"]

    # when prices of the other instrument and of the wanted one come over the bus
    bus.publish(spec_price_update(other, 1.0))
    bus.publish(spec_price_update(wanted, 2.0))
    bus.publish(spec_price_update(other, 3.0))

    # then the narrowed client gets only its instrument's, once, numbered among all prices
    frame = await narrowed.receive_event(PRICE)
    assert (frame["data"]["symbol"], frame["seq"]) == (wanted, start + 2)
    await everything.receive_until(lambda f: f["event"] == PRICE and f.get("seq") == start + 3)
    await narrowed.nothing_before(publish_marker(bus, narrowed))

    # when it reconnects with `since` before that price and its symbol filter
    await narrowed.close()
    again = await live_clients(process, staff_user)
    replayed, confirmed = await subscribe(again, since={"seq": start, "epoch": frame["epoch"]}, symbols=[wanted])

    # then the replay holds only its instrument's price
    assert [(f["data"]["symbol"], f["seq"]) for f in replayed] == [(wanted, start + 2)]
    assert confirmed["data"]["recovered"] is True and confirmed["data"]["seq"] == start + 3


async def test_bus_event_for_one_client_is_neither_numbered_nor_replayed(gateways, live_clients, staff_user):
    # given a price subscriber
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1)
    client = await live_clients(process, staff_user)
    _, confirmed = await subscribe(client)
    start, epoch = confirmed["data"]["seq"], confirmed["data"]["epoch"]

    # when a service sends a price to this client only, then a broadcast one
    targeted = spec_price_update(unique_symbol(), 1.0)
    targeted["target_client"] = client.client_id
    bus.publish(targeted)
    broadcast = unique_symbol()
    bus.publish(spec_price_update(broadcast, 2.0))

    # then the targeted one arrives without seq and takes no number from the broadcast stream
    frames = prices(await client.receive_until(is_price(broadcast)))
    assert [frame["target_client"] for frame in frames] == [client.client_id, None]
    assert "seq" not in frames[0] and "epoch" not in frames[0]
    assert frames[1]["seq"] == start + 1

    # and a replay from the start holds the broadcast only
    again = await live_clients(process, staff_user)
    replayed, _ = await subscribe(again, since={"seq": start, "epoch": epoch})
    assert [frame["data"]["symbol"] for frame in replayed] == [broadcast]


async def test_the_same_bus_message_twice_within_the_window_is_delivered_and_numbered_once(
    gateways, live_clients, staff_user
):
    # given a subscriber on each of two processes
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    clients = [await live_clients(process, staff_user) for process in (process_a, process_b)]
    start = (await subscribe(clients[0]))[1]["data"]["seq"]
    await subscribe(clients[1])

    # when a service publishes the very same bytes twice (a retried publish), then another event
    repeated, marker = json.dumps(spec_price_update(unique_symbol(), 1.0)), unique_symbol()
    bus.publish(repeated)
    bus.publish(repeated)
    bus.publish(spec_price_update(marker, 2.0))

    # then every client got it once, and the next event took the next number
    for client in clients:
        frames = prices(await client.receive_until(is_price(marker)))
        assert [frame["seq"] for frame in frames] == [start + 1, start + 2]
    for process in (process_a, process_b):
        assert "bus message dropped: the same bytes came within 60s already" in process.log()


async def test_events_from_django_and_from_the_bus_share_one_numbering_and_audience_holds_on_replay(
    gateways, live_clients, staff_user, other_staff_user, django_side_on
):
    # given two gateway processes, this process publishing on their Redis, and an alert subscriber
    # of two users on different processes (alerts: a type that may have an audience)
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    django_side_on(bus)
    anna = await live_clients(process_a, staff_user)
    bernd = await live_clients(process_b, other_staff_user)
    _, confirmed = await subscribe(anna, event_type=ALERT)
    start, epoch = confirmed["data"]["seq"], confirmed["data"]["epoch"]
    await subscribe(bernd, event_type=ALERT)
    symbols = [unique_symbol() for _ in range(5)]

    # when bus events and Django's own events (one of them for Anna only) alternate, each
    # numbered before the next is sent (events sent at the same moment on both ways may take
    # their numbers in either order)
    bus.publish(spec_alert(symbols[0]))
    await history_reaches(bus, ALERT, start + 1)
    await asend_event(ALERT, alert_data(symbols[1]), audience=[staff_user.pk])
    bus.publish(spec_alert(symbols[2]))
    await history_reaches(bus, ALERT, start + 3)
    await asend_event(ALERT, alert_data(symbols[3]))
    bus.publish(spec_alert(symbols[4]))

    # then Anna got all five numbered without a gap, Bernd the four meant for everyone
    def seen_all(expected):
        got = set()

        def match(frame):
            if frame["event"] == ALERT:
                got.add(frame["data"]["symbol"])
            return got >= set(expected)

        return match

    for client, expected in ((anna, symbols), (bernd, [s for s in symbols if s != symbols[1]])):
        # the two sources take different paths to a process, so arrival order may differ from seq
        frames = await client.receive_until(seen_all(expected), timeout=10)
        numbered = sorted((frame["data"]["symbol"], frame["seq"]) for frame in frames if frame["event"] == ALERT)
        assert numbered == sorted((symbol, start + 1 + symbols.index(symbol)) for symbol in expected)
        await client.nothing_before_all([publish_marker(bus, client), await send_marker(client)])

    # when both reconnect with `since` the start, each on the other process
    replays = {}
    for user, process in ((staff_user, process_b), (other_staff_user, process_a)):
        again = await live_clients(process, user)
        replayed, confirmed = await subscribe(again, since={"seq": start, "epoch": epoch}, event_type=ALERT)
        assert confirmed["data"]["recovered"] is True and confirmed["data"]["seq"] == start + 5
        replays[user] = [(frame["data"]["symbol"], frame["seq"]) for frame in replayed]

    # then the replay is in seq order, and Django's event for Anna only is not replayed to Bernd
    assert replays[staff_user] == [(symbol, start + 1 + n) for n, symbol in enumerate(symbols)]
    assert replays[other_staff_user] == [(symbol, seq) for symbol, seq in replays[staff_user] if symbol != symbols[1]]


async def test_bus_events_go_out_live_without_seq_while_the_history_is_unreachable(
    gateways, live_clients, staff_user, own_redis
):
    # given a gateway whose history (and channel layer) live on a Redis of this test's own, apart
    # from the bus's, and a price subscriber
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1, REDIS_URL=own_redis.url, REDIS_BUS_URL=bus.redis_url)
    client = await live_clients(process, staff_user)
    await subscribe(client)
    before = unique_symbol()
    bus.publish(spec_price_update(before, 1.0))
    assert "seq" in await client.receive_event(PRICE)

    # when the history's Redis dies and a price comes over the bus
    own_redis.kill()
    during = unique_symbol()
    bus.publish(spec_price_update(during, 2.0))

    # then it is delivered all the same, without seq, and the loss is logged
    frame = await client.receive_event(PRICE)
    assert frame["data"]["symbol"] == during and "seq" not in frame
    assert "event history unavailable" in process.log()

    # when the history's Redis is back, then bus events are numbered again (in a new epoch)
    own_redis.start()

    async def numbered() -> bool:
        bus.publish(spec_price_update(unique_symbol(), 3.0))
        return "seq" in await client.receive_event(PRICE)

    await aeventually(numbered, timeout=30, interval=0.2, message="bus events numbered again")
    assert "event history is back" in process.log()
    assert process.process.poll() is None
