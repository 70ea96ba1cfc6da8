"""Fundamental analysis: verdicts against thresholds and peers, freshness, missing data, the socket path, Alpha Vantage."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from core.exceptions import ValidationFailed
from market import fundamentals as fa
from market.figures import fundamentals_from_alpha_vantage_overview, fundamentals_record_clean
from market.models import Analysis
from realtime.wire.events import get_schema
from tests.fixtures.analysis import add_fundamentals
from tests.fixtures.market import make_instrument
from tests.fixtures.ws import login_cookie

D = Decimal


@pytest.mark.parametrize(
    "metric, value, verdict",
    [
        # lower is better: good 15, bad 25
        ("pe_ratio", "14.9999", "positive"),
        ("pe_ratio", "15", "positive"),
        ("pe_ratio", "15.0001", "neutral"),
        ("pe_ratio", "24.9999", "neutral"),
        ("pe_ratio", "25", "negative"),
        ("pe_ratio", "80", "negative"),
        ("pe_ratio", "0", "negative"),  # no earnings
        ("pe_ratio", "-12", "negative"),  # a loss, however low the ratio
        ("pb_ratio", "1.5", "positive"),
        ("pb_ratio", "2", "neutral"),
        ("pb_ratio", "4", "negative"),
        ("pb_ratio", "-0.5", "negative"),  # negative equity
        ("debt_to_equity", "0.5", "positive"),
        ("debt_to_equity", "1", "neutral"),
        ("debt_to_equity", "2", "negative"),
        # higher is better
        ("dividend_yield", "3", "positive"),
        ("dividend_yield", "2.9999", "neutral"),
        ("dividend_yield", "1", "negative"),
        ("dividend_yield", "0", "negative"),
        ("roe", "15", "positive"),
        ("roe", "10", "neutral"),
        ("roe", "5", "negative"),
        ("roe", "-3", "negative"),
        ("eps_growth", "10", "positive"),
        ("eps_growth", "0.0001", "neutral"),
        ("eps_growth", "0", "negative"),
        ("revenue_growth", "5", "positive"),
        ("revenue_growth", "4.99", "neutral"),
        ("revenue_growth", "-2", "negative"),
    ],
)
def test_each_metric_is_judged_against_its_default_thresholds_reaching_a_threshold_counts(metric, value, verdict):
    thresholds = fa.fundamental_parameters_clean(parameters={})["thresholds"][metric]

    assert (
        fa.metric_verdict(metric=metric, value=D(value), good=D(thresholds["good"]), bad=D(thresholds["bad"]))
        == verdict
    )


@pytest.mark.parametrize(
    "value, median, verdict",
    [
        ("8", "10", "positive"),
        ("8.01", "10", "neutral"),
        ("11.99", "10", "neutral"),
        ("12", "10", "negative"),
        ("-3", "10", "negative"),
    ],
)
def test_valuation_is_compared_with_the_peers_median_by_twenty_percent(value, median, verdict):
    assert fa.peer_verdict(value=D(value), median=D(median)) == verdict


def test_freshness_is_full_while_fresh_then_falls_to_the_floor():
    assert fa.freshness(age_days=120, fresh_days=120, stale_days=400) == 1
    assert fa.freshness(age_days=260, fresh_days=120, stale_days=400) == D("0.625")
    assert fa.freshness(age_days=400, fresh_days=120, stale_days=400) == fa.STALE_FLOOR
    assert fa.freshness(age_days=4000, fresh_days=120, stale_days=400) == fa.STALE_FLOOR


@pytest.mark.django_db
def test_the_same_figures_older_give_the_same_verdicts_with_lower_confidence():
    sap = make_instrument()
    parameters = fa.fundamental_parameters_clean(parameters={})
    today = timezone.localdate()
    figures = add_fundamentals(sap, as_of=today - timedelta(days=10))

    fresh, fresh_confidence, fresh_recommendation = fa.fundamental_analysis_compute(
        fundamentals=figures, peers={}, parameters=parameters, today=today
    )
    stale, stale_confidence, stale_recommendation = fa.fundamental_analysis_compute(
        fundamentals=figures, peers={}, parameters=parameters, today=today + timedelta(days=500)
    )

    assert fresh_recommendation == stale_recommendation == "buy"
    assert [m["verdict"] for m in fresh["metrics"]] == [m["verdict"] for m in stale["metrics"]] == ["positive"] * 7
    assert (fresh_confidence, fresh["freshness"], fresh["data_age_days"]) == (D(1), D(1), 10)
    assert (stale_confidence, stale["freshness"], stale["data_age_days"]) == (D("0.25"), D("0.25"), 510)


@pytest.mark.django_db
def test_votes_decide_the_recommendation_and_confidence_is_the_agreeing_share():
    sap = make_instrument()
    # three negative metrics, two neutral, two positive: net -1 of 7 is a hold
    figures = add_fundamentals(sap, pe_ratio="30", pb_ratio="5", dividend_yield="0.5", roe="10", debt_to_equity="1")
    parameters = fa.fundamental_parameters_clean(parameters={})

    result, confidence, recommendation = fa.fundamental_analysis_compute(
        fundamentals=figures, peers={}, parameters=parameters, today=timezone.localdate()
    )

    assert result["votes"] == {"positive": 2, "neutral": 2, "negative": 3}
    assert (result["score"], result["checks"], recommendation) == (-1, 7, "hold")
    assert (result["agreeing"], confidence) == (2, (D(2) / 7).quantize(D("0.0001")))
    # one more negative metric tips it: -2 of 7 is below -0.25
    figures.revenue_growth = D("-1")
    _, _, recommendation = fa.fundamental_analysis_compute(
        fundamentals=figures, peers={}, parameters=parameters, today=timezone.localdate()
    )
    assert recommendation == "sell"


@pytest.mark.django_db
def test_peers_vote_on_valuation_once_enough_other_instruments_have_figures():
    sap = make_instrument()
    add_fundamentals(sap, pe_ratio="14", pb_ratio="1.4")
    parameters = fa.fundamental_parameters_clean(parameters={})
    peers_alone = fa.fundamentals_peers(instrument=sap)
    assert peers_alone == {"pe_ratio": [], "pb_ratio": []}
    for index, (pe, pb) in enumerate((("20", "2"), ("25", "3"), ("-5", None))):
        add_fundamentals(make_instrument(symbol=f"P{index}", isin=f"DE000000000{index}"), pe_ratio=pe, pb_ratio=pb)
    # an older snapshot of a peer does not count, only its latest
    add_fundamentals(
        make_instrument(symbol="OLD", isin="DE0000000009"),
        as_of=timezone.localdate() - timedelta(days=30),
        pe_ratio="1",
    )

    result, _, _ = fa.fundamental_analysis_run(instrument=sap, parameters=parameters)

    pe = next(m for m in result["metrics"] if m["metric"] == "pe_ratio")
    pb = next(m for m in result["metrics"] if m["metric"] == "pb_ratio")
    # P/E peers 20, 25 and OLD's 1 (the loss left out): median 20, and 14 is 30 % below it
    assert pe["peers"] == {"median": D("20.0000"), "count": 3, "verdict": "positive"}
    # P/B peers 2, 3 and OLD's 1.2 (one peer has none): median 2, and 1.4 is 30 % below it
    assert pb["peers"] == {"median": D("2.0000"), "count": 3, "verdict": "positive"}
    assert result["checks"] == 9


@pytest.mark.django_db
def test_a_missing_metric_refuses_the_analysis_naming_it_and_leaving_it_out_allows_it():
    sap = make_instrument()
    add_fundamentals(sap, debt_to_equity=None, eps_growth=None)
    parameters = fa.fundamental_parameters_clean(parameters={})

    with pytest.raises(ValidationFailed) as refused:
        fa.fundamental_analysis_check(instrument=sap, parameters=parameters)

    assert refused.value.code == "missing_data"
    assert refused.value.details["missing"] == ["debt_to_equity", "eps_growth"]
    assert "debt_to_equity, eps_growth" in refused.value.message
    fewer = fa.fundamental_parameters_clean(parameters={"metrics": ["pe_ratio", "roe"]})
    fa.fundamental_analysis_check(instrument=sap, parameters=fewer)
    result, _, _ = fa.fundamental_analysis_run(instrument=sap, parameters=fewer)
    assert [m["metric"] for m in result["metrics"]] == ["pe_ratio", "roe"]


@pytest.mark.parametrize(
    "parameters, field",
    [
        ({"metrics": []}, "parameters.metrics"),
        ({"metrics": ["pe_ratio", "pe_ratio"]}, "parameters.metrics"),
        ({"metrics": ["horoscope"]}, "parameters.metrics"),
        ({"metrics": "pe_ratio"}, "parameters.metrics"),
        ({"thresholds": {"pe_ratio": {"good": 30, "bad": 20}}}, "parameters.thresholds.pe_ratio"),
        ({"thresholds": {"roe": {"good": 5, "bad": 10}}}, "parameters.thresholds.roe"),
        ({"thresholds": {"roe": {"good": "ten"}}}, "parameters.thresholds.roe.good"),
        ({"thresholds": {"roe": {"good": True}}}, "parameters.thresholds.roe.good"),
        ({"thresholds": {"roe": {"good": 1.5}}}, "parameters.thresholds.roe.good"),
        ({"thresholds": {"roe": {"best": 1}}}, "parameters.thresholds.roe"),
        ({"thresholds": {"dividend_yield": {"good": 101}}}, "parameters.thresholds.dividend_yield.good"),
        ({"thresholds": {"colour": {}}}, "parameters.thresholds"),
        ({"fresh_days": 400, "stale_days": 100}, "parameters.fresh_days"),
        ({"stale_days": 0}, "parameters.stale_days"),
        ({"min_peers": "2"}, "parameters.min_peers"),
        ({"short_window": 5}, "parameters"),
    ],
)
def test_bad_fundamental_parameters_are_refused_naming_the_field(parameters, field):
    with pytest.raises(ValidationFailed) as refused:
        fa.fundamental_parameters_clean(parameters=parameters)

    assert (refused.value.code, refused.value.details.get("field")) == ("validation_error", field)


def test_thresholds_may_be_overridden_per_request_and_are_kept_exact():
    cleaned = fa.fundamental_parameters_clean(parameters={"thresholds": {"pe_ratio": {"good": D("12.5")}}})

    assert cleaned["thresholds"]["pe_ratio"] == {"good": "12.5", "bad": "25"}
    assert cleaned["thresholds"]["roe"] == {"good": "15", "bad": "5"}


# Over the WebSocket

pytestmark_ws = pytest.mark.django_db(transaction=True)


@pytestmark_ws
async def test_start_fundamental_analysis_sends_the_metrics_table_with_verdicts(ws_connect, staff_user):
    sap = await sync_to_async(make_instrument)()
    await sync_to_async(add_fundamentals)(sap, as_of=timezone.localdate() - timedelta(days=3), pe_ratio="30")
    client, connected = await ws_connect(cookie=await login_cookie(staff_user))
    assert connected

    response = await client.command("start_analysis", {"symbol": "SAP", "analysis_type": "fundamental"})

    assert response["data"]["status"] == "success", response
    event = await client.receive_event("analysis.complete")
    data = get_schema("analysis.complete").validate(event["data"])
    assert (data["analysis_type"], data["recommendation"]) == ("fundamental", "buy")
    rows = {row["metric"]: row for row in data["result"]["metrics"]}
    assert rows["pe_ratio"] == {
        "metric": "pe_ratio",
        "value": D("30"),
        "good": D("15"),
        "bad": D("25"),
        "better": "lower",
        "verdict": "negative",
        "peers": None,
    }
    assert {name: row["verdict"] for name, row in rows.items() if name != "pe_ratio"} == dict.fromkeys(
        ["pb_ratio", "dividend_yield", "roe", "debt_to_equity", "eps_growth", "revenue_growth"], "positive"
    )
    assert data["confidence_score"] == D("0.8571")  # six of seven agree, fresh figures
    assert (data["result"]["source"], data["result"]["data_age_days"]) == ("test", 3)
    # the stored result reads back with exact numbers
    listed = (await client.command("get_recommendations", {"symbol": "SAP"}))["data"]["result"]["recommendations"]
    assert listed[0]["result"]["metrics"][0]["value"] == D("30")


@pytestmark_ws
async def test_fundamental_analysis_without_figures_is_an_error_response_naming_them(ws_connect, staff_user):
    sap = await sync_to_async(make_instrument)()
    await sync_to_async(add_fundamentals)(sap, roe=None)
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))

    response = await client.command("start_analysis", {"symbol": "SAP", "analysis_type": "fundamental"})

    result = response["data"]["result"]
    assert (response["data"]["status"], result["code"], result["missing"]) == ("error", "missing_data", ["roe"])
    assert "roe" in result["error"]
    assert await Analysis.objects.acount() == 0


# Alpha Vantage company overview

OVERVIEW = {
    "Symbol": "SAP",
    "Currency": "EUR",
    "MarketCapitalization": "265000000000",
    "PERatio": "38.52",
    "PriceToBookRatio": "6.2",
    "DividendYield": "0.0105",
    "ReturnOnEquityTTM": "0.165",
    "EPS": "5.6",
    "QuarterlyEarningsGrowthYOY": "-0.021",
    "QuarterlyRevenueGrowthYOY": "None",
    "LatestQuarter": "2025-06-30",
}


def test_alpha_vantage_overview_becomes_figures_in_percent_and_leaves_missing_ones_out():
    record = fundamentals_from_alpha_vantage_overview(OVERVIEW, symbol="SAP")
    cleaned = fundamentals_record_clean(record)

    assert cleaned["pe_ratio"] == D("38.52") and cleaned["pb_ratio"] == D("6.2")
    assert (cleaned["dividend_yield"], cleaned["roe"], cleaned["eps_growth"]) == (D("1.05"), D("16.5"), D("-2.1"))
    assert (cleaned["revenue_growth"], cleaned["debt_to_equity"]) == (None, None)
    assert (cleaned["market_cap"], cleaned["currency"], cleaned["source"]) == (
        D("265000000000"),
        "EUR",
        "alpha_vantage",
    )
    assert cleaned["as_of"].isoformat() == "2025-06-30"


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "empty"),
        (
            {"Note": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day."},
            "rate limit",
        ),
        ({"Error Message": "Invalid API call."}, "Invalid API call"),
        ({**OVERVIEW, "PERatio": "n/a"}, "PERatio"),
        ({**OVERVIEW, "MarketCapitalization": "1e999999"}, "MarketCapitalization"),
        ([], "empty"),
    ],
)
def test_alpha_vantage_overview_errors_are_named(payload, message):
    with pytest.raises(ValueError, match=message):
        fundamentals_from_alpha_vantage_overview(payload, symbol="SAP")
