"""get_system_status reports measured facts, and they change when a dependency goes down."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from channels.layers import channel_layers

from market import probes, status
from market.background import background_start, background_stop
from market.feed import PriceFeed
from market.probes import RateMeter
from market.status import StatusMonitor
from realtime.delivery.dispatch import asend_event
from realtime.wire.events import get_schema
from tests.fixtures.market import ScriptedMarket
from tests.fixtures.ws import login_cookie, matches, send_marker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_status_monitor")]


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()


async def operator(ws_connect, user):
    client, connected = await ws_connect(cookie=await login_cookie(user))
    assert connected
    return client


def price_update(price: str) -> dict:
    return {
        "symbol": "SAP",
        "isin": "DE0007164600",
        "price": Decimal(price),
        "previous_price": Decimal("100.00"),
        "change": Decimal(price) - Decimal("100.00"),
        "change_percent": Decimal("0.10"),
        "volume": 1,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "source": "test",
    }


def test_rate_meter_measures_the_counter_over_its_window():
    clock, counter = [0.0], [0]
    meter = RateMeter(lambda: counter[0], window=10, clock=lambda: clock[0])
    clock[0], counter[0] = 2.0, 40
    assert meter.per_second() == 20.0
    clock[0], counter[0] = 12.0, 60
    assert meter.per_second() == 2.0  # the base moved to t=2 (40): the newest sample at least 10 s old
    clock[0], counter[0] = 14.0, 60
    assert meter.per_second() == 20 / 12  # t=12 is not yet 10 s old: the base stays at t=2


async def test_status_reports_reachable_services_with_round_trip_times(
    ws_connect, operator_user, sap_at_100, patient_thresholds
):
    open_before = len(status.connections)  # the table is process-wide
    client = await operator(ws_connect, operator_user)
    response = await client.command("get_system_status")
    result = response["data"]["result"]
    services = result["services"]
    assert services["database"]["status"] == "online" and services["database"]["response_time_ms"] > 0
    assert services["channel_layer"]["status"] == "online" and services["channel_layer"]["response_time_ms"] > 0
    assert services["gateway"]["connections_open"] == open_before + 1
    # no feed ran: the feed is reported offline, and health says so
    assert services["market_feed"] == {
        **services["market_feed"],
        "status": "offline",
        "running": False,
        "last_tick_age_seconds": None,
    }
    assert (result["overall_health"], result["status"]) == (80, "degraded")


async def test_status_answers_the_specs_service_names_beside_the_measured_services(
    ws_connect, operator_user, sap_at_100, patient_thresholds, settings
):
    # given no feed and no periodic monitor running, with database and channel layer up
    settings.MARKET = {**settings.MARKET, "BUS_LATENCY_ALERT_MS": 60000}
    client = await operator(ws_connect, operator_user)

    result = (await client.command("get_system_status"))["data"]["result"]

    # then the spec's four names carry a bare status each, the detailed services stay as they were
    services = result["services"]
    assert {name: services[name] for name in ("core", "broker", "event_bus", "monitoring")} == {
        "core": "online",
        "broker": "degraded",  # orders still execute, at the last prices: no feed runs
        "event_bus": "online",
        "monitoring": "offline",  # the periodic checks do not run in this process
    }
    assert services["database"]["status"] == "online" and services["gateway"]["status"] == "online"


async def test_spec_service_names_follow_the_measured_services():
    # given measured services: a live feed, a slow database and a bus that is gone
    monitor = StatusMonitor()
    measured = {
        "database": {"status": "degraded"},
        "channel_layer": {"status": "online"},
        "bus": {"status": "offline"},
        "market_feed": {"status": "online"},
        "gateway": {"status": "online"},
    }
    monitor.running = True

    # then each spec name is the worst of what it stands for
    assert monitor._spec_services(measured) == {
        "core": "degraded",
        "broker": "degraded",
        "event_bus": "offline",
        "monitoring": "online",
    }


async def test_status_needs_the_system_permission(ws_connect, staff_user):
    client = await operator(ws_connect, staff_user)
    response = await client.command("get_system_status")
    assert response["data"]["result"]["code"] == "permission_denied"


async def test_feed_ticks_make_the_feed_online_with_its_last_tick_age(
    ws_connect, operator_user, sap_at_100, patient_thresholds
):
    client = await operator(ws_connect, operator_user)
    await PriceFeed(provider=ScriptedMarket({"SAP": ["100.10"]}), interval=1).run_round()
    result = (await client.command("get_system_status"))["data"]["result"]
    feed = result["services"]["market_feed"]
    assert (feed["status"], feed["running"], feed["mode"]) == ("online", True, "external")
    assert 0 <= feed["last_tick_age_seconds"] < 5
    assert result["overall_health"] == 100 and result["status"] == "online"


async def test_in_process_feed_is_reported_running(ws_connect, operator_user, sap_at_100, settings, in_memory_layer):
    settings.MARKET = {**settings.MARKET, "FEED_IN_PROCESS": True, "FEED_INTERVAL": 0.05}
    client = await operator(ws_connect, operator_user)
    try:
        await client.subscribe("market.price_update")
        await client.receive_event("market.price_update")
        feed = (await client.command("get_system_status"))["data"]["result"]["services"]["market_feed"]
        assert (feed["mode"], feed["running"], feed["status"]) == ("in_process", True, "online")
        assert feed["rounds"] >= 1
    finally:
        await background_stop()


async def test_events_delivered_per_second_is_measured(ws_connect, operator_user, sap_at_100, monkeypatch):
    monkeypatch.setattr(status, "delivery_rate", RateMeter(lambda: status.connections.messages_sent))
    client = await operator(ws_connect, operator_user)
    await client.subscribe("market.price_update")
    before = (await client.command("get_system_status"))["data"]["result"]["services"]["gateway"]
    for i in range(30):
        await asend_event("market.price_update", price_update(f"100.{i:02d}"))
    for _ in range(30):
        await client.receive_event("market.price_update")
    after = (await client.command("get_system_status"))["data"]["result"]["services"]["gateway"]
    assert after["messages_sent_total"] - before["messages_sent_total"] >= 31
    assert after["events_delivered_per_second"] > 0


async def test_service_status_is_published_on_change_and_performance_alert_once_per_crossing(
    ws_connect, operator_user, sap_at_100, settings
):
    # given an operator subscribed to system events, and a latency threshold every probe exceeds
    settings.MARKET = {**settings.MARKET, "CHANNEL_LAYER_LATENCY_ALERT_MS": 0.000001, "STATUS_HEARTBEAT": 3600}
    client = await operator(ws_connect, operator_user)
    await client.subscribe("system.service_status", "system.performance_alert")
    # when the status is asked for twice
    await client.command("get_system_status", correlation_id="first")
    await client.command("get_system_status", correlation_id="second")
    # (events travel through the channel layer and may trail the direct responses; the marker
    # follows them there)
    marker = await send_marker(client)
    await client.receive_until(lambda frame: matches(frame, marker), timeout=10)
    statuses, alerts = [], []
    for message in client.received:  # everything received, including what arrived before the responses
        if message["event"] == "system.service_status":
            statuses.append(get_schema("system.service_status").validate(message["data"]))
        elif message["event"] == "system.performance_alert":
            alerts.append(get_schema("system.performance_alert").validate(message["data"]))
    # then each service's status was published once (the second check changed nothing)
    expected = ["channel_layer", "database", "gateway", "market_feed"] + (["bus"] if settings.REDIS_URL else [])
    assert sorted(s["service_name"] for s in statuses) == sorted(expected)  # the bus is probed where there is one
    layer = next(s for s in statuses if s["service_name"] == "channel_layer")
    assert (layer["status"], layer["health_score"]) == ("degraded", 50)
    assert layer["response_time_ms"] > 0
    # and the latency alert fired once, as critical (far above twice the threshold)
    assert [(a["alert_type"], a["service_name"], a["metric_name"], a["severity"]) for a in alerts] == [
        ("high_latency", "channel_layer", "response_time_ms", "critical")
    ]
    assert alerts[0]["current_value"] > alerts[0]["threshold"]


async def test_periodic_monitor_publishes_service_status(ws_connect, operator_user, settings, in_memory_layer):
    settings.MARKET = {**settings.MARKET, "STATUS_INTERVAL": 0.05, "STATUS_HEARTBEAT": 0.01}
    client = await operator(ws_connect, operator_user)
    await client.subscribe("system.service_status")
    background_start()
    try:
        names = [(await client.receive_event("system.service_status"))["data"]["service_name"] for _ in range(8)]
    finally:
        await background_stop()
    assert names.count("database") >= 2  # published again by the next periodic check
    assert "monitoring" not in names and "core" not in names  # the spec's summary names are no service of their own


async def test_monitoring_is_online_while_the_periodic_checks_run(ws_connect, operator_user, settings, in_memory_layer):
    settings.MARKET = {**settings.MARKET, "STATUS_INTERVAL": 30}
    client = await operator(ws_connect, operator_user)
    background_start()
    try:
        running = (await client.command("get_system_status"))["data"]["result"]["services"]["monitoring"]
    finally:
        await background_stop()
    stopped = (await client.command("get_system_status"))["data"]["result"]["services"]["monitoring"]
    assert (running, stopped) == ("online", "offline")


async def test_status_changes_when_the_channel_layer_goes_down(
    ws_connect, operator_user, own_redis, settings, patient_thresholds
):
    # given the gateway on a Redis of this test's own
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [own_redis.url], "prefix": "status-test"},
        }
    }
    channel_layers.backends.clear()
    settings.MARKET = {**settings.MARKET, "PROBE_TIMEOUT": 1.0}
    client = await operator(ws_connect, operator_user)
    up = (await client.command("get_system_status", correlation_id="up"))["data"]["result"]
    assert up["services"]["channel_layer"]["status"] == "online"
    assert up["services"]["channel_layer"]["backend"] == "RedisChannelLayer"
    # when that Redis stops
    await asyncio.to_thread(own_redis.stop)
    down = (await client.command("get_system_status", correlation_id="down"))["data"]["result"]
    # then the layer is reported offline with the reason, its error rate rises and health drops by 30
    layer = down["services"]["channel_layer"]
    assert layer["status"] == "offline" and layer["error"]
    assert layer["error_rate"] == 0.5
    assert (up["services"]["event_bus"], down["services"]["event_bus"]) == ("online", "offline")
    assert down["services"]["database"]["status"] == "online"
    assert down["overall_health"] == up["overall_health"] - 30
    assert down["status"] != "online"


async def test_monitor_survives_a_failing_publish(settings, db, own_redis):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [own_redis.url]}}
    }
    channel_layers.backends.clear()
    settings.MARKET = {**settings.MARKET, "PROBE_TIMEOUT": 1.0}
    own_redis.stop()
    monitor = StatusMonitor()
    result = await monitor.check()
    assert result["services"]["channel_layer"]["status"] == "offline"
    assert monitor.published == {}  # nothing could be published; the next check tries again


async def test_status_reports_the_event_bus_with_its_round_trip_time_and_counts_it_in_health(
    settings, patient_thresholds
):
    # given a gateway whose bus Redis answers, then one whose bus Redis is gone, then one without a bus
    from tests.fixtures.servers import free_port

    settings.MARKET = {**settings.MARKET, "BUS_LATENCY_ALERT_MS": 60000, "PROBE_TIMEOUT": 1.0}
    redis_url = settings.REDIS_URL.split(",")[0] if settings.REDIS_URL else "redis://127.0.0.1:6379/0"
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": redis_url}
    reachable = await StatusMonitor().collect()
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": f"redis://127.0.0.1:{free_port()}/0"}
    unreachable = await StatusMonitor().collect()
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": ""}
    without = await StatusMonitor().collect()

    # then each says so, and a lost bus lowers the overall health by its penalty
    assert reachable["services"]["bus"]["status"] == "online" and reachable["services"]["bus"]["response_time_ms"] > 0
    assert unreachable["services"]["bus"]["status"] == "offline" and unreachable["services"]["bus"]["error"]
    assert unreachable["overall_health"] == reachable["overall_health"] - status.HEALTH_PENALTY[("bus", "offline")]
    assert "bus" not in without["services"]


async def test_the_bus_probe_asks_the_sentinels_for_the_primary(settings, own_redis, tmp_path):
    from aktienanalyse.redis import sentinel_location
    from tests.fixtures.servers import SentinelServer, free_port

    # given a bus behind a Sentinel that watches a running primary, and one whose sentinels are all gone
    sentinel = SentinelServer(tmp_path, own_redis, quorum=1)
    sentinel.start()
    settings.MARKET = {**settings.MARKET, "PROBE_TIMEOUT": 1.0}
    try:
        settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": sentinel_location(f"127.0.0.1:{sentinel.port}").url}
        reachable = await probes.bus_probe()
        settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": sentinel_location(f"127.0.0.1:{free_port()}").url}
        unreachable = await probes.bus_probe()
    finally:
        sentinel.kill()

    # then the first is online, the second offline saying no primary was found
    assert reachable.status == "online"
    assert unreachable.status == "offline" and "MasterNotFoundError" in unreachable.error
