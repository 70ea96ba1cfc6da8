"""The spec's user events: a socket's connects, commands and subscription changes, for supervisors."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission

from realtime.wire.events import get_schema
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)

USER_EVENTS = ("user.action", "user.command", "user.subscription")


async def connect(ws_connect, user):
    client, connected = await ws_connect(cookie=await login_cookie(user))
    assert connected
    return client


async def watching(ws_connect, supervisor):
    """Return the supervisor's socket, subscribed to every user event."""
    desk = await connect(ws_connect, supervisor)
    await desk.send({"type": "subscription", "event": "subscribe", "data": {"event_types": list(USER_EVENTS)}})
    confirmed = []
    # (the supervisor's own `user.action` may come between the confirmations)
    await desk.receive_until(
        lambda frame: frame["event"] == "subscription.confirmed" and not confirmed.append(frame) and len(confirmed) == 3
    )
    return desk


async def next_about(desk, event_type, client_id, timeout=5):
    """Return the data of the next `event_type` event about `client_id`, checked against its schema."""
    frames = await desk.receive_until(
        lambda frame: frame["event"] == event_type and frame["data"]["client_id"] == client_id, timeout
    )
    frame = frames[-1]
    assert frame["type"] == "unknown"  # the spec dispatcher's category for a prefix it does not know
    return {**get_schema(event_type).validate(frame["data"]), "correlation_id": frame["correlation_id"]}


async def test_supervisor_sees_a_traders_connect_subscriptions_commands_and_disconnect(
    ws_connect, supervisor, trader, portfolio_with_position
):
    desk = await watching(ws_connect, supervisor)

    # when the trader connects, subscribes, runs a command, sends an unknown one and leaves
    client = await connect(ws_connect, trader)
    who = {"user_id": trader.pk, "username": "tina", "client_id": client.client_id}
    connected = await next_about(desk, "user.action", client.client_id)
    await client.send(
        {
            "type": "subscription",
            "event": "subscribe",
            "data": {"event_types": ["portfolio.update", "market.price_update"], "symbols": ["SAP"]},
            "correlation_id": "sub-1",
        }
    )
    subscribed = await next_about(desk, "user.subscription", client.client_id)
    assert (await client.command("refresh_portfolio", {}, correlation_id="cmd-1"))["data"]["status"] == "success"
    ran = await next_about(desk, "user.command", client.client_id)
    await client.command("no_such_command", {}, correlation_id="cmd-2")
    refused = await next_about(desk, "user.command", client.client_id)
    await client.close()
    disconnected = await next_about(desk, "user.action", client.client_id)

    # then the supervisor saw each, with who did it
    assert {k: connected[k] for k in who} == who and connected["action"] == "connected"
    assert (subscribed["action"], subscribed["event_types"], subscribed["symbols"], subscribed["correlation_id"]) == (
        "subscribe",
        ["portfolio.update", "market.price_update"],
        ["SAP"],
        "sub-1",
    )
    assert (ran["command"], ran["status"], ran["error_code"], ran["correlation_id"]) == (
        "refresh_portfolio",
        "success",
        None,
        "cmd-1",
    )
    assert ran["duration_ms"] > 0
    assert (refused["command"], refused["status"], refused["error_code"], refused["duration_ms"]) == (
        "no_such_command",
        "refused",
        "unknown_command",
        None,
    )
    assert disconnected["action"] == "disconnected"


async def test_a_command_that_fails_its_rules_or_lacks_permission_is_reported_with_its_code(
    ws_connect, supervisor, trader, portfolio, other_portfolio
):
    desk = await watching(ws_connect, supervisor)
    client = await connect(ws_connect, trader)

    await client.command("refresh_portfolio", {"portfolio_id": other_portfolio.pk})
    failed = await next_about(desk, "user.command", client.client_id)
    await client.command("get_system_status")
    denied = await next_about(desk, "user.command", client.client_id)

    assert (failed["status"], failed["error_code"]) == ("error", "portfolio_not_found")
    assert (denied["command"], denied["status"], denied["error_code"]) == (
        "get_system_status",
        "refused",
        "permission_denied",
    )


async def test_unsubscribe_and_a_revoked_permission_are_reported(ws_connect, supervisor, operator_user):
    desk = await watching(ws_connect, supervisor)
    client = await connect(ws_connect, operator_user)
    await client.subscribe("system.error", "system.service_status")
    await next_about(desk, "user.subscription", client.client_id)

    await client.send(
        {"type": "subscription", "event": "unsubscribe", "data": {"event_types": ["system.service_status"]}}
    )
    unsubscribed = await next_about(desk, "user.subscription", client.client_id)
    permission = await Permission.objects.aget(codename="view_system_events")
    await sync_to_async(operator_user.user_permissions.remove)(permission)
    revoked = await next_about(desk, "user.subscription", client.client_id)

    assert (unsubscribed["action"], unsubscribed["event_types"], unsubscribed["symbols"]) == (
        "unsubscribe",
        ["system.service_status"],
        None,
    )
    assert (revoked["action"], revoked["event_types"]) == ("revoked", ["system.error"])


async def test_only_holders_of_the_activity_permission_may_subscribe_to_user_events(ws_connect, trader, operator_user):
    client = await connect(ws_connect, trader)
    for event_type in USER_EVENTS:
        await client.send({"type": "subscription", "event": "subscribe", "data": {"event_types": [event_type]}})
        refused = await client.receive()
        assert (refused["event"], refused["data"]["event_type"]) == ("permission_denied", event_type)


def test_supervisors_and_operators_hold_the_activity_permission_and_only_operators_announce():
    from aktienanalyse.roles import OPERATOR, SUPERVISOR, TRADER

    holders = {
        role.group for role in (TRADER, SUPERVISOR, OPERATOR) if "realtime.view_user_activity" in role.permissions
    }
    assert holders == {"Aufsicht", "Betrieb"}


async def test_a_command_forwarded_to_the_services_on_the_bus_is_reported_forwarded(
    ws_connect, supervisor, trader, settings
):
    # given a gateway that hands `run_backtest` to the services on the bus (a channel of this test's own)
    from tests.fixtures.bus import shared_redis_url

    settings.REALTIME_BUS = {
        **settings.REALTIME_BUS,
        "URL": shared_redis_url(),
        "COMMANDS_CHANNEL": f"test:commands:{trader.pk}:{id(settings)}",
        "FORWARDED_COMMANDS": ["run_backtest"],
    }
    desk = await watching(ws_connect, supervisor)
    client = await connect(ws_connect, trader)

    await client.send({"type": "user", "event": "run_backtest", "data": {"symbol": "SAP"}, "correlation_id": "bt-1"})
    forwarded = await next_about(desk, "user.command", client.client_id)

    assert (forwarded["command"], forwarded["status"], forwarded["duration_ms"], forwarded["correlation_id"]) == (
        "run_backtest",
        "forwarded",
        None,
        "bt-1",
    )
