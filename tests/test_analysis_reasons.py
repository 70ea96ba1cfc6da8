"""An analysis's findings as codes with figures (result["reasons"]), and a text for every code in both languages.

The spec's fields of `analysis.complete` stay as they are; `reasons` is added beside them so a
client words the result in its reader's language (market/reasons.py, aktienanalyse/texts.py).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from aktienanalyse.texts import analysis_reason_strings, code_strings
from market import fundamentals as fa
from market import sentiment as sa
from market.models import Analysis
from market.selectors import recommendation_data
from market.technical import technical_analysis_compute
from tests.fixtures.analysis import add_fundamentals, add_news
from tests.fixtures.market import make_instrument
from tests.test_market_indicators import PARAMETERS, zigzag

D = Decimal
PLACEHOLDER = re.compile(r"\{(\w+)(?::\w+)?\}")

# Every code the analyses can emit (market/technical.py, fundamentals.py, sentiment/).
REASON_CODES = [
    *(f"trend_{t}" for t in ("bullish", "bearish", "neutral")),
    *(f"rsi_{s}" for s in ("oversold", "overbought", "neutral")),
    *(f"momentum_{m}" for m in ("rising", "falling", "flat")),
    *(f"technical_{r}" for r in ("buy", "sell", "hold")),
    *(f"metric_{v}_{b}" for v in ("positive", "neutral", "negative") for b in ("lower", "higher")),
    *(f"peers_{v}" for v in ("positive", "neutral", "negative")),
    "data_age",
    *(f"fundamental_{r}" for r in ("buy", "sell", "hold")),
    "sentiment_polarity",
    *(f"sentiment_{r}" for r in ("buy", "sell", "hold")),
]


def test_a_technical_result_names_each_indicators_finding_and_the_decision_by_code():
    result, _, recommendation = technical_analysis_compute(prices=zigzag(100, 2, 1, 60), parameters=PARAMETERS)

    reasons = result["reasons"]
    assert [r["code"] for r in reasons] == ["trend_bullish", "rsi_neutral", "momentum_rising", "technical_buy"]
    assert [r["vote"] for r in reasons] == [1, 0, 1, None]
    trend, rsi, momentum, decision = (r["params"] for r in reasons)
    assert (trend["sma_short"], trend["sma_long"]) == (
        result["indicators"]["sma_short"],
        result["indicators"]["sma_long"],
    )
    assert (trend["short_window"], trend["long_window"]) == (PARAMETERS["short_window"], PARAMETERS["long_window"])
    assert (rsi["rsi"], rsi["oversold"], rsi["overbought"]) == (result["indicators"]["rsi"], 30, 70)
    assert momentum["momentum_percent"] == result["indicators"]["momentum_percent"]
    assert decision == {"score": 2, "votes": 3, "buy_at": 2, "sell_at": -2}
    # the spec's and the earlier fields are all still there
    assert {"indicators", "signals", "votes", "score", "parameters", "history_points"} <= set(result)
    assert recommendation == "buy"


@pytest.mark.django_db
def test_a_fundamental_result_names_each_metric_and_peer_verdict_the_data_age_and_the_decision():
    sap = make_instrument()
    add_fundamentals(sap, pe_ratio="30", source="demo")
    for index, pe in enumerate(("20", "21", "22")):
        add_fundamentals(make_instrument(symbol=f"P{index}", isin=f"DE000000000{index}"), pe_ratio=pe)
    parameters = fa.fundamental_parameters_clean(parameters={})

    result, _, recommendation = fa.fundamental_analysis_run(instrument=sap, parameters=parameters)

    codes = [r["code"] for r in result["reasons"]]
    assert codes[0] == "metric_negative_lower"  # P/E 30 at or above the bad 25
    assert result["reasons"][0]["params"] == {"metric": "pe_ratio", "value": D("30"), "good": D("15"), "bad": D("25")}
    assert "peers_negative" in codes  # 30 against the peers' median 21
    assert codes[-2:] == ["data_age", f"fundamental_{recommendation}"]
    assert result["reasons"][-2]["params"]["source"] == "demo"
    # one reason per vote cast, each with the vote it cast
    votes = [r["vote"] for r in result["reasons"] if r["vote"] is not None]
    assert len(votes) == result["checks"] and sum(votes) == result["score"]
    assert result["reasons"][-1]["params"]["agreeing"] == result["agreeing"]


@pytest.mark.django_db
def test_a_sentiment_result_names_the_polarity_counts_and_the_decision():
    sap = make_instrument()
    add_news(sap, "SAP beats expectations and raises guidance", language="en", hours_ago=1)
    add_news(sap, "SAP-Aktie schließt unverändert", language="de", hours_ago=2)
    parameters = sa.sentiment_parameters_clean(parameters={})

    result, _, recommendation = sa.sentiment_analysis_run(instrument=sap, parameters=parameters)

    polarity, decision = result["reasons"]
    assert polarity["code"] == "sentiment_polarity"
    assert {k: polarity["params"][k] for k in ("positive", "neutral", "negative", "items")} == {
        **result["polarity"],
        "items": 2,
    }
    assert decision == {
        "code": f"sentiment_{recommendation}",
        "params": {"score": result["score"], "buy_at": D("0.15"), "sell_at": D("-0.15")},
        "vote": None,
    }


@pytest.mark.django_db
def test_a_stored_result_lists_its_reasons_with_numbers_again(staff_user):
    sap = make_instrument()
    result, confidence, recommendation = technical_analysis_compute(prices=zigzag(100, 2, 1, 60), parameters=PARAMETERS)
    stored = Analysis.objects.create(
        instrument=sap,
        requested_by=staff_user,
        analysis_type="technical",
        parameters=PARAMETERS,
        status=Analysis.Status.COMPLETE,
        result=result,
        confidence_score=confidence,
        recommendation=recommendation,
        completed_at=timezone.now(),
    )
    stored.refresh_from_db()  # through JSON: Decimals come back as strings

    listed = recommendation_data(analysis=stored)["result"]["reasons"]

    assert listed[0]["params"]["sma_short"] == result["reasons"][0]["params"]["sma_short"]
    assert isinstance(listed[0]["params"]["sma_short"], Decimal)


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_reason_code_has_a_text_naming_only_its_figures(language):
    with translation.override(language):
        strings = analysis_reason_strings()

    missing = [code for code in REASON_CODES if f"analysis_reason_{code}" not in strings]
    assert missing == []


def test_the_english_reason_and_error_texts_differ_from_the_german_with_the_same_placeholders():
    with translation.override("de"):
        german = {**analysis_reason_strings(), **code_strings()}
    with translation.override("en"):
        english = {**analysis_reason_strings(), **code_strings()}

    same = sorted(key for key in german if german[key] == english[key])
    assert same == []
    differing = sorted(
        key for key in german if sorted(PLACEHOLDER.findall(german[key])) != sorted(PLACEHOLDER.findall(english[key]))
    )
    assert differing == []
