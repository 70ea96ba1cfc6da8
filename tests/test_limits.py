"""Limits: message rate, connections per user, subscriptions per connection; neighbours unaffected."""

import asyncio
import functools
import time

import pytest

from realtime.connection import limits
from realtime.connection.limits import TokenBucket
from realtime.wire.protocol import CloseCode
from realtime.delivery.dispatch import asend_event
from tests.fixtures.ws import login_cookie
from tests.test_recovery import alert, subscribe_with_since

pytestmark = pytest.mark.django_db(transaction=True)

PING = {"type": "ping", "event": "heartbeat", "data": {}}


def test_token_bucket_allows_the_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert bucket.take() is True and bucket.take() is False


async def test_flood_gets_rate_limited_then_closed_while_a_neighbour_stays_responsive(
    ws_connect, staff_user, other_staff_user, settings
):
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_LIMIT_PER_SECOND": 5,
        "RATE_LIMIT_BURST": 10,
        "RATE_LIMIT_CLOSE_AFTER": 500,
    }
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


async def test_rate_limited_error_is_sent_once_a_second_not_per_message(ws_connect, staff_user, settings, monkeypatch):
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_LIMIT_PER_SECOND": 1,
        "RATE_LIMIT_BURST": 2,
        "RATE_LIMIT_CLOSE_AFTER": 1000,
    }
    clock = [0.0]  # the bucket refills only when the test moves this clock on
    monkeypatch.setattr(limits, "TokenBucket", functools.partial(TokenBucket, clock=lambda: clock[0]))
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    for _ in range(30):
        await client.send(PING)
    messages = [await client.receive() for _ in range(3)]
    assert [m["event"] for m in messages] == ["pong", "pong", "rate_limited"]
    assert messages[2]["data"]["code"] == "rate_limited" and messages[2]["data"]["limit"] == 1
    # messages are answered in order: once a token is back, the next ping's pong comes before anything else
    clock[0] += 1
    await client.send({**PING, "correlation_id": "marker"})
    await client.nothing_before({"event": "pong", "correlation_id": "marker"})


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
    await client.send(
        {
            "type": "subscription",
            "event": "subscribe",
            "data": {"event_types": ["market.alert", "market.price_update", "system.error"]},
        }
    )
    replies = [await client.receive() for _ in range(3)]
    assert [r["event"] for r in replies] == [
        "subscription.confirmed",
        "subscription.confirmed",
        "too_many_subscriptions",
    ]
    assert replies[2]["data"]["event_type"] == "system.error"


def test_token_bucket_spends_into_debt_and_pays_it_back_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=1, burst=5, clock=lambda: now[0])
    bucket.spend(8)
    assert bucket.available() == -3
    now[0] += 4
    assert bucket.available() == 1 and bucket.take() and not bucket.take()


async def replay_round(client, since) -> tuple[int, dict]:
    """Unsubscribe and subscribe again with `since`; return the frames replayed and the confirmation."""
    await client.send({"type": "subscription", "event": "unsubscribe", "data": {"event_types": ["market.alert"]}})
    assert (await client.receive())["event"] == "subscription.removed"
    await subscribe_with_since(client, "market.alert", since)
    replayed = 0
    while True:
        frame = await client.receive()
        if frame["event"] == "subscription.confirmed":
            return replayed, frame["data"]
        assert frame["event"] == "market.alert"
        replayed += 1


async def test_replay_abuse_is_bounded_by_the_connection_and_user_budget_while_a_neighbour_replays(
    ws_connect, staff_user, other_staff_user, settings
):
    # given a replay budget of 10 frames a minute per connection and 15 per user, and 8 missed events
    settings.REALTIME = {**settings.REALTIME, "REPLAY_BUDGET": 10, "REPLAY_BUDGET_PER_USER": 15}
    abuser, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (confirmed,) = await abuser.subscribe("market.alert")
    since = {"seq": confirmed["data"]["seq"], "epoch": confirmed["data"]["epoch"]}
    for n in range(8):
        await asend_event("market.alert", alert(n))
    assert [(await abuser.receive())["event"] for _ in range(8)] == ["market.alert"] * 8

    # when the abuser alternates unsubscribe and subscribe-with-since 25 times
    rounds = [await replay_round(abuser, since) for _ in range(25)]

    # then the first replay is sent whole, every later one is refused whole with the reason
    assert rounds[0] == (8, {**rounds[0][1], "recovered": True})
    assert all(replayed == 0 for replayed, _ in rounds[1:])
    assert {(data["recovered"], data["reason"]) for _, data in rounds[1:]} == {(False, "replay_budget_exhausted")}
    assert sum(replayed for replayed, _ in rounds) == 8

    # when the same user opens another socket (its own budget full, the user's at 7), then it is refused too
    second, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await second.subscribe("market.alert")
    replayed, data = await replay_round(second, since)
    assert (replayed, data["recovered"], data["reason"]) == (0, False, "replay_budget_exhausted")

    # and another user's socket replays the same 8 events in full
    neighbour, _ = await ws_connect(cookie=await login_cookie(other_staff_user))
    await neighbour.subscribe("market.alert")
    replayed, data = await replay_round(neighbour, since)
    assert (replayed, data["recovered"]) == (8, True) and "reason" not in data


async def test_a_replay_with_nothing_missed_needs_no_budget(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "REPLAY_BUDGET": 0}
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (confirmed,) = await client.subscribe("market.alert")
    replayed, data = await replay_round(client, {"seq": confirmed["data"]["seq"], "epoch": confirmed["data"]["epoch"]})
    assert (replayed, data["recovered"]) == (0, True)
