"""The operations tools against a running server: tail_events, emit_event, ws_client; tool tokens."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command

from aktienanalyse.asgi import application
from core.exceptions import PermissionDenied
from realtime.connection import access
from realtime.models import AccessToken
from realtime.wire.protocol import CloseCode
from realtime.services import access_token_issue, access_token_revoke
from tests.fixtures.servers import BASE_DIR
from tests.fixtures.waiting import aeventually
from tests.fixtures.ws import HOST, ORIGIN, login_cookie, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

ALERT = (
    '{"alert_type":"price","symbol":"SAP","message":"drill","severity":"warning","trigger_value":1.50,'
    '"current_value":2.25,"threshold":1.75,"timestamp":"2026-11-23T10:00:00.000Z"}'
)


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def run_tool(server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run one management command against `server` and collect its exit code and output."""
    return subprocess.run(
        manage(*args), cwd=BASE_DIR, env=server.env, input=stdin, capture_output=True, text=True, timeout=120
    )


# Tool tokens


async def token_handshake(key: str | None, header: bytes | None = None) -> bool:
    headers = [(b"host", HOST), (b"origin", ORIGIN)]
    if key is not None or header is not None:
        headers.append((b"authorization", header or f"Bearer {key}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected


async def test_a_staff_token_opens_a_socket_and_a_revoked_one_does_not(staff_user):
    token, key = await database_sync_to_async(access_token_issue)(user=staff_user, name="laptop")
    assert await token_handshake(key) is True
    await database_sync_to_async(access_token_revoke)(token=token)
    assert await token_handshake(key) is False


async def test_an_open_token_socket_outlives_the_access_checks_and_closes_when_the_token_is_revoked(
    staff_user, settings, monkeypatch
):
    settings.REALTIME = {**settings.REALTIME, "REVALIDATE_SECONDS": 0.1}
    checks = []
    judge = access.access_verdicts
    monkeypatch.setattr(
        access, "access_verdicts", lambda *args, **kwargs: checks.append(args) or judge(*args, **kwargs)
    )
    token, key = await database_sync_to_async(access_token_issue)(user=staff_user, name="laptop")
    communicator = WebsocketCommunicator(
        application,
        "/ws/",
        headers=[(b"host", HOST), (b"origin", ORIGIN), (b"authorization", f"Bearer {key}".encode())],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.receive_from()  # welcome
    await aeventually(lambda: len(checks) >= 3, message="three access checks of the open socket")
    await communicator.send_to(text_data='{"type":"ping","event":"heartbeat","data":{}}')
    assert '"pong"' in await communicator.receive_from()

    await database_sync_to_async(access_token_revoke)(token=token)
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
    assert output["code"] == CloseCode.SESSION_ENDED


async def test_only_the_digest_of_a_token_is_stored(staff_user):
    token, key = await database_sync_to_async(access_token_issue)(user=staff_user, name="laptop")
    stored = await AccessToken.objects.aget(pk=token.pk)
    assert key not in (stored.key_digest, stored.key_prefix, stored.name)
    assert stored.key_prefix == key[:8]


@pytest.mark.parametrize("header", [b"Bearer not-a-token", b"Bearer ", b"Basic YW5uYTpwdw=="])
async def test_a_wrong_or_malformed_token_is_refused_even_with_a_valid_session(staff_user, header):
    cookie = await login_cookie(staff_user)
    communicator = WebsocketCommunicator(
        application,
        "/ws/",
        headers=[(b"host", HOST), (b"origin", ORIGIN), (b"cookie", cookie), (b"authorization", header)],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected is False


async def test_a_token_stops_working_when_its_user_is_no_longer_staff(staff_user):
    _, key = await database_sync_to_async(access_token_issue)(user=staff_user, name="laptop")
    staff_user.is_staff = False
    await staff_user.asave()
    assert await token_handshake(key) is False


def test_tokens_are_issued_to_staff_only(non_staff_user):
    with pytest.raises(PermissionDenied):
        access_token_issue(user=non_staff_user, name="x")
    assert not AccessToken.objects.exists()


def test_issue_token_prints_the_key_once(staff_user, capsys):
    call_command("issue_token", "anna", "--name", "ops")
    key = capsys.readouterr().out.strip()
    assert AccessToken.objects.get(name="ops").key_prefix == key[:8]


# emit_event input checks


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["market.nope", "--data", "{}"], "Unknown event type"),
        (["market.alert", "--data", "{nope"], "not valid JSON"),
        (["market.alert", "--data", "[1, 2]"], "must be a JSON object"),
        (["market.alert", "--data", '{"symbol": "SAP"}'], "Invalid event: market.alert: missing"),
        (["market.alert", "--data", ALERT.replace("1.50", '"1.50"')], "trigger_value must be decimal"),
        (["market.alert", "--data", ALERT, "--target-client", "a b"], "--target-client"),
    ],
)
def test_emit_event_refuses_bad_input_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("emit_event", *args)


def test_emit_event_refuses_an_in_memory_channel_layer_that_reaches_no_server(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with pytest.raises(CommandError, match="in-memory"):
        call_command("emit_event", "market.alert", "--data", ALERT)


# Against a running server


@pytest.mark.e2e
def test_tail_events_follows_what_emit_event_publishes_to_a_running_server(ops_server, staff_user):
    _, key = access_token_issue(user=staff_user, name="tail")
    tail = subprocess.Popen(
        manage("tail_events", "--url", f"{ops_server.ws_url}/", "--types", "market.alert", "--json", "--count", "1"),
        cwd=BASE_DIR,
        env={**ops_server.env, "GATEWAY_TOKEN": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr.readline().strip() == "subscribed to market.alert"
        emitted = run_tool(ops_server, "emit_event", "market.alert", "--data", ALERT, "--correlation-id", "drill-1")
        assert emitted.returncode == 0, emitted.stderr
        assert emitted.stdout.strip() == "published market.alert"
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, err
    line = out.strip()
    assert '"trigger_value":1.50' in line and '"threshold":1.75' in line  # exact decimals, as sent
    frame = json.loads(line)
    assert (frame["type"], frame["event"], frame["correlation_id"]) == ("market", "market.alert", "drill-1")


@pytest.mark.e2e
def test_emit_event_exits_non_zero_on_bad_input(ops_server):
    result = run_tool(ops_server, "emit_event", "market.alert", "--data", "{broken")
    assert result.returncode == 1
    assert "not valid JSON" in result.stderr


@pytest.mark.e2e
def test_ws_client_sends_typed_lines_and_prints_what_arrives(ops_server, staff_user):
    session = session_cookie(staff_user).decode().split("=", 1)[1]
    result = run_tool(
        ops_server,
        "ws_client",
        "--url",
        f"{ops_server.ws_url}/",
        "--session",
        session,
        "--client-id",
        "tool-1",
        "--linger",
        "3",
        stdin="ping\ncmd get_connection_info {}\nsub market.alert\nbogus\n",
    )
    assert result.returncode == 0, result.stderr
    frames = [json.loads(line[2:]) for line in result.stdout.splitlines() if line.startswith("< ")]
    events = [frame["event"] for frame in frames]
    assert events[:4] == ["connection.established", "pong", "get_connection_info.response", "subscription.confirmed"]
    info = frames[2]["data"]["result"]
    assert (info["client_id"], info["user"]) == ("tool-1", "anna")
    assert "unknown input 'bogus'" in result.stderr


@pytest.mark.e2e
def test_tools_report_a_refused_connection_and_exit_non_zero(ops_server):
    result = run_tool(
        ops_server, "tail_events", "--url", f"{ops_server.ws_url}/", "--token", "not-a-token", "--count", "1"
    )
    assert result.returncode == 1
    assert "refused the connection" in result.stderr
