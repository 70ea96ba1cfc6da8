"""The monitoring pages and commands: who sees them, what they list, and the audited disconnect."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets
from websockets.typing import Origin

from realtime.models import ConnectionTermination
from tests.fixtures.users import grant
from tests.fixtures.ws import login_cookie, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def monitor_user(django_user_model):
    """A staff member allowed to monitor the gateway."""
    user = django_user_model.objects.create_user("mona", password="mona-pass-1234", is_staff=True)
    grant(user, "realtime.monitor_gateway")
    return user


# Pages


@pytest.mark.parametrize("path", ["/monitoring/", "/monitoring/inspector/"])
def test_monitoring_pages_send_anonymous_callers_to_the_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", ["/monitoring/", "/monitoring/inspector/"])
def test_monitoring_pages_refuse_non_staff_users(client, non_staff_user, path):
    grant(non_staff_user, "realtime.monitor_gateway")
    client.force_login(non_staff_user)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/monitoring/", "/monitoring/inspector/"])
def test_monitoring_pages_refuse_staff_without_the_monitoring_permission(client, staff_user, path):
    client.force_login(staff_user)
    assert client.get(path).status_code == 403


def test_inspector_offers_the_event_types_the_operator_may_subscribe_to(client, monitor_user):
    client.force_login(monitor_user)
    response = client.get("/monitoring/inspector/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="market.price_update"' in html
    assert 'value="system.gateway_snapshot"' in html
    assert 'value="trading.order_filled"' not in html  # needs trading.view_order
    assert "js/monitoring.js" in html


# Live snapshots over the protocol


async def test_monitor_snapshot_lists_another_live_connection_with_its_traffic(ws_connect, monitor_user, staff_user):
    watched, _ = await ws_connect(cookie=await login_cookie(staff_user))
    watched_id = watched.received[0]["target_client"]
    await watched.subscribe("market.alert")
    monitor, _ = await ws_connect(cookie=await login_cookie(monitor_user))

    response = await monitor.command("monitor_snapshot", correlation_id="snap-1")
    snapshot = await monitor.receive_event("system.gateway_snapshot")

    assert response["data"]["status"] == "success"
    assert snapshot["type"] == "system"
    assert snapshot["target_client"] == monitor.received[0]["target_client"]
    listed = {c["client_id"]: c for c in snapshot["data"]["connections"]}
    assert listed[watched_id]["user"] == "anna"
    assert listed[watched_id]["subscriptions"] == ["market.alert"]
    assert listed[watched_id]["messages_in"] == 1
    assert listed[watched_id]["messages_out"] == 2  # welcome and confirmation
    assert snapshot["data"]["connections_total"] >= 2


async def test_monitoring_is_refused_without_the_permission(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    response = await client.command("monitor_snapshot")
    assert response["data"]["result"]["code"] == "permission_denied"
    await client.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.gateway_snapshot"]}}
    )
    assert (await client.receive())["event"] == "permission_denied"


# Audited disconnect


async def closed_with(client, timeout: float = 3) -> int:
    while True:
        output = await client.communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output["code"]


async def test_operator_disconnects_a_client_and_the_action_is_recorded(ws_connect, monitor_user, staff_user):
    target, _ = await ws_connect(cookie=await login_cookie(staff_user))
    target_id = target.received[0]["target_client"]
    monitor, _ = await ws_connect(cookie=await login_cookie(monitor_user))

    response = await monitor.command("disconnect_client", {"client_id": target_id, "reason": "drill"})

    assert response["data"]["status"] == "success"
    assert await closed_with(target) == 4009
    record = await ConnectionTermination.objects.select_related("operator", "client_user").aget()
    assert (record.operator.username, record.client_id, record.client_user.username, record.reason) == (
        "mona",
        target_id,
        "anna",
        "drill",
    )
    assert response["data"]["result"] == {"client_id": target_id, "audit_id": record.pk}


async def test_disconnecting_an_unknown_client_is_refused_and_records_nothing(ws_connect, monitor_user):
    monitor, _ = await ws_connect(cookie=await login_cookie(monitor_user))
    response = await monitor.command("disconnect_client", {"client_id": "never-seen"})
    assert response["data"]["result"]["code"] == "not_found"
    assert not await ConnectionTermination.objects.aexists()


async def test_disconnect_needs_the_monitoring_permission(ws_connect, staff_user, other_staff_user):
    target, _ = await ws_connect(cookie=await login_cookie(other_staff_user))
    target_id = target.received[0]["target_client"]
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    response = await client.command("disconnect_client", {"client_id": target_id})
    assert response["data"]["result"]["code"] == "permission_denied"
    assert not await ConnectionTermination.objects.aexists()
    await target.send({"type": "ping", "event": "heartbeat", "data": {}})
    assert (await target.receive_event("pong"))["type"] == "system"


@pytest.mark.parametrize("data", [{}, {"client_id": "has spaces"}, {"client_id": "ok", "reason": 5}])
async def test_disconnect_with_malformed_input_is_a_validation_error(ws_connect, monitor_user, data):
    monitor, _ = await ws_connect(cookie=await login_cookie(monitor_user))
    response = await monitor.command("disconnect_client", data)
    assert response["data"]["result"]["code"] == "validation_error"
    assert not await ConnectionTermination.objects.aexists()


# Against a real server


@pytest.mark.e2e
def test_monitoring_page_of_a_running_server_lists_a_live_connection_by_client_id(
    daphne_server, monitor_user, staff_user
):
    cookie = session_cookie(staff_user).decode()
    monitor_cookie = session_cookie(monitor_user).decode()

    async def scenario() -> tuple[str, str]:
        async with websockets.connect(
            f"{daphne_server.ws_url}/ops-probe-1",
            additional_headers={"Cookie": cookie},
            origin=Origin(f"http://127.0.0.1:{daphne_server.port}"),
        ) as socket:
            welcome = await socket.recv(decode=True)  # the welcome is a text frame
            request = urllib.request.Request(
                f"{daphne_server.http_url}/monitoring/", headers={"Cookie": monitor_cookie}
            )
            page = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read().decode())
            return welcome, page

    welcome, page = asyncio.run(scenario())
    assert '"client_id":"ops-probe-1"' in welcome
    assert 'data-client-id="ops-probe-1"' in page


@pytest.mark.e2e
def test_monitoring_sees_and_disconnects_a_client_of_another_server_process(ops_servers, monitor_user, staff_user):
    first, second = ops_servers(), ops_servers()
    cookie = session_cookie(staff_user).decode()
    monitor_cookie = session_cookie(monitor_user).decode()

    def connect(server, path, cookie):
        return websockets.connect(
            f"{server.ws_url}/{path}", additional_headers={"Cookie": cookie}, origin=f"http://127.0.0.1:{server.port}"
        )

    async def frames_until(socket, predicate):
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=15))
            if predicate(message):
                return message

    async def scenario():
        async with connect(second, "far-away-1", cookie) as watched, connect(first, "", monitor_cookie) as monitor:
            await watched.recv()
            await monitor.recv()
            snapshots = {}
            while "far-away-1" not in {c["client_id"] for s in snapshots.values() for c in s["connections"]}:
                await monitor.send('{"type":"user","event":"monitor_snapshot","data":{},"correlation_id":"s"}')
                snapshot = await frames_until(monitor, lambda m: m["event"] == "system.gateway_snapshot")
                snapshots[snapshot["data"]["process"]] = snapshot["data"]
            await monitor.send(
                '{"type":"user","event":"disconnect_client","data":{"client_id":"far-away-1"},"correlation_id":"d"}'
            )
            response = await frames_until(monitor, lambda m: m["event"] == "disconnect_client.response")
            try:
                while True:
                    await asyncio.wait_for(watched.recv(), timeout=15)
            except websockets.ConnectionClosed:
                pass
            return snapshots, response, watched.close_code

    snapshots, response, close_code = asyncio.run(scenario())
    far = next(s for s in snapshots.values() if any(c["client_id"] == "far-away-1" for c in s["connections"]))
    assert far["process"].endswith(f":{second.process.pid}")
    assert response["data"]["status"] == "success"
    assert close_code == 4009
    assert ConnectionTermination.objects.filter(client_id="far-away-1", operator=monitor_user).exists()


def test_a_connection_counts_the_events_its_outbox_took_from_the_fan_out():
    """The fan-out counts a socket's events on its outbox; the connection's figures include them."""
    from types import SimpleNamespace

    from realtime.runtime.connections import Connection

    outbox = SimpleNamespace(fanned_out=0, fanned_out_at=0.0)
    connection = Connection(
        client_id="c",
        user_id=1,
        username="u",
        remote_addr=None,
        origin=None,
        connected_at=None,
        subscriptions=set(),
        consumer=None,
        outbox=outbox,
    )
    connection.touch_out()  # a frame of its own (a confirmation)
    own_at = connection.last_activity
    outbox.fanned_out, outbox.fanned_out_at = 3, own_at + 5  # three events written by the fan-out since

    assert (connection.frames_out, connection.active_at) == (4, own_at + 5)
    assert (
        Connection(
            client_id="c",
            user_id=1,
            username="u",
            remote_addr=None,
            origin=None,
            connected_at=None,
            subscriptions=set(),
            consumer=None,
        ).frames_out
        == 0
    )


def test_monitoring_pages_have_titles_of_their_own(client, monitor_user):
    client.force_login(monitor_user)

    titles = {
        path: client.get(path).content.decode().split("<title>")[1].split("</title>")[0]
        for path in ("/monitoring/", "/monitoring/inspector/", "/")
    }

    assert len(set(titles.values())) == 3, titles


def test_monitoring_lists_gateway_errors_apart_from_business_refusals_by_code():
    """The page's list of the gateway's own error codes is the protocol's codes minus the refusals."""
    import re
    from pathlib import Path

    from django.conf import settings

    from realtime.wire.protocol import ErrorCode

    source = (Path(settings.BASE_DIR) / "static" / "ts" / "monitoring.ts").read_text()
    listed = set(re.findall(r'"([a-z_]+)"', source.split("const GATEWAY_ERROR_CODES = new Set([")[1].split("]);")[0]))
    refusals = {ErrorCode.VALIDATION_ERROR, ErrorCode.NOT_FOUND, ErrorCode.PERMISSION_DENIED}

    assert listed == {str(code) for code in ErrorCode} - {str(code) for code in refusals}


# Language


def monitoring_config(response) -> dict:
    html = response.content.decode()
    return json.loads(html.split('<script id="monitoring-config" type="application/json">')[1].split("</script>")[0])


@pytest.mark.parametrize("path", ["/monitoring/", "/monitoring/inspector/"])
def test_monitoring_pages_speak_the_readers_language_in_the_page_and_in_the_scripts_texts(client, monitor_user, path):
    client.force_login(monitor_user)

    german = client.get(path, HTTP_ACCEPT_LANGUAGE="de")
    english = client.get(path, HTTP_ACCEPT_LANGUAGE="en")

    assert "Event-Inspektor" in german.content.decode() and "Event inspector" in english.content.decode()
    assert "Event-Inspektor" not in english.content.decode()
    german_strings, english_strings = monitoring_config(german)["strings"], monitoring_config(english)["strings"]
    assert (german_strings["disconnect"], english_strings["disconnect"]) == ("Trennen", "Disconnect")
    assert (german_strings["error_unknown_command"], english_strings["error_unknown_command"]) == (
        "Unbekannter Befehl.",
        "Unknown command.",
    )
    same = {"service_gateway", "pause", "overall_health"}  # read alike in both
    untranslated = sorted(
        key for key in german_strings if german_strings[key] == english_strings[key] and key not in same
    )
    assert untranslated == []


def test_the_connections_page_in_english_has_no_german_heading_left(client, monitor_user):
    client.force_login(monitor_user)

    html = client.get("/monitoring/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    for german in ("Benutzer", "Letzte Fehler", "Fachliche Ablehnungen", "Systemzustand", "Verbunden seit", "Gesamt"):
        assert f">{german}<" not in html and f">{german} <" not in html, german
    assert "Recent errors" in html and "Business refusals" in html and "Connected since" in html


async def test_a_recent_error_keeps_its_code_and_details_for_the_page_to_word_it(ws_connect, monitor_user):
    from realtime.runtime import metrics

    monitor, _ = await ws_connect(cookie=await login_cookie(monitor_user))
    response = await monitor.command("disconnect_client", {"client_id": 7}, correlation_id="bad-id-1")

    result = response["data"]["result"]
    error = next(e for e in reversed(metrics.recent_errors) if e["correlation_id"] == "bad-id-1")
    details = {key: value for key, value in result.items() if key not in ("error", "code")}
    assert details, result  # the refusal names what was wrong
    assert (error["code"], error["params"], error["message"]) == (result["code"], details, result["error"])
