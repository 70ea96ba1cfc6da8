"""Lossless reconnect: numbered events, replay after `since`, and plain refusals when it cannot."""

from decimal import Decimal

import pytest

from realtime.delivery import history as history_module
from realtime.delivery.dispatch import asend_event
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def alert(n: int) -> dict:
    return {
        "alert_type": "price_threshold",
        "symbol": f"S{n}",
        "message": f"alert {n}",
        "severity": "info",
        "trigger_value": Decimal(n),
        "current_value": Decimal(n),
        "threshold": Decimal(n),
        "timestamp": "2026-11-23T10:00:00.000Z",
    }


async def subscribe_with_since(client, event_type, since=None):
    data = {"event_types": [event_type]}
    if since is not None:
        data["since"] = {event_type: since}
    await client.send({"type": "subscription", "event": "subscribe", "data": data})


async def test_broadcast_events_carry_increasing_seq_and_an_epoch(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (confirmed,) = await client.subscribe("market.alert")
    start = confirmed["data"]["seq"]
    for n in range(3):
        await asend_event("market.alert", alert(n))
    events = [await client.receive() for _ in range(3)]
    assert [e["seq"] for e in events] == [start + 1, start + 2, start + 3]
    assert {e["epoch"] for e in events} == {confirmed["data"]["epoch"]}


async def test_reconnect_with_since_replays_exactly_the_missed_events_in_order(ws_connect, staff_user):
    cookie = await login_cookie(staff_user)
    first, _ = await ws_connect(cookie=cookie)
    await first.subscribe("market.alert")
    await asend_event("market.alert", alert(1))
    seen = await first.receive()
    await first.close()

    for n in (2, 3, 4):  # published while the client was away
        await asend_event("market.alert", alert(n))

    second, _ = await ws_connect(cookie=cookie)
    await subscribe_with_since(second, "market.alert", {"seq": seen["seq"], "epoch": seen["epoch"]})
    replayed = [await second.receive() for _ in range(3)]
    confirmed = await second.receive()
    assert [m["data"]["symbol"] for m in replayed] == ["S2", "S3", "S4"]
    assert [m["seq"] for m in replayed] == [seen["seq"] + 1, seen["seq"] + 2, seen["seq"] + 3]
    assert confirmed["event"] == "subscription.confirmed"
    assert confirmed["data"]["recovered"] is True and confirmed["data"]["seq"] == seen["seq"] + 3

    await asend_event("market.alert", alert(5))  # live events follow, with no duplicate
    live = await second.receive()
    assert live["seq"] == seen["seq"] + 4
    await asend_event("market.alert", alert(6))
    await second.nothing_before({"event": "market.alert", "data": {"symbol": "S6"}, "seq": seen["seq"] + 5})


async def test_since_the_current_position_recovers_with_nothing_to_replay(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (confirmed,) = await client.subscribe("market.alert")
    await client.close()
    again, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await subscribe_with_since(
        again, "market.alert", {"seq": confirmed["data"]["seq"], "epoch": confirmed["data"]["epoch"]}
    )
    reply = await again.receive()
    assert reply["event"] == "subscription.confirmed" and reply["data"]["recovered"] is True


async def test_stale_epoch_is_told_to_reload(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await asend_event("market.alert", alert(1))
    await subscribe_with_since(client, "market.alert", {"seq": 0, "epoch": "an-old-life"})
    confirmed = await client.receive()
    assert confirmed["event"] == "subscription.confirmed"
    assert confirmed["data"]["recovered"] is False
    assert confirmed["data"]["epoch"] != "an-old-life"
    await asend_event("market.alert", alert(2))  # nothing replayed from the old epoch before it
    await client.nothing_before({"event": "market.alert", "data": {"symbol": "S2"}})


async def test_gap_beyond_the_history_size_is_told_to_reload(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "HISTORY_MAX_EVENTS": 3}
    history_module.reset_memory_history()
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (confirmed,) = await client.subscribe("market.alert")
    await client.close()
    for n in range(6):
        await asend_event("market.alert", alert(n))
    history = history_module.get_history()
    if hasattr(history, "client"):  # Redis trims approximately: cut the stream hard for the test
        await history.client.xtrim(history._keys("market.alert")[2], maxlen=3, approximate=False)

    again, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await subscribe_with_since(
        again, "market.alert", {"seq": confirmed["data"]["seq"], "epoch": confirmed["data"]["epoch"]}
    )
    reply = await again.receive()
    assert reply["event"] == "subscription.confirmed" and reply["data"]["recovered"] is False
    history_module.reset_memory_history()


async def test_seq_from_the_future_is_told_to_reload(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (confirmed,) = await client.subscribe("market.alert")
    await subscribe_with_since(
        client, "market.alert", {"seq": confirmed["data"]["seq"] + 50, "epoch": confirmed["data"]["epoch"]}
    )
    assert (await client.receive())["data"]["recovered"] is False


async def test_replay_applies_per_user_filtering_like_live_delivery(ws_connect, staff_user, other_staff_user):
    cookie = await login_cookie(other_staff_user)
    bernd, _ = await ws_connect(cookie=cookie)
    (confirmed,) = await bernd.subscribe("market.alert")
    await bernd.close()

    await asend_event("market.alert", alert(1), audience=[staff_user.pk])  # Anna's only
    await asend_event("market.alert", alert(2))  # everyone's

    again, _ = await ws_connect(cookie=cookie)
    await subscribe_with_since(
        again, "market.alert", {"seq": confirmed["data"]["seq"], "epoch": confirmed["data"]["epoch"]}
    )
    replayed = await again.receive()
    assert replayed["data"]["symbol"] == "S2"
    assert (await again.receive())["data"]["recovered"] is True
    await asend_event("market.alert", alert(3), audience=[other_staff_user.pk])
    await again.nothing_before({"event": "market.alert", "data": {"symbol": "S3"}})


@pytest.mark.parametrize(
    "since",
    [
        [1],
        {"market.alert": 5},
        {"market.alert": {"seq": -1, "epoch": "x"}},
        {"market.alert": {"seq": True, "epoch": "x"}},
        {"market.alert": {"seq": 1}},
        {"market.alert": {"seq": 1, "epoch": "x" * 65}},
    ],
)
async def test_malformed_since_is_refused(ws_connect, staff_user, since):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await client.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.alert"], "since": since}}
    )
    assert (await client.receive())["event"] == "invalid_message"


async def test_command_responses_and_targeted_events_carry_no_seq(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user), path="/ws/tab-q")
    response = await client.command("get_connection_info")
    assert "seq" not in response
    await asend_event("market.alert", alert(9), target_client="tab-q")
    assert "seq" not in await client.receive()


def price(symbol: str) -> dict:
    return {
        "symbol": symbol,
        "price": Decimal("100.00"),
        "previous_price": Decimal("99.00"),
        "change": Decimal("1.00"),
        "change_percent": Decimal("1.01"),
        "volume": 10,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "source": "simulated",
    }


async def test_a_confirmation_says_whether_the_connection_gets_every_number_of_the_type(ws_connect, staff_user):
    # given a client that subscribes to a broadcast type for all symbols, the same for one symbol,
    # and a personal type (alerts are for the user who set the rule)
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    (everything,) = await client.subscribe("market.price_update")
    (alerts,) = await client.subscribe("market.alert")
    await client.send(
        {
            "type": "subscription",
            "event": "subscribe",
            "data": {"event_types": ["market.price_update"], "symbols": ["SAP"]},
        }
    )
    narrowed = await client.receive_event("subscription.confirmed")

    # then only the first is complete: there a skipped seq is a loss; elsewhere it is normal
    assert everything["data"]["complete"] is True
    assert alerts["data"]["complete"] is False
    assert (narrowed["data"]["symbols"], narrowed["data"]["complete"]) == (["SAP"], False)


async def test_an_audience_is_refused_for_an_event_type_whose_subscribers_get_every_number(staff_user):
    # a price update limited to some users would leave the others a gap they must take for a loss
    with pytest.raises(ValueError, match="only a personal event type takes an audience"):
        await asend_event("market.price_update", price("SAP"), audience=[staff_user.pk])
