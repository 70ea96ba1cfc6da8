"""Prometheus metrics move with real traffic; /metrics, /healthz and /readyz answer the right callers."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
import websockets
from websockets.typing import Origin
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from realtime.delivery.dispatch import asend_event
from realtime.delivery.outbox import Outbox
from tests.fixtures.servers import server_env, start_daphne
from tests.fixtures.ws import login_cookie, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def price_update(symbol: str = "SAP", price: str = "101.50") -> dict:
    return {
        "symbol": symbol,
        "isin": "DE0007164600",
        "price": Decimal(price),
        "previous_price": Decimal("100.00"),
        "change": Decimal(price) - Decimal("100.00"),
        "change_percent": Decimal("1.50"),
        "volume": 10,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "source": "test",
    }


def scrape(text: str) -> dict[tuple[str, tuple], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


# Access


def test_metrics_refuse_anonymous_callers_with_401(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"realtime_" not in response.content


def test_metrics_refuse_non_staff_users(client, non_staff_user):
    client.force_login(non_staff_user)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"realtime_" not in response.content


def test_metrics_refuse_a_wrong_bearer_token(client, settings):
    settings.METRICS_TOKEN = "right-token-123"
    response = client.get("/metrics", headers={"Authorization": "Bearer wrong-token-123"})
    assert response.status_code == 401


def test_metrics_refuse_any_bearer_token_when_none_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


def test_metrics_accept_the_configured_bearer_token(client, settings):
    settings.METRICS_TOKEN = "right-token-123"
    response = client.get("/metrics", headers={"Authorization": "Bearer right-token-123"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "realtime_connections" in {
        family.name for family in text_string_to_metric_families(response.content.decode())
    }


def test_metrics_are_readable_by_staff_sessions(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/metrics")
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "realtime_connections",
        "realtime_messages_received",
        "realtime_messages_sent",
        "realtime_events_published",
        "realtime_events_delivered",
        "realtime_event_delivery_seconds",
        "realtime_command_seconds",
        "realtime_errors",
        "realtime_messages_conflated",
        "realtime_messages_dropped",
        "realtime_subscriptions",
    } <= names


# Health


def test_healthz_answers_anyone_with_ok_only(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_readyz_answers_ready_when_database_and_channel_layer_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.content == b"ready\n"


def test_readyz_answers_503_without_details_when_the_channel_layer_is_unreachable(client, settings):
    from channels.layers import channel_layers

    from tests.fixtures.servers import free_port

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    channel_layers.backends.clear()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.content == b"not ready\n"


# Traffic


async def test_metrics_move_with_connect_send_deliver_fail_and_disconnect(ws_connect, staff_user):
    connections_before = value("realtime_connections")
    pings_before = value("realtime_messages_received_total", type="ping")
    invalid_before = value("realtime_messages_received_total", type="invalid")
    system_sent_before = value("realtime_messages_sent_total", type="system")
    published_before = value("realtime_events_published_total", event_type="market.price_update")
    delivered_before = value("realtime_events_delivered_total", event_type="market.price_update")
    latency_before = value("realtime_event_delivery_seconds_count", event_type="market.price_update")
    subscriptions_before = value("realtime_subscriptions", event_type="market.price_update")
    unknown_before = value("realtime_errors_total", code="unknown_command")
    bad_json_before = value("realtime_errors_total", code="invalid_message_format")
    commands_before = value("realtime_command_seconds_count", command="get_connection_info", status="success")

    client, connected = await ws_connect(cookie=await login_cookie(staff_user))
    assert connected
    assert value("realtime_connections") == connections_before + 1
    assert value("realtime_messages_sent_total", type="system") == system_sent_before + 1  # the welcome

    await client.send({"type": "ping", "event": "heartbeat", "data": {}})
    await client.receive_event("pong")
    assert value("realtime_messages_received_total", type="ping") == pings_before + 1

    await client.subscribe("market.price_update")
    assert value("realtime_subscriptions", event_type="market.price_update") == subscriptions_before + 1
    await asend_event("market.price_update", price_update())
    await client.receive_event("market.price_update")
    assert value("realtime_events_published_total", event_type="market.price_update") == published_before + 1
    assert value("realtime_events_delivered_total", event_type="market.price_update") == delivered_before + 1
    assert value("realtime_event_delivery_seconds_count", event_type="market.price_update") == latency_before + 1

    await client.command("get_connection_info")
    assert (
        value("realtime_command_seconds_count", command="get_connection_info", status="success") == commands_before + 1
    )

    await client.command("no_such_command")
    await client.send("{not json")
    await client.receive_event("invalid_message_format")
    assert value("realtime_errors_total", code="unknown_command") == unknown_before + 1
    assert value("realtime_errors_total", code="invalid_message_format") == bad_json_before + 1
    assert value("realtime_messages_received_total", type="invalid") == invalid_before + 1

    await client.close()
    for _ in range(50):
        if value("realtime_connections") == connections_before:
            break
        await asyncio.sleep(0.02)
    assert value("realtime_connections") == connections_before
    assert value("realtime_subscriptions", event_type="market.price_update") == subscriptions_before


async def test_conflated_and_dropped_frames_are_counted():
    gate = asyncio.Event()
    written = []

    async def slow_send(text: str) -> None:
        await gate.wait()
        written.append(text)

    overflowed = []
    outbox = Outbox(slow_send, limit=2, on_overflow=lambda: overflowed.append(True))
    conflated_before = value("realtime_messages_conflated_total")

    outbox.put("tick-1", conflate_key=("market.price_update", "SAP"))
    await asyncio.sleep(0)  # the writer takes tick-1 and waits at the gate
    outbox.put("tick-2", conflate_key=("market.price_update", "SAP"))
    outbox.put("tick-3", conflate_key=("market.price_update", "SAP"))
    assert value("realtime_messages_conflated_total") == conflated_before + 1

    outbox.put("a")
    outbox.put("b")
    outbox.put("c")  # one frame more than the limit: the socket is given up
    assert overflowed == [True]
    assert outbox.dropped == 3
    gate.set()


async def test_a_socket_that_stops_reading_counts_its_dropped_frames(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "SEND_QUEUE_LIMIT": 3}
    dropped_before = value("realtime_messages_dropped_total")
    closed_before = value("realtime_slow_consumer_disconnects_total")
    client, connected = await ws_connect(cookie=await login_cookie(staff_user))
    assert connected
    consumer_outbox_stuck = asyncio.Event()

    # Hold the writer of this connection so its queue fills up.
    from realtime.runtime.connections import connections

    connection = next(c for c in connections if c.client_id == client.received[0]["target_client"])
    original = connection.consumer.outbox._send

    async def stuck(text: str) -> None:
        await consumer_outbox_stuck.wait()
        await original(text)

    connection.consumer.outbox._send = stuck
    await client.send({"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.alert"]}})
    for _ in range(100):  # the confirmation gets stuck at the writer: watch the table instead
        if "market.alert" in connection.subscriptions:
            break
        await asyncio.sleep(0.01)
    for _ in range(5):
        await asend_event(
            "market.alert",
            {
                "alert_type": "price",
                "symbol": "SAP",
                "message": "moved",
                "severity": "info",
                "trigger_value": Decimal("1"),
                "current_value": Decimal("2"),
                "threshold": Decimal("1.5"),
                "timestamp": "2026-11-23T10:00:00.000Z",
            },
        )
    for _ in range(50):
        if value("realtime_slow_consumer_disconnects_total") > closed_before:
            break
        await asyncio.sleep(0.02)
    consumer_outbox_stuck.set()
    assert value("realtime_slow_consumer_disconnects_total") == closed_before + 1
    assert value("realtime_messages_dropped_total") >= dropped_before + 3


# A real server, several processes


def http_get(url: str, cookie: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie.decode()} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.e2e
def test_metrics_sum_connections_of_two_server_processes_in_multiprocess_mode(transactional_db, tmp_path, staff_user):
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    env = server_env(PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    first = start_daphne(tmp_path, env=env)
    second = start_daphne(tmp_path, env=env)
    cookie = session_cookie(staff_user)
    try:
        status, _ = http_get(f"{first.http_url}/metrics")
        assert status == 401

        async def connect_both_and_scrape() -> dict:
            headers = {"Cookie": cookie.decode()}
            async with (
                websockets.connect(
                    f"{first.ws_url}/", additional_headers=headers, origin=Origin(f"http://127.0.0.1:{first.port}")
                ) as one,
                websockets.connect(
                    f"{second.ws_url}/", additional_headers=headers, origin=Origin(f"http://127.0.0.1:{second.port}")
                ) as two,
            ):
                await one.recv()
                await two.recv()
                await one.send('{"type":"ping","event":"heartbeat","data":{}}')
                await one.recv()
                status, text = await asyncio.to_thread(http_get, f"{second.http_url}/metrics", cookie)
                assert status == 200, text
                return scrape(text)

        during = asyncio.run(connect_both_and_scrape())
        assert during[("realtime_connections", ())] == 2
        assert during[("realtime_messages_received_total", (("type", "ping"),))] == 1
        assert during[("realtime_messages_sent_total", (("type", "system"),))] == 3  # two welcomes, one pong

        for _ in range(50):
            status, text = http_get(f"{first.http_url}/metrics", cookie)
            if scrape(text)[("realtime_connections", ())] == 0:
                break
        assert scrape(text)[("realtime_connections", ())] == 0
    finally:
        first.stop()
        second.stop()
