"""start_analysis, analysis.complete and get_recommendations over the WebSocket."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from market.models import Analysis
from realtime.wire.events import get_schema
from tests.fixtures.market import add_history, make_instrument
from tests.fixtures.ws import login_cookie, send_marker

pytestmark = pytest.mark.django_db(transaction=True)


def zigzag(start, up, down, steps):
    prices, price = [], Decimal(start)
    for i in range(steps):
        price += Decimal(up) if i % 2 == 0 else -Decimal(down)
        prices.append(price)
    return prices


@pytest.fixture
def sap_with_history(db):
    """SAP with 80 prices rising in a +2/-1 zigzag (an uptrend, RSI about 67)."""
    instrument = make_instrument()
    add_history(instrument, zigzag(100, 2, 1, 80))
    return instrument


async def connect(ws_connect, user):
    client, connected = await ws_connect(cookie=await login_cookie(user))
    assert connected
    return client


async def test_start_analysis_answers_at_once_and_analysis_complete_follows_to_the_requester(
    ws_connect, staff_user, other_staff_user, sap_with_history
):
    # given the requester and another staff member, neither subscribed to anything
    client = await connect(ws_connect, staff_user)
    bystander = await connect(ws_connect, other_staff_user)
    # when the requester starts a technical analysis of SAP
    response = await client.command("start_analysis", {"symbol": "SAP", "analysis_type": "technical", "parameters": {}})
    # then the response carries the analysis id at once
    assert response["data"]["status"] == "success"
    analysis_id = response["data"]["result"]["analysis_id"]
    # and analysis.complete follows, with indicator values and a recommendation
    event = await client.receive_event("analysis.complete")
    data = get_schema("analysis.complete").validate(event["data"])
    assert (data["analysis_id"], data["analysis_type"], data["symbol"]) == (analysis_id, "technical", "SAP")
    assert data["recommendation"] == "buy"
    assert data["confidence_score"] == Decimal("0.6667")
    indicators = data["result"]["indicators"]
    assert set(indicators) == {"last_price", "sma_short", "sma_long", "rsi", "momentum_percent", "volatility_percent"}
    assert indicators["sma_short"] > indicators["sma_long"]
    assert Decimal(60) < indicators["rsi"] < Decimal(70)
    # and it is stored; the other user hears nothing of it
    stored = await Analysis.objects.aget(id=analysis_id)
    assert (stored.status, stored.recommendation) == ("complete", "buy")
    await bystander.nothing_before(await send_marker(bystander, committed=True))


async def test_parameters_override_the_defaults_and_show_in_the_result(ws_connect, staff_user, sap_with_history):
    client = await connect(ws_connect, staff_user)
    parameters = {"short_window": 3, "long_window": 8, "rsi_period": 5, "momentum_period": 4, "volatility_window": 6}
    response = await client.command("start_analysis", {"symbol": "sap", "parameters": parameters})
    assert response["data"]["status"] == "success", response
    event = await client.receive_event("analysis.complete")
    used = event["data"]["result"]["parameters"]
    assert {k: used[k] for k in parameters} == parameters
    assert used["rsi_overbought"] == 70  # defaults fill the rest


@pytest.mark.parametrize(
    "request_data, code",
    [
        ({"symbol": "NOPE"}, "not_found"),
        ({"symbol": ""}, "validation_error"),
        ({"symbol": 42}, "validation_error"),
        ({"symbol": "SAP", "analysis_type": "astrology"}, "validation_error"),
        ({"symbol": "SAP", "analysis_type": "sentiment"}, "missing_data"),
        ({"symbol": "SAP", "analysis_type": "fundamental"}, "missing_data"),
        ({"symbol": "SAP", "analysis_type": "fundamental", "parameters": {"rsi_period": 14}}, "validation_error"),
        ({"symbol": "SAP", "analysis_type": "sentiment", "parameters": {"days": 0}}, "validation_error"),
        ({"symbol": "SAP", "parameters": {"short_window": 50, "long_window": 20}}, "validation_error"),
        ({"symbol": "SAP", "parameters": {"rsi_period": 1}}, "validation_error"),
        ({"symbol": "SAP", "parameters": {"rsi_period": 14.5}}, "validation_error"),
        ({"symbol": "SAP", "parameters": {"rsi_period": True}}, "validation_error"),
        ({"symbol": "SAP", "parameters": {"colour": "blue"}}, "validation_error"),
        ({"symbol": "SAP", "parameters": [1, 2]}, "validation_error"),
        ({"symbol": "SAP", "parameters": {"long_window": 200}}, "insufficient_history"),
    ],
)
async def test_bad_analysis_requests_are_error_responses_and_store_nothing(
    ws_connect, staff_user, sap_with_history, request_data, code
):
    client = await connect(ws_connect, staff_user)
    response = await client.command("start_analysis", request_data)
    assert response["data"]["status"] == "error"
    assert response["data"]["result"]["code"] == code
    assert await Analysis.objects.acount() == 0
    await client.nothing_before(await send_marker(client, committed=True))


async def test_instrument_with_too_little_history_is_refused_with_the_counts(ws_connect, staff_user):
    instrument = await sync_to_async(make_instrument)(symbol="SIE", isin="DE0007236101", price="50.00")
    await sync_to_async(add_history)(instrument, [Decimal(50 + i) for i in range(10)])
    client = await connect(ws_connect, staff_user)
    response = await client.command("start_analysis", {"symbol": "SIE"})
    result = response["data"]["result"]
    assert (result["code"], result["required"], result["available"]) == ("insufficient_history", 51, 10)


async def test_get_recommendations_returns_the_latest_analysis_per_symbol(ws_connect, staff_user, sap_with_history):
    # given two analyses of SAP, the second with other parameters, and one of a falling SIE
    sie = await sync_to_async(make_instrument)(symbol="SIE", isin="DE0007236101", price="200.00")
    await sync_to_async(add_history)(sie, zigzag(200, -2, -1, 80))
    client = await connect(ws_connect, staff_user)
    for request_data in ({"symbol": "SAP"}, {"symbol": "SAP", "parameters": {"short_window": 4}}, {"symbol": "SIE"}):
        await client.command("start_analysis", request_data)
        await client.receive_event("analysis.complete")
    latest_sap = await Analysis.objects.filter(instrument__symbol="SAP").order_by("-completed_at").afirst()
    # when all recommendations are asked for, then each symbol appears once, with its latest analysis
    everything = (await client.command("get_recommendations"))["data"]["result"]["recommendations"]
    assert [(r["symbol"], r["recommendation"]) for r in everything] == [("SAP", "buy"), ("SIE", "sell")]
    assert everything[0]["analysis_id"] == str(latest_sap.id)
    assert everything[0]["result"]["parameters"]["short_window"] == 4
    assert isinstance(everything[0]["result"]["indicators"]["rsi"], Decimal)
    # and one symbol can be asked for alone
    only_sie = (await client.command("get_recommendations", {"symbol": "sie"}))["data"]["result"]["recommendations"]
    assert [r["symbol"] for r in only_sie] == ["SIE"]
    unknown = await client.command("get_recommendations", {"symbol": "NOPE"})
    assert unknown["data"]["result"]["code"] == "not_found"


def test_demo_history_lets_an_analysis_of_sap_complete(db, staff_user):
    from market.analysis import analysis_run, analysis_start
    from market.demo import price_history_seed

    price_history_seed(seed=11)
    analysis = analysis_start(user=staff_user, symbol="SAP", analysis_type="technical", parameters={})
    done = analysis_run(analysis_id=analysis.id)
    assert done.status == "complete"
    assert done.recommendation in ("buy", "sell", "hold")
    assert set(done.result["indicators"]) >= {"rsi", "sma_short", "sma_long", "momentum_percent", "volatility_percent"}


def start_sap(user):
    from market.analysis import analysis_start

    return analysis_start(user=user, symbol="SAP", analysis_type="technical", parameters={})


def test_a_user_has_only_so_many_analyses_running_and_a_finished_or_lost_one_frees_a_place(
    staff_user, other_staff_user, sap_with_history, settings
):
    from core.exceptions import RateLimited
    from market.analysis import analysis_run

    settings.MARKET = {**settings.MARKET, "ANALYSES_RUNNING_PER_USER": 2, "ANALYSES_PER_MINUTE_PER_USER": 100}
    first, second = start_sap(staff_user), start_sap(staff_user)

    with pytest.raises(RateLimited) as refused:
        start_sap(staff_user)

    assert (refused.value.code, refused.value.details) == ("too_many_analyses", {"limit": 2, "running": 2})
    assert Analysis.objects.filter(requested_by=staff_user).count() == 2
    start_sap(other_staff_user)  # each user has places of their own
    analysis_run(analysis_id=first.id)
    start_sap(staff_user)  # the finished one freed its place
    with pytest.raises(RateLimited):
        start_sap(staff_user)
    Analysis.objects.filter(id=second.id).update(created_at=timezone.now() - timedelta(seconds=301))
    start_sap(staff_user)  # running for longer than ANALYSIS_LOST_AFTER: its process is presumed gone


async def test_analyses_per_minute_are_counted_over_all_the_users_sockets_and_refused_with_a_retry_time(
    ws_connect, staff_user, sap_with_history, settings
):
    settings.MARKET = {**settings.MARKET, "ANALYSES_RUNNING_PER_USER": 100, "ANALYSES_PER_MINUTE_PER_USER": 2}
    tab = await connect(ws_connect, staff_user)
    other_tab = await connect(ws_connect, staff_user)
    for client in (tab, other_tab):
        assert (await client.command("start_analysis", {"symbol": "SAP"}))["data"]["status"] == "success"

    response = await tab.command("start_analysis", {"symbol": "SAP"}, correlation_id="c-3")

    result = response["data"]["result"]
    assert (response["data"]["status"], result["code"], result["limit"]) == ("error", "rate_limited", 2)
    assert 1 <= result["retry_after_seconds"] <= 60
    assert await Analysis.objects.acount() == 2
    await Analysis.objects.aupdate(created_at=timezone.now() - timedelta(seconds=61))
    again = await tab.command("start_analysis", {"symbol": "SAP"}, correlation_id="c-4")
    assert again["data"]["status"] == "success"
