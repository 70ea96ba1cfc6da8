"""Limits: message rate, connections per user, subscriptions per connection; neighbours unaffected."""

import asyncio
import time

import pytest

from realtime.limits import TokenBucket
from realtime.protocol import CloseCode
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)

PING = {"type": "ping", "event": "heartbeat", "data": {}}


def test_token_bucket_allows_the_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert bucket.take() is True and bucket.take() is False


async def test_flood_gets_rate_limited_then_closed_while_a_neighbour_stays_responsive(ws_connect, staff_user, other_staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_PER_SECOND": 5, "RATE_LIMIT_BURST": 10, "RATE_LIMIT_CLOSE_AFTER": 500}
    flooder, _ = await ws_connect(cookie=await login_cookie(staff_user))
    neighbour, _ = await ws_connect(cookie=await login_cookie(other_staff_user))

    flood_started = time.monotonic()
    for _ in range(2000):
        await flooder.send(PING)
        await asyncio.sleep(0)
    started = time.monotonic()
    await neighbour.send(PING)
    assert (await neighbour.receive_event("pong"))["type"] == "system"
    assert time.monotonic() - started < 1.0

    code = await flooder.closed_with(timeout=10)
    elapsed = time.monotonic() - flood_started
    events = [m["event"] for m in flooder.received]
    assert code == CloseCode.RATE_LIMITED
    assert "rate_limited" in events
    assert events.count("pong") <= 10 + 5 * elapsed + 1  # the burst and what refilled, not thousands


async def test_rate_limited_error_is_sent_once_a_second_not_per_message(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_PER_SECOND": 1, "RATE_LIMIT_BURST": 2, "RATE_LIMIT_CLOSE_AFTER": 1000}
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    for _ in range(30):
        await client.send(PING)
    messages = [await client.receive() for _ in range(3)]
    assert [m["event"] for m in messages] == ["pong", "pong", "rate_limited"]
    assert await client.nothing_more(timeout=0.5)
    assert messages[2]["data"]["code"] == "rate_limited" and messages[2]["data"]["limit"] == 1


async def test_connections_over_the_per_user_cap_are_closed_with_their_code(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2}
    cookie = await login_cookie(staff_user)
    await ws_connect(cookie=cookie)
    await ws_connect(cookie=cookie)
    third, connected = await ws_connect(cookie=cookie, expect_welcome=False)
    assert connected
    error = await third.receive()
    assert error["event"] == "too_many_connections" and error["data"]["limit"] == 2
    assert await third.closed_with() == CloseCode.TOO_MANY_CONNECTIONS


async def test_subscriptions_over_the_per_connection_cap_are_refused(ws_connect, superuser, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_SUBSCRIPTIONS_PER_CONNECTION": 2}
    client, _ = await ws_connect(cookie=await login_cookie(superuser))
    await client.send({"type": "subscription", "event": "subscribe",
                       "data": {"event_types": ["market.alert", "market.price_update", "system.error"]}})
    replies = [await client.receive() for _ in range(3)]
    assert [r["event"] for r in replies] == ["subscription.confirmed", "subscription.confirmed", "too_many_subscriptions"]
    assert replies[2]["data"]["event_type"] == "system.error"
