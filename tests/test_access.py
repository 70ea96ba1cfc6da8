"""Access is checked for as long as a socket is open, not only at the handshake."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.test import Client

from realtime.runtime.connections import connections
from realtime.wire.protocol import CloseCode
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM_ERROR = {
    "error_id": "e",
    "service_name": "s",
    "error_type": "T",
    "error_message": "m",
    "severity": "error",
    "user_affected": False,
    "timestamp": "2026-11-23T10:00:00Z",
}
PRICE_UPDATE = {
    "symbol": "SAP",
    "isin": "DE0007164600",
    "price": Decimal("42.5"),
    "previous_price": Decimal("42"),
    "change": Decimal("0.5"),
    "change_percent": Decimal("1.19"),
    "volume": 7,
    "timestamp": "2026-11-23T10:00:01Z",
    "source": "django-feed",
}


async def test_deactivating_the_account_closes_its_sockets(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    staff_user.is_active = False
    await staff_user.asave()
    assert await client.closed_with(timeout=5) == CloseCode.ACCESS_REVOKED


async def test_revoking_the_staff_flag_closes_its_sockets(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    staff_user.is_staff = False
    await staff_user.asave()
    assert await client.closed_with(timeout=5) == CloseCode.ACCESS_REVOKED


async def test_logout_closes_the_sockets_of_that_session_only(ws_connect, staff_user):
    browser = Client()
    await sync_to_async(browser.force_login)(staff_user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    in_browser, _ = await ws_connect(cookie=cookie)
    elsewhere, _ = await ws_connect(cookie=await login_cookie(staff_user))

    response = await sync_to_async(browser.post)("/logout/")
    assert response.status_code == 302

    assert await in_browser.closed_with(timeout=5) == CloseCode.SESSION_ENDED
    await elsewhere.send({"type": "ping", "event": "heartbeat", "data": {}})
    assert (await elsewhere.receive_event("pong"))["type"] == "system"


async def test_expired_or_deleted_session_closes_the_socket_within_seconds(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await Session.objects.all().adelete()  # no signal: the periodic check finds it
    assert await client.closed_with(timeout=5) == CloseCode.SESSION_ENDED


async def test_lost_permission_stops_the_matching_events_at_once(ws_connect, operator_user):
    client, _ = await ws_connect(cookie=await login_cookie(operator_user))
    (confirmed,) = await client.subscribe("system.error")
    assert confirmed["event"] == "subscription.confirmed"

    permission = await Permission.objects.aget(codename="view_system_events")
    await sync_to_async(operator_user.user_permissions.remove)(permission)

    removed = await client.receive_event("subscription.removed", timeout=5)
    assert removed["data"] == {
        "event_type": "system.error",
        "client_id": confirmed["data"]["client_id"],
        "reason": "permission_revoked",
    }
    from realtime.delivery.dispatch import asend_event

    (marker_type,) = await client.subscribe("market.alert")
    assert marker_type["event"] == "subscription.confirmed"
    await asend_event(
        "system.error",
        {
            "error_id": "e",
            "service_name": "s",
            "error_type": "T",
            "error_message": "m",
            "severity": "error",
            "user_affected": False,
            "timestamp": "2026-11-23T10:00:00Z",
        },
    )
    await asend_event(
        "market.alert",
        {
            "alert_type": "price_threshold",
            "symbol": "MARK",
            "message": "marker",
            "severity": "info",
            "trigger_value": Decimal(1),
            "current_value": Decimal(1),
            "threshold": Decimal(1),
            "timestamp": "2026-11-23T10:00:00Z",
        },
    )
    await client.nothing_before({"event": "market.alert", "data": {"symbol": "MARK"}})
    await client.send({"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.error"]}})
    assert (await client.receive())["event"] == "permission_denied"


async def test_a_demoted_superuser_keeps_no_superuser_power_on_sockets_already_open(ws_connect, superuser):
    from realtime.delivery.dispatch import asend_event

    client, _ = await ws_connect(cookie=await login_cookie(superuser))
    confirmed = await client.subscribe("system.error", "market.price_update")
    assert {c["event"] for c in confirmed} == {"subscription.confirmed"}
    assert (await client.command("monitor_snapshot"))["data"]["status"] == "success"

    superuser.is_superuser = False  # still active staff, with no permission of its own
    await superuser.asave()

    removed = await client.receive_event("subscription.removed", timeout=5)
    assert (removed["data"]["event_type"], removed["data"]["reason"]) == ("system.error", "permission_revoked")
    # one socket gets its events in the order they were sent: the price is the marker
    await asend_event("system.error", SYSTEM_ERROR)
    await asend_event("market.price_update", PRICE_UPDATE)
    await client.receive_event("market.price_update")
    assert "system.error" not in [message["event"] for message in client.received]
    refused = await client.command("monitor_snapshot", correlation_id="c-2")
    assert refused["data"]["result"]["code"] == "permission_denied"
    await client.send({"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.error"]}})
    assert (await client.receive())["event"] == "permission_denied"
    # commands act for the account as it is now, not as it was at the handshake
    assert [c.consumer.user.is_superuser for c in connections if c.user_id == superuser.pk] == [False]


async def test_idle_connection_is_closed(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "IDLE_TIMEOUT_SECONDS": 1, "REVALIDATE_SECONDS": 1}
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    assert await client.closed_with(timeout=5) == CloseCode.IDLE_TIMEOUT


async def test_a_socket_opened_after_a_permission_was_revoked_does_not_get_it_from_the_users_other_socket(
    ws_connect, operator_user
):
    """Sockets of one user share their permissions in the process; a revocation must reach that share."""
    cookie = await login_cookie(operator_user)
    first, _ = await ws_connect(cookie=cookie)
    (confirmed,) = await first.subscribe("system.error")
    assert confirmed["event"] == "subscription.confirmed"

    permission = await Permission.objects.aget(codename="view_system_events")
    await sync_to_async(operator_user.user_permissions.remove)(permission)
    await first.receive_event("subscription.removed", timeout=5)

    second, _ = await ws_connect(cookie=cookie)
    await second.send({"type": "subscription", "event": "subscribe", "data": {"event_types": ["system.error"]}})
    assert (await second.receive())["event"] == "permission_denied"

    await sync_to_async(operator_user.user_permissions.add)(permission)
    await first.send({"type": "ping", "event": "heartbeat", "data": {}})
    await first.receive_event("pong")
    third, _ = await ws_connect(cookie=cookie)
    (granted,) = await third.subscribe("system.error")
    assert granted["event"] == "subscription.confirmed"


def test_the_connection_table_keeps_its_sockets_by_session_as_they_come_and_go():
    """The periodic check asks per session and never walks the sockets; the index must stay exact."""
    from realtime.runtime.connections import Connection, ConnectionTable

    table = ConnectionTable()
    consumers = [object() for _ in range(3)]

    def connection(consumer, session):
        return Connection(
            client_id="c",
            user_id=session[0],
            username="u",
            remote_addr=None,
            origin=None,
            connected_at=None,
            subscriptions=set(),
            consumer=consumer,
            session=session,
        )

    desk, laptop = (7, "session-a", "hash-a"), (7, "session-b", "hash-a")
    table.add(connection(consumers[0], desk))
    table.add(connection(consumers[1], desk))
    table.add(connection(consumers[2], laptop))
    assert {key: sorted(id(c.consumer) for c in group) for key, group in table.sessions().items()} == {
        desk: sorted(id(c) for c in consumers[:2]),
        laptop: [id(consumers[2])],
    }
    table.add(connection(consumers[1], laptop))  # registered again under another session: moves
    table.remove(consumers[0])
    table.remove(consumers[0])  # twice changes nothing
    assert {key: len(group) for key, group in table.sessions().items()} == {laptop: 2}
    table.remove(consumers[1])
    table.remove(consumers[2])
    assert table.sessions() == {} and len(table) == 0
