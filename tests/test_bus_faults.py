"""Faults: Redis stops and comes back, a gateway process dies; the rest carries on."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from realtime.delivery import messages
from core.times import utc_now_iso
from tests.fixtures.bus import gateway_layer, new_bus, shared_redis_url, spec_price_update
from tests.fixtures.waiting import aeventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECOVERY_LIMIT = 5.0


def unique_symbol() -> str:
    return "F" + uuid.uuid4().hex[:8].upper()


def feed_price(symbol: str) -> dict:
    data = {
        "symbol": symbol,
        "isin": "DE0007164600",
        "price": 10,
        "previous_price": 10,
        "change": 0,
        "change_percent": 0,
        "volume": 1,
        "timestamp": utc_now_iso(),
        "source": "feed",
    }
    return messages.build_event_message("market.price_update", data)


async def first_price_after(client, send_next, limit: float) -> float:
    """Send prices until `client` receives one of them; return the seconds that took."""
    started = time.monotonic()
    sent: set[str] = set()
    while time.monotonic() - started < limit:
        symbol = unique_symbol()
        sent.add(symbol)
        try:
            await send_next(symbol)
        except Exception:  # the bus may refuse a publish while it comes back
            pass
        try:
            while True:
                frame = await client.receive(timeout=0.1)
                if frame["event"] == "market.price_update" and frame["data"]["symbol"] in sent:
                    return time.monotonic() - started
        except TimeoutError:
            continue
    raise AssertionError(f"no price reached the client within {limit}s")


async def test_redis_outage_keeps_processes_up_refuses_bus_commands_and_delivery_resumes_within_5s(
    own_redis, gateways, live_clients, stand_in_service, staff_user
):
    # given two gateways on a Redis of this test's own, a subscriber on each
    bus = new_bus(own_redis.url)
    process_a, process_b = gateways(bus, BUS_FORWARDED_COMMANDS="run_backtest")
    on_a = await live_clients(process_a, staff_user)
    on_b = await live_clients(process_b, staff_user)
    for client in (on_a, on_b):
        await client.subscribe("market.price_update")
    assert bus.publish(spec_price_update(unique_symbol(), 1.0)) == 2
    for client in (on_a, on_b):
        await client.receive_event("market.price_update")

    # when Redis dies
    own_redis.kill()

    # then the processes stay up, answer pings, and refuse a command that needs the bus at once
    assert (await on_a.ping("during-outage"))["correlation_id"] == "during-outage"
    asked = time.monotonic()
    refused = await on_b.command("run_backtest", {"symbol": "SAP"}, correlation_id="outage-1")
    assert time.monotonic() - asked < 4
    assert refused["data"]["status"] == "error"
    assert refused["data"]["result"]["code"] == "service_unavailable"
    assert process_a.process.poll() is None and process_b.process.poll() is None

    # when Redis comes back on the same port, with nothing of its former state
    own_redis.start()

    # then bus events reach both processes' clients again within 5 s, on their own
    for client in (on_a, on_b):
        took = await first_price_after(client, lambda symbol: _publish(bus, symbol), RECOVERY_LIMIT)
        print(f"bus delivery resumed {took:.2f}s after Redis came back")
        assert took < RECOVERY_LIMIT

    # and events through the channel layer (the processes re-joined their groups) too
    layer = gateway_layer([own_redis.url], bus.layer_prefix)

    async def via_layer(symbol):
        message = feed_price(symbol)
        await layer.group_send(message["group"], message)

    for client in (on_a, on_b):
        took = await first_price_after(client, via_layer, RECOVERY_LIMIT)
        print(f"channel-layer delivery resumed {took:.2f}s after the bus did")
        assert took < RECOVERY_LIMIT

    # and forwarded commands work again
    await stand_in_service(bus)
    answered = await on_b.command("run_backtest", {"symbol": "SAP"}, correlation_id="after-1")
    assert answered["data"]["status"] == "success"

    # and each process logged the loss and the recovery
    for process in (process_a, process_b):
        assert process.process.poll() is None
        log = process.log()
        assert "event bus lost" in log and "event bus is back" in log
        if os.environ.get("CHANNEL_LAYER_BACKEND", "core") == "core":
            # the pub/sub layer reconnects inside channels-redis, out of the fan-out's sight
            assert "channel layer lost" in log and "channel layer is back" in log
    await layer.flush()


async def _publish(bus, symbol: str) -> None:
    bus.publish(spec_price_update(symbol, 1.0))


async def test_clients_of_a_dead_gateway_reconnect_to_another_and_carry_on(
    gateways, live_clients, staff_user, other_staff_user
):
    # given two gateways, a client on each
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    on_a = await live_clients(process_a, staff_user)
    on_b = await live_clients(process_b, other_staff_user)
    for client in (on_a, on_b):
        await client.subscribe("market.price_update")

    # when process A dies
    process_a.process.kill()
    process_a.process.wait()

    # then its client sees the connection end, reconnects to B with its client id and carries on
    with pytest.raises(ConnectionClosed):
        await on_a.receive(timeout=5)
    again = await live_clients(process_b, staff_user, client_id=on_a.client_id)
    assert again.client_id == on_a.client_id
    await again.subscribe("market.price_update")
    symbol = unique_symbol()
    bus.publish(spec_price_update(symbol, 3.0))
    for client in (again, on_b):
        assert (await client.receive_event("market.price_update"))["data"]["symbol"] == symbol
    # and the client that was on B all along was not disturbed
    assert [f["event"] for f in on_b.received] == ["subscription.confirmed", "market.price_update"]


ORDER_EVENTS = ("trading.order_created", "trading.order_filled")


async def place_order(client, correlation_id: str, side: str = "buy") -> list[dict]:
    """Buy (or sell) one SAP at market; return the order's created and filled events.

    The events may come before the response (delivered from this process's fan-out at once) or
    after it (through the channel layer), so every frame up to all three is kept.
    """
    await client.send(
        {
            "type": "user",
            "event": "place_order",
            "correlation_id": correlation_id,
            "data": {"symbol": "SAP", "side": side, "quantity": 1, "order_type": "market"},
        }
    )
    seen: dict[str, dict] = {}

    def complete(frame: dict) -> bool:
        if frame["event"] == "place_order.response" and frame["correlation_id"] == correlation_id:
            seen["response"] = frame
        elif frame["event"] in ORDER_EVENTS:
            seen.setdefault(frame["event"], frame)
        return len(seen) == 3

    await client.receive_until(complete)
    response = seen["response"]
    assert response["data"]["status"] == "success", response
    events = [seen[name] for name in ORDER_EVENTS]
    assert {frame["data"]["order_id"] for frame in events} == {response["data"]["result"]["order_id"]}
    return events


async def test_orders_placed_while_redis_is_down_reach_open_sockets_live_and_numbering_resumes_in_a_new_epoch(
    own_redis, gateways, live_clients, trader, portfolio, sap
):
    # given a gateway on a Redis of this test's own and a trader subscribed to their order events
    bus = new_bus(own_redis.url)
    (process,) = gateways(bus, count=1)
    client = await live_clients(process, trader)
    await client.send({"type": "subscription", "event": "subscribe", "data": {"event_types": list(ORDER_EVENTS)}})
    confirmed = {}
    while len(confirmed) < 2:
        frame = await client.receive_event("subscription.confirmed")
        confirmed[frame["data"]["event_type"]] = frame["data"]
    before = await place_order(client, "before")
    assert [frame["epoch"] for frame in before] == [confirmed[name]["epoch"] for name in ORDER_EVENTS]

    # when Redis becomes unreachable, keeping its data, and the trader places an order
    own_redis.save()
    own_redis.kill()
    during = await place_order(client, "during")

    # then the order's events reach the open socket live, without seq and epoch
    assert all("seq" not in frame and "epoch" not in frame for frame in during)

    # when Redis is back with everything it held, then the next numbered events start a new epoch
    own_redis.start()
    attempts: list[list[dict]] = []

    async def numbered() -> bool:  # the gateway retries its history every second
        side = "sell" if len(attempts) % 2 == 0 else "buy"
        attempts.append(await place_order(client, f"after-{len(attempts) + 1}", side=side))
        return all("seq" in frame for frame in attempts[-1])

    await aeventually(numbered, timeout=30, interval=0.1, message="order events numbered again")
    after = attempts[-1]
    for frame, previous in zip(after, before):
        assert frame["epoch"] != previous["epoch"] and frame["seq"] == 1

    # and a client that replays from before the outage is told to reload
    again = await live_clients(process, trader)
    await again.send(
        {
            "type": "subscription",
            "event": "subscribe",
            "data": {
                "event_types": ["trading.order_created"],
                "since": {"trading.order_created": {"seq": before[0]["seq"], "epoch": before[0]["epoch"]}},
            },
        }
    )
    replied = await again.receive_event("subscription.confirmed")
    assert replied["data"]["recovered"] is False and replied["data"]["epoch"] == after[0]["epoch"]
