"""Operators' announcements to every open connection: command, REST, `manage.py announce`, across processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.test import Client

from realtime.models import Announcement
from tests.fixtures.servers import BASE_DIR, server_env, start_daphne
from tests.fixtures.users import grant
from tests.fixtures.ws import login_cookie, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def announcer(django_user_model):
    """An operator allowed to announce (as the "Betrieb" group grants it)."""
    user = django_user_model.objects.create_user("olga", is_staff=True)
    grant(user, "realtime.announce")
    return user


async def connect(ws_connect, user):
    client, connected = await ws_connect(cookie=await login_cookie(user))
    assert connected
    return client


async def announcement(client, timeout=5):
    # A broadcast and the sender's own command response travel different paths, so either may come
    # first: one that came while the client waited for its response is among the frames kept.
    early = [frame for frame in client.received if frame["event"] == "announcement"]
    frame = early[0] if early else await client.receive_event("announcement", timeout=timeout)
    assert frame["type"] == "system"
    return frame["data"]


async def test_an_operators_announcement_reaches_every_open_connection_subscribed_or_not(
    ws_connect, announcer, staff_user, other_staff_user
):
    # given two staff members' sockets that subscribed to nothing, and the operator's own
    listeners = [await connect(ws_connect, staff_user), await connect(ws_connect, other_staff_user)]
    operator = await connect(ws_connect, announcer)

    # when the operator announces
    response = await operator.command(
        "announce", {"message": "  Wartung um 18 Uhr  ", "level": "warning", "expires_in": 600}, correlation_id="a-1"
    )

    # then every socket, the operator's too, gets it, trimmed, with who sent it and until when
    assert response["data"]["status"] == "success", response
    result = response["data"]["result"]
    for client in [*listeners, operator]:
        data = await announcement(client)
        assert data == result
    assert (result["message"], result["level"], result["announced_by"]) == ("Wartung um 18 Uhr", "warning", "olga")
    assert result["expires_at"] > result["timestamp"]
    stored = await Announcement.objects.aget()
    assert (stored.channel, stored.announced_by_id, str(stored.pk)) == (
        "websocket",
        announcer.pk,
        result["announcement_id"],
    )


async def test_only_holders_of_the_announce_permission_may_announce(ws_connect, staff_user, operator_user):
    for user in (staff_user, operator_user):  # system events alone do not allow it
        client = await connect(ws_connect, user)
        response = await client.command("announce", {"message": "Hallo"})
        assert response["data"]["result"]["code"] == "permission_denied"
    assert await Announcement.objects.acount() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "message"),
        ({"message": "   "}, "message"),
        ({"message": 42}, "message"),
        ({"message": "x" * 501}, "message"),
        ({"message": "a\x00b"}, "message"),
        ({"message": "Hallo", "level": "panic"}, "level"),
        ({"message": "Hallo", "expires_in": 0}, "expires_in"),
        ({"message": "Hallo", "expires_in": 7 * 24 * 3600 + 1}, "expires_in"),
        ({"message": "Hallo", "expires_in": "60"}, "expires_in"),
        ({"message": "Hallo", "expires_in": True}, "expires_in"),
    ],
)
async def test_invalid_announcements_are_refused_with_the_field_and_sent_to_no_one(ws_connect, announcer, data, field):
    client = await connect(ws_connect, announcer)
    response = await client.command("announce", data)
    result = response["data"]["result"]
    assert (response["data"]["status"], result["code"], result["field"]) == ("error", "validation_error", field)
    assert result["error"]
    assert await Announcement.objects.acount() == 0


async def test_announcements_are_rate_limited_per_operator(ws_connect, announcer, settings):
    settings.REALTIME = {**settings.REALTIME, "ANNOUNCEMENTS_PER_MINUTE": 2}
    client = await connect(ws_connect, announcer)
    for number in (1, 2):
        assert (await client.command("announce", {"message": f"Nr. {number}"}))["data"]["status"] == "success"

    refused = (await client.command("announce", {"message": "Nr. 3"}))["data"]["result"]

    assert (refused["code"], refused["limit"]) == ("rate_limited", 2)
    assert 1 <= refused["retry_after_seconds"] <= 60
    assert await Announcement.objects.acount() == 2


async def test_a_connection_opened_later_gets_the_current_announcements_only(ws_connect, announcer, staff_user):
    operator = await connect(ws_connect, announcer)
    await operator.command("announce", {"message": "nur jetzt"})
    current = (await operator.command("announce", {"message": "bis heute Abend", "expires_in": 3600}))["data"]["result"]
    await Announcement.objects.acreate(
        message="vorbei", level="info", channel="console", expires_at="2020-01-01T00:00Z"
    )

    # when someone connects afterwards
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))

    # then after the welcome comes the announcement still current, and no other
    frames = await client.receive_until(lambda frame: frame["event"] == "announcement")
    assert [f["event"] for f in client.received] == ["connection.established", "announcement"]
    assert frames[-1]["data"] == current
    await client.send({"type": "ping", "event": "heartbeat", "data": {}})
    assert (await client.receive())["event"] == "pong"


async def test_an_announcement_stored_before_the_process_started_is_sent_to_new_connections(ws_connect, staff_user):
    # given a current announcement this process never heard (another process sent it)
    await sync_to_async(call_command)("announce", "Neustart 22 Uhr", "--expires-in", "600")
    from realtime import announcements

    from realtime.delivery import fanout

    board = announcements._boards.get(fanout.get_fanout())
    if board is not None:
        board.current.clear()  # as in a process started afterwards
        board._loaded = None

    client = await connect(ws_connect, staff_user)

    assert (await announcement(client))["message"] == "Neustart 22 Uhr"


def test_manage_py_announce_validates_and_records_the_console_as_sender():
    with pytest.raises(CommandError, match="must not be empty"):
        call_command("announce", "   ")
    with pytest.raises(CommandError, match="at most 500 characters"):
        call_command("announce", "x" * 501)
    call_command("announce", "Wartung", "--level", "critical")
    stored = Announcement.objects.get()
    assert (stored.message, stored.level, stored.channel, stored.announced_by, stored.expires_at) == (
        "Wartung",
        "critical",
        "console",
        None,
        None,
    )


def test_rest_announcement_needs_the_permission_validates_and_is_rate_limited(announcer, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "ANNOUNCEMENTS_PER_MINUTE": 1}
    api = Client()
    api.force_login(staff_user)
    assert api.post("/api/announcements", {"message": "Hallo"}, content_type="application/json").status_code == 403
    api.force_login(announcer)

    empty = api.post("/api/announcements", {"message": ""}, content_type="application/json")
    sent = api.post("/api/announcements", {"message": "Hallo", "level": "info"}, content_type="application/json")
    again = api.post("/api/announcements", {"message": "Hallo"}, content_type="application/json")

    assert (empty.status_code, empty.json()["code"], empty.json()["field"]) == (400, "validation_error", "message")
    assert sent.status_code == 201 and sent.json()["announced_by"] == "olga"
    assert (again.status_code, again.json()["code"]) == (429, "rate_limited")
    assert Announcement.objects.get().channel == "rest"


@pytest.mark.e2e
def test_manage_py_announce_reaches_the_connections_of_every_gateway_process(tmp_path, staff_user):
    """Two daphne processes on Redis, one client on each: the console's announcement reaches both."""
    from websockets.asyncio.client import connect as ws_open

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    env = server_env(REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=f"e2e-{uuid.uuid4().hex[:8]}")
    servers = [start_daphne(tmp_path, env=env), start_daphne(tmp_path, env=env)]
    cookie = session_cookie(staff_user).decode()

    async def scenario() -> list[dict]:
        sockets = []
        for server in servers:
            ws = await ws_open(server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=server.http_url)
            assert json.loads(await ws.recv())["event"] == "connection.established"
            sockets.append(ws)
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "manage.py", "announce", "Wartung in 5 Minuten", "--level", "warning"],
            cwd=BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
        )
        received = []
        for ws in sockets:
            async with asyncio.timeout(10):
                while (frame := json.loads(await ws.recv(), parse_float=Decimal))["event"] != "announcement":
                    pass
            received.append(frame["data"])
            await ws.close()
        return received

    try:
        received = asyncio.run(scenario())
    finally:
        for server in servers:
            server.stop()
    assert [(data["message"], data["level"], data["announced_by"]) for data in received] == [
        ("Wartung in 5 Minuten", "warning", None)
    ] * 2
