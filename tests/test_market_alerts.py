"""Alert rules: stored per user, fired once per crossing, re-armed, listed and removed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from market.feed import PriceFeed
from market.models import AlertRule
from market.alerts import alert_rule_create
from realtime.wire.events import get_schema
from tests.fixtures.market import ScriptedMarket, add_history
from tests.fixtures.ws import login_cookie, matches, send_marker

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(ws_connect, user):
    client, connected = await ws_connect(cookie=await login_cookie(user))
    assert connected
    return client


async def feed_prices(prices, volumes=None, symbol="SAP"):
    feed = PriceFeed(provider=ScriptedMarket({symbol: prices}, {symbol: volumes} if volumes else None), interval=1)
    for _ in prices:
        await feed.run_round()


async def alerts_received(client, expected: int) -> list[dict]:
    """Return the data of the market.alert events that came before a marker sent after them, each
    checked against the event's schema; there must be `expected` of them."""
    marker = await send_marker(client, committed=True)
    frames = await client.receive_until(lambda frame: matches(frame, marker), timeout=10)
    alerts = [get_schema("market.alert").validate(f["data"]) for f in frames[:-1] if f["event"] == "market.alert"]
    assert len(alerts) == expected, alerts
    return alerts


async def test_above_alert_fires_once_per_crossing_and_only_for_its_owner(
    ws_connect, staff_user, other_staff_user, sap_at_100
):
    # given anna's rule "SAP at or above 101" and bernd connected too; nobody subscribed to anything
    anna = await connect(ws_connect, staff_user)
    bernd = await connect(ws_connect, other_staff_user)
    response = await anna.command(
        "subscribe_alerts", {"symbol": "SAP", "condition": "above", "threshold": Decimal("101")}
    )
    assert response["data"]["status"] == "success", response
    # when the price crosses up, stays above, falls back below and crosses up again
    await feed_prices(["100.50", "101.20", "101.50", "102.00", "100.80", "101.00"])
    # then anna gets exactly two alerts, at 101.20 and at 101.00
    alerts = await alerts_received(anna, 2)
    assert [(a["current_value"], a["trigger_value"]) for a in alerts] == [
        (Decimal("101.20"), Decimal("101.20")),
        (Decimal("101.00"), Decimal("101.00")),
    ]
    first = alerts[0]
    assert (first["alert_type"], first["symbol"], first["severity"], first["threshold"]) == (
        "price_threshold",
        "SAP",
        "warning",
        Decimal("101"),
    )
    assert "101.20" in first["message"]
    # and bernd gets nothing
    assert await alerts_received(bernd, 0) == []
    rule = await AlertRule.objects.aget()
    assert (rule.trigger_count, rule.armed) == (2, False)


async def test_below_alert_fires_when_price_falls_to_the_threshold(ws_connect, staff_user, sap_at_100):
    anna = await connect(ws_connect, staff_user)
    await anna.command("subscribe_alerts", {"symbol": "SAP", "condition": "below", "threshold": 99})
    await feed_prices(["99.50", "99.00", "98.00", "99.10"])
    assert [a["current_value"] for a in await alerts_received(anna, 1)] == [Decimal("99.00")]


async def test_change_percent_alert_measures_from_the_price_at_creation(ws_connect, staff_user, sap_at_100):
    anna = await connect(ws_connect, staff_user)
    await anna.command("subscribe_alerts", {"symbol": "SAP", "condition": "change_percent", "threshold": 2})
    # +1 %, +2.5 % (fires), +5 % (still beyond), +0.5 % (re-arms), -2.1 % (fires), -4.5 % (still beyond)
    await feed_prices(["101.00", "102.50", "105.00", "100.50", "97.90", "95.50"])
    alerts = await alerts_received(anna, 2)
    assert [(a["trigger_value"], a["severity"], a["alert_type"]) for a in alerts] == [
        (Decimal("2.5000"), "warning", "price_change"),
        (Decimal("2.1000"), "warning", "price_change"),
    ]


async def test_volume_spike_alert_compares_with_the_recent_average(ws_connect, staff_user, sap_at_100, settings):
    # given 20 ticks of volume 1000 and a rule "volume at least 3 times the average"
    settings.MARKET = {**settings.MARKET, "VOLUME_BASELINE_TICKS": 20}
    await sync_to_async(add_history)(sap_at_100, ["100.00"] * 20, volume=1000)
    anna = await connect(ws_connect, staff_user)
    await anna.command("subscribe_alerts", {"symbol": "SAP", "condition": "volume_spike", "threshold": 3})
    # when volumes arrive: 2000 (x1.9), 3500 (x3.33 of 1050: spike), 4000 (x3.40 of 1175: still high),
    # 1000 (re-arms), 8000 (x6.04 of 1325: spike)
    await feed_prices(["100.10"] * 5, volumes=[2000, 3500, 4000, 1000, 8000])
    alerts = await alerts_received(anna, 2)
    # then the first spike fires, the following high tick does not, and the later spike fires again
    assert [(a["trigger_value"], a["severity"], a["alert_type"]) for a in alerts] == [
        (Decimal("3.3333"), "info", "volume_spike"),
        (Decimal("6.0377"), "warning", "volume_spike"),
    ]


@pytest.mark.parametrize("window_from", ["rule", "setting"])
async def test_volatility_alert_measures_realised_volatility_over_its_window(
    ws_connect, staff_user, sap_at_100, settings, window_from
):
    # given a calm history and a rule "volatility of the last 4 tick returns at least 1 %"
    settings.MARKET = {**settings.MARKET, "VOLATILITY_WINDOW_TICKS": 4 if window_from == "setting" else 50}
    await sync_to_async(add_history)(sap_at_100, ["100.00"] * 4)
    anna = await connect(ws_connect, staff_user)
    rule = {"symbol": "SAP", "condition": "volatility", "threshold": 1} | (
        {"window": 4} if window_from == "rule" else {}
    )
    created = (await anna.command("subscribe_alerts", rule))["data"]["result"]
    assert (created["condition"], created["window"]) == ("volatility", 4 if window_from == "rule" else None)
    # when the price swings (returns 0, 0, 0, +2 %: a deviation of exactly 1 %), stays wild, calms
    # down (re-arms), then jumps 5 % (returns 0, 0, 0, +5 %: 2.5 %)
    await feed_prices(["102.00", "100.00", "102.00", "100.00", "100.00", "100.00", "100.00", "100.00", "105.00"])
    alerts = await alerts_received(anna, 2)
    # then the first swing and the jump fire, each with the spec's alert fields
    assert [
        (a["alert_type"], a["trigger_value"], a["severity"], a["current_value"], a["threshold"]) for a in alerts
    ] == [
        ("volatility", Decimal("1.0000"), "warning", Decimal("102.00"), Decimal("1.0000")),
        ("volatility", Decimal("2.5000"), "critical", Decimal("105.00"), Decimal("1.0000")),
    ]
    assert alerts[0]["symbol"] == "SAP" and "4 ticks" in alerts[0]["message"]


async def test_volatility_alert_waits_for_a_full_window(ws_connect, staff_user, sap_at_100):
    # given no history, and a rule over 10 ticks that the first wild ticks would exceed
    anna = await connect(ws_connect, staff_user)
    await anna.command(
        "subscribe_alerts", {"symbol": "SAP", "condition": "volatility", "threshold": "0.1", "window": 10}
    )
    await feed_prices(["110.00", "90.00", "110.00"])
    # then nothing is measured, and nothing fires, before 10 returns exist
    assert await alerts_received(anna, 0) == []


async def test_rules_can_be_listed_and_removed_only_by_their_owner(
    ws_connect, staff_user, other_staff_user, sap_at_100
):
    anna = await connect(ws_connect, staff_user)
    bernd = await connect(ws_connect, other_staff_user)
    created = (await anna.command("subscribe_alerts", {"symbol": "sap", "condition": "above", "threshold": "120.5"}))[
        "data"
    ]["result"]
    await bernd.command("subscribe_alerts", {"symbol": "SAP", "condition": "below", "threshold": 80})
    # anna lists her rule only
    listed = (await anna.command("list_alerts"))["data"]["result"]["alerts"]
    assert [(r["alert_id"], r["symbol"], r["condition"], r["threshold"], r["armed"]) for r in listed] == [
        (created["alert_id"], "SAP", "above", Decimal("120.5000"), True)
    ]
    # bernd cannot remove it
    refused = await bernd.command("remove_alert", {"alert_id": created["alert_id"]})
    assert refused["data"]["result"]["code"] == "not_found"
    # anna can, and then it no longer fires
    removed = await anna.command("remove_alert", {"alert_id": created["alert_id"]})
    assert removed["data"]["result"] == {"alert_id": created["alert_id"], "removed": True}
    assert (await anna.command("list_alerts"))["data"]["result"]["alerts"] == []
    await feed_prices(["121.00"])
    assert await alerts_received(anna, 0) == []
    assert await AlertRule.objects.acount() == 1


@pytest.mark.parametrize(
    "request_data, code",
    [
        ({"symbol": "SAP", "condition": "sideways", "threshold": 1}, "validation_error"),
        ({"symbol": "SAP", "condition": "above", "threshold": -5}, "validation_error"),
        ({"symbol": "SAP", "condition": "above", "threshold": "abc"}, "validation_error"),
        ({"symbol": "SAP", "condition": "above", "threshold": True}, "validation_error"),
        ({"symbol": "SAP", "condition": "above", "threshold": "1.123456"}, "validation_error"),
        ({"symbol": "SAP", "condition": "above"}, "validation_error"),
        ({"symbol": "SAP", "condition": "volume_spike", "threshold": 1}, "validation_error"),
        ({"symbol": "SAP", "condition": "volatility", "threshold": 101}, "validation_error"),
        ({"symbol": "SAP", "condition": "volatility", "threshold": 1, "window": 1}, "validation_error"),
        ({"symbol": "SAP", "condition": "volatility", "threshold": 1, "window": 501}, "validation_error"),
        ({"symbol": "SAP", "condition": "volatility", "threshold": 1, "window": "20"}, "validation_error"),
        ({"symbol": "SAP", "condition": "volatility", "threshold": 1, "window": True}, "validation_error"),
        ({"symbol": "SAP", "condition": "above", "threshold": 1, "window": 20}, "validation_error"),
        ({"symbol": "NOPE", "condition": "above", "threshold": 1}, "not_found"),
        ({"condition": "above", "threshold": 1}, "validation_error"),
    ],
)
async def test_bad_alert_rules_are_refused_and_nothing_is_stored(
    ws_connect, staff_user, sap_at_100, request_data, code
):
    anna = await connect(ws_connect, staff_user)
    response = await anna.command("subscribe_alerts", request_data)
    assert (response["data"]["status"], response["data"]["result"]["code"]) == ("error", code)
    assert await AlertRule.objects.acount() == 0


@pytest.mark.parametrize("alert_id", ["1", None, 1.5, True])
async def test_remove_alert_needs_an_integer_id(ws_connect, staff_user, alert_id):
    anna = await connect(ws_connect, staff_user)
    response = await anna.command("remove_alert", {"alert_id": alert_id})
    assert response["data"]["result"]["code"] == "validation_error"


def test_rules_per_user_are_limited(sap_at_100, staff_user, settings):
    settings.MARKET = {**settings.MARKET, "ALERT_RULES_PER_USER": 2}
    for threshold in (1, 2):
        alert_rule_create(user=staff_user, symbol="SAP", condition="above", threshold=threshold)
    from core.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        alert_rule_create(user=staff_user, symbol="SAP", condition="above", threshold=3)
    assert refused.value.code == "too_many_alerts"
    assert AlertRule.objects.count() == 2
