"""The spec's Redis bus across two real gateway processes: events, targeted responses, commands."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
import redis

from realtime.delivery import messages
from core.times import utc_now_iso
from tests.fixtures.bus import (
    gateway_layer,
    new_bus,
    publish_marker,
    shared_redis_url,
    spec_command_response,
    spec_price_update,
)
from tests.fixtures.servers import BASE_DIR
from tests.fixtures.waiting import aeventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def unique_symbol() -> str:
    return "T" + uuid.uuid4().hex[:8].upper()


def saw_all_prices(symbols: list[str]):
    """Match the frame with which every one of `symbols` has arrived at least once."""
    seen: set[str] = set()

    def match(frame) -> bool:
        if frame["event"] == "market.price_update":
            seen.add(frame["data"]["symbol"])
        return seen >= set(symbols)

    return match


def is_price(symbol: str):
    return lambda frame: frame["event"] == "market.price_update" and frame["data"]["symbol"] == symbol


async def test_event_on_the_spec_bus_channel_reaches_each_subscriber_once_across_two_processes(
    gateways, live_clients, staff_user, other_staff_user
):
    # given two gateway processes on the spec's own channel names, a subscriber on each and a
    # second subscriber on the first
    bus = new_bus(shared_redis_url(), spec_names=True)
    process_a, process_b = gateways(bus)
    on_a = await live_clients(process_a, staff_user)
    also_on_a = await live_clients(process_a, other_staff_user)
    on_b = await live_clients(process_b, staff_user)
    for client in (on_a, also_on_a, on_b):
        await client.subscribe("market.price_update")
    symbol, marker = unique_symbol(), unique_symbol()

    # when a service publishes a price as the spec's dispatcher does, then a marker after it
    assert bus.publish(spec_price_update(symbol, 123.45)) >= 2
    bus.publish(spec_price_update(marker, 1.0))

    # then each client got the price exactly once, before the marker, with exact numbers
    for client in (on_a, also_on_a, on_b):
        frames = await client.receive_until(is_price(marker))
        prices = [f for f in frames if is_price(symbol)(f)]
        assert len(prices) == 1, frames
        assert prices[0]["type"] == "market"
        assert prices[0]["source_service"] == "market-data-service"
        assert prices[0]["data"]["price"] == Decimal("123.45")
        assert prices[0]["data"]["change"] == Decimal("23.45")


async def test_event_reaches_only_subscribers_of_its_type(gateways, live_clients, staff_user):
    # given a subscriber of prices and one of alerts only, on different processes
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    prices = await live_clients(process_a, staff_user)
    alerts = await live_clients(process_b, staff_user)
    await prices.subscribe("market.price_update")
    await alerts.subscribe("market.alert", "market.price_update")
    await alerts.send(
        {"type": "subscription", "event": "unsubscribe", "data": {"event_types": ["market.price_update"]}}
    )
    await alerts.receive_event("subscription.removed")
    symbol = unique_symbol()

    # when a price and then an alert are published
    bus.publish(spec_price_update(symbol, 10.5))
    bus.publish(
        {
            "type": "market",
            "event": "market.alert",
            "data": {
                "alert_type": "price_above",
                "symbol": symbol,
                "message": "above 10",
                "severity": "info",
                "trigger_value": 10.5,
                "current_value": 10.5,
                "threshold": 10,
                "timestamp": utc_now_iso(),
            },
            "timestamp": utc_now_iso(),
            "source_service": "alert-service",
        }
    )

    # then the price subscriber got the price, the alert subscriber only the alert
    assert (await prices.receive_event("market.price_update"))["data"]["symbol"] == symbol
    frames = await alerts.receive_until(lambda f: f["event"] == "market.alert")
    assert [f["event"] for f in frames] == ["market.alert"]


async def test_command_response_with_target_client_reaches_only_that_client_on_whichever_process(
    gateways, live_clients, staff_user
):
    # given one client on each process
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    on_a = await live_clients(process_a, staff_user)
    on_b = await live_clients(process_b, staff_user)

    # when a service answers the client on B, then the client on A, through the bus
    bus.publish(spec_command_response(on_b.client_id, "start_analysis", {"analysis_id": "an-b"}, "corr-b"))
    bus.publish(spec_command_response(on_a.client_id, "start_analysis", {"analysis_id": "an-a"}, "corr-a"))

    # then each got its own response and nothing for the other
    got_b = await on_b.receive_event("start_analysis.response")
    got_a = await on_a.receive_event("start_analysis.response")
    assert (got_b["correlation_id"], got_b["target_client"], got_b["data"]["result"]) == (
        "corr-b",
        on_b.client_id,
        {"analysis_id": "an-b"},
    )
    assert (got_a["correlation_id"], got_a["data"]["result"]["analysis_id"]) == ("corr-a", "an-a")
    assert got_a["type"] == "command_response" and got_a["data"]["status"] == "success"
    # a response for B sent after A's would have arrived at A first if A received B's at all
    assert [f["event"] for f in on_a.received] == ["start_analysis.response"]
    bus.publish(spec_command_response(on_a.client_id, "start_analysis", {"analysis_id": "last"}, "corr-z"))
    assert (await on_a.receive_event("start_analysis.response"))["correlation_id"] == "corr-z"
    assert [f["correlation_id"] for f in on_a.received] == ["corr-a", "corr-z"]


async def test_invalid_bus_messages_are_logged_with_a_reason_and_dropped(gateways, live_clients, staff_user):
    # given a subscriber on a gateway process
    bus = new_bus(shared_redis_url())
    (process,) = gateways(bus, count=1)
    client = await live_clients(process, staff_user)
    await client.subscribe("market.price_update")
    symbol = unique_symbol()
    wrong_type = spec_price_update(symbol, 1.0)
    wrong_type["data"]["volume"] = "many"
    missing = spec_price_update(symbol, 1.0)
    del missing["data"]["isin"]
    unknown = {"type": "market", "event": "market.moon_landing", "data": {}}

    # when malformed, unknown and ill-typed messages arrive, and then a valid one
    for bad in ("{not json", "[1, 2]", json.dumps(unknown), json.dumps(wrong_type), json.dumps(missing)):
        bus.publish(bad)
    bus.publish(spec_price_update(symbol, 2.5))

    # then only the valid one is delivered, the process lives, and each drop is logged with its
    # reason, once per reason within 10 s (the second ill-typed one is counted, not logged)
    frames = await client.receive_until(is_price(symbol))
    assert len(frames) == 1 and frames[0]["data"]["price"] == Decimal("2.5")
    assert process.process.poll() is None
    log = process.log()
    assert "bus message dropped: malformed JSON" in log
    assert "bus message dropped: not a JSON object" in log
    assert "bus message dropped: unknown event type 'market.moon_landing'" in log
    assert "bus message dropped: market.price_update: volume must be integer, got str (reason=invalid_data)" in log
    assert "missing isin" not in log


async def test_event_sent_by_another_process_through_the_channel_layer_reaches_clients_on_both_processes_once(
    gateways, live_clients, staff_user
):
    # given two gateway processes sharing a Redis channel layer, a subscriber on each
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    on_a = await live_clients(process_a, staff_user)
    on_b = await live_clients(process_b, staff_user)
    for client in (on_a, on_b):
        await client.subscribe("market.price_update")
    layer = gateway_layer([bus.redis_url], bus.layer_prefix)
    symbol, marker = unique_symbol(), unique_symbol()

    # when a third process (a service, the market feed) sends an event through the channel layer
    for sym in (symbol, marker):
        data = {
            "symbol": sym,
            "isin": "DE0007164600",
            "price": Decimal("101.25"),
            "previous_price": Decimal("100"),
            "change": Decimal("1.25"),
            "change_percent": Decimal("1.25"),
            "volume": 10,
            "timestamp": utc_now_iso(),
            "source": "feed",
        }
        message = messages.build_event_message("market.price_update", data)
        await layer.group_send(message["group"], message)

    # then each process's client got it once
    for client in (on_a, on_b):
        frames = await client.receive_until(is_price(marker))
        assert [f["data"]["price"] for f in frames if is_price(symbol)(f)] == [Decimal("101.25")]
    await layer.flush()


async def test_bridges_outside_the_gateways_deliver_each_bus_event_once(gateways, live_clients, staff_user, tmp_path):
    # given two gateways that leave the bus to two `manage.py event_bridge` processes
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus, BUS_BRIDGE="external")
    env = bus.gateway_env(BUS_BRIDGE="external")
    bridges = [
        subprocess.Popen(
            [sys.executable, "manage.py", "event_bridge"],
            cwd=BASE_DIR,
            env=env,
            stdout=(tmp_path / f"bridge-{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        on_a = await live_clients(process_a, staff_user)
        on_b = await live_clients(process_b, staff_user)
        for client in (on_a, on_b):
            await client.subscribe("market.price_update")
        probe = redis.Redis.from_url(bus.redis_url)
        lease = f"{bus.layer_prefix}:bus:bridge-leader"
        await aeventually(
            lambda: probe.pubsub_numsub(bus.events_channel)[0][1] == 2 and probe.get(lease),
            timeout=30,
            message="both bridges subscribed and a leader elected",
        )
        symbols = [unique_symbol() for _ in range(5)]

        # when a service publishes events on the bus
        assert bus.publish(spec_price_update(symbols[0], 77.5)) == 2
        for symbol in symbols[1:]:
            bus.publish(spec_price_update(symbol, 1.0))

        # then each client got each exactly once and in order, though two bridges heard them
        for client in (on_a, on_b):
            frames = await client.receive_until(is_price(symbols[-1]))
            assert [f["data"]["symbol"] for f in frames if f["event"] == "market.price_update"] == symbols
            assert frames[0]["data"]["price"] == Decimal("77.5")

        # when the leading bridge dies, and the service publishes again
        leader_pid = int(probe.get(lease).decode().split(":")[1])
        leader = next(bridge for bridge in bridges if bridge.pid == leader_pid)
        leader.kill()
        leader.wait()
        after = unique_symbol()
        assert bus.publish(spec_price_update(after, 5.0)) == 1

        # then the other bridge delivers it, once
        for client in (on_a, on_b):
            frames = await client.receive_until(is_price(after), timeout=8)
            assert [f["data"]["symbol"] for f in frames if f["event"] == "market.price_update"] == [after]
        probe.close()
    finally:
        for bridge in bridges:
            bridge.terminate()
            bridge.wait(timeout=10)


async def test_gateways_on_a_channel_layer_sharded_over_two_redis_hosts_deliver_across_processes(
    gateways, live_clients, staff_user, tmp_path
):
    # given two Redis servers of this test's own, and two gateways sharding the layer over both
    from tests.fixtures.servers import RedisServer

    shards = [RedisServer(tmp_path), RedisServer(tmp_path)]
    for shard in shards:
        shard.start()
    try:
        bus = new_bus(shards[0].url)
        hosts = ",".join(shard.url for shard in shards)
        process_a, process_b = gateways(bus, REDIS_URL=hosts)
        clients = [await live_clients(process, staff_user) for process in (process_a, process_b) for _ in range(4)]
        for client in clients:
            await client.subscribe("market.price_update")
        layer = gateway_layer([shard.url for shard in shards], bus.layer_prefix)
        symbols = [unique_symbol() for _ in range(3)]

        # when a service sends events through the sharded layer, and one on the bus
        for symbol in symbols[:2]:
            data = {
                "symbol": symbol,
                "isin": "DE0007164600",
                "price": Decimal("5"),
                "previous_price": Decimal("5"),
                "change": Decimal("0"),
                "change_percent": Decimal("0"),
                "volume": 1,
                "timestamp": utc_now_iso(),
                "source": "feed",
            }
            message = messages.build_event_message("market.price_update", data)
            await layer.group_send(message["group"], message)
        bus.publish(spec_price_update(symbols[2], 5.0))

        # then every client got each once, and both Redis servers hold part of the layer
        for client in clients:
            # the bus event takes another path than the layer's and may overtake them
            frames = await client.receive_until(saw_all_prices(symbols), timeout=15)
            got = [f["data"]["symbol"] for f in frames if f["event"] == "market.price_update"]
            assert sorted(got) == sorted(symbols)
            # no event twice: a marker on each path follows what came that way
            marker = messages.build_event_message(
                "market.price_update", {**data, "symbol": unique_symbol()}, target_client=client.client_id
            )
            await layer.group_send(marker["group"], marker)
            await client.nothing_before_all(
                [
                    publish_marker(bus, client),
                    {
                        "event": "market.price_update",
                        "target_client": client.client_id,
                        "data": {"symbol": marker["symbol"]},
                    },
                ]
            )
        for shard in shards:  # groups and channels live as keys (core) or subscriptions (pubsub)
            probe = redis.Redis.from_url(shard.url)
            used = probe.keys(f"{bus.layer_prefix}*") + probe.pubsub_channels(f"{bus.layer_prefix}*")
            probe.close()
            assert used, f"the channel layer does not use the shard {shard.url}"
        await layer.flush()
    finally:
        for shard in shards:
            shard.kill()
