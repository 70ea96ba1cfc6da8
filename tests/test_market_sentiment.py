"""Sentiment analysis: headline polarity in German and English, recency weights, the socket path, Alpha Vantage news."""

from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from core.exceptions import ValidationFailed
from market import sentiment as sa
from market.sentiment import german
from market.sentiment.news import news_from_alpha_vantage, news_record_clean
from market.models import Analysis
from realtime.wire.events import get_schema
from tests.fixtures.analysis import add_news
from tests.fixtures.market import make_instrument
from tests.fixtures.ws import login_cookie

D = Decimal


@pytest.mark.parametrize(
    "headline, language, direction",
    [
        ("SAP übertrifft die Erwartungen und hebt die Prognose an", "de", 1),
        ("Allianz erhöht Dividende nach starkem Jahr", "de", 1),
        ("Telekom wächst in den USA kräftig", "de", 1),
        ("Gewinnwarnung: BASF-Aktie bricht ein", "de", -1),
        ("Infineon verfehlt Erwartungen, Aktie fällt deutlich", "de", -1),
        ("BMW meldet Umsatzeinbruch in China", "de", -1),  # the compound's head: Einbruch
        ("Die Bilanz ist nicht gut", "de", -1),  # negation
        ("Siemens-Aktie schließt unverändert", "de", 0),
        ("SAP beats expectations and raises guidance", "en", 1),
        ("Deutsche Telekom upgraded to buy", "en", 1),
        ("Infineon rallies as chip orders recover", "en", 1),
        ("Mercedes-Benz shares tumble after profit warning", "en", -1),
        ("Revenue falls short of estimates", "en", -1),
        ("BASF cuts guidance as chemical demand slumps", "en", -1),
        ("Siemens keeps its outlook unchanged", "en", 0),
    ],
)
def test_headlines_of_known_polarity_score_in_their_direction(headline, language, direction):
    score, words = sa.headline_score(text=headline, language=language)

    assert sa.polarity(score) == {1: "positive", 0: "neutral", -1: "negative"}[direction], (score, words)
    assert -1 <= score <= 1
    if direction:
        assert words  # the words behind the score are named


def test_a_german_negation_turns_the_word_after_it():
    plain, _ = sa.headline_score(text="Der Gewinn steigt", language="de")
    negated, _ = sa.headline_score(text="Der Gewinn steigt nicht mehr, kein Wachstum", language="de")

    assert plain > 0 > negated


def test_an_intensifier_strengthens_but_alone_keeps_its_own_meaning():
    plain, _ = sa.headline_score(text="Umsatz sinkt", language="de")
    strong, _ = sa.headline_score(text="Umsatz sinkt kräftig", language="de")
    alone, _ = sa.headline_score(text="Allianz mit starkem Quartal", language="de")

    assert strong < plain < 0 < alone


def test_words_that_name_market_things_carry_no_feeling():
    score, words = sa.headline_score(text="Siemens shares and securities", language="en")

    assert (score, words) == (D("0.0000"), [])


def test_the_lexicons_load_from_the_repository_and_the_installed_package_without_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the sentiment lexicons tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    german.german_lexicon.cache_clear()
    sa.english_analyzer.cache_clear()

    assert len(german.german_lexicon()) > 500
    assert sa.headline_score(text="Der Gewinn steigt", language="de")[0] > 0
    assert sa.headline_score(text="Profits rise", language="en")[0] > 0


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="fr"):
        sa.headline_score(text="Les actions montent", language="fr")


def test_recency_weight_halves_every_half_life():
    assert sa.recency_weight(age=timedelta(0), half_life_hours=24) == 1
    assert sa.recency_weight(age=timedelta(hours=24), half_life_hours=24) == D("0.5")
    assert sa.recency_weight(age=timedelta(hours=48), half_life_hours=24) == D("0.25")
    assert sa.recency_weight(age=timedelta(hours=-1), half_life_hours=24) == 1  # a clock ahead counts as now


@pytest.mark.django_db
def test_newer_headlines_outweigh_older_ones_and_the_strongest_are_reported():
    sap = make_instrument()
    good = add_news(sap, "SAP beats expectations and raises guidance", language="en", hours_ago=1)
    bad = add_news(sap, "Gewinnwarnung: SAP-Aktie bricht ein", language="de", hours_ago=72)
    add_news(sap, "SAP-Aktie schließt unverändert", language="de", hours_ago=2)
    parameters = sa.sentiment_parameters_clean(parameters={})

    result, confidence, recommendation = sa.sentiment_analysis_run(instrument=sap, parameters=parameters)

    assert recommendation == "buy"
    assert result["items"] == 3
    assert result["polarity"] == {"positive": 1, "neutral": 1, "negative": 1}
    assert result["strongest_positive"]["headline"] == good.headline
    assert result["strongest_negative"]["headline"] == bad.headline
    assert result["strongest_negative"]["language"] == "de"
    assert result["strongest_positive"]["score"] > 0 > result["strongest_negative"]["score"]
    weights = {h["headline"]: h["weight"] for h in result["headlines"]}
    assert weights[good.headline] > D("0.97") and D("0.12") < weights[bad.headline] < D("0.13")
    # the weighted mean is that of the scores with these weights
    expected = sum(h["score"] * h["weight"] for h in result["headlines"]) / sum(
        h["weight"] for h in result["headlines"]
    )
    assert result["score"] == expected.quantize(D("0.0001"))
    # one agreeing item of three, weighing most; three items of the five for full confidence
    assert D(0) < confidence < D("0.6")

    # with a long half-life the old warning weighs as much as the good news, and the mean turns
    slow = sa.sentiment_parameters_clean(parameters={"half_life_hours": 2000})
    result, _, recommendation = sa.sentiment_analysis_run(instrument=sap, parameters=slow)
    assert result["score"] < D("0.15") and recommendation == "hold"


@pytest.mark.django_db
def test_only_items_within_the_window_count_and_none_is_missing_data():
    sap = make_instrument()
    add_news(sap, "SAP beats expectations", language="en", hours_ago=24 * 10)
    parameters = sa.sentiment_parameters_clean(parameters={"days": 7})

    with pytest.raises(ValidationFailed) as refused:
        sa.sentiment_analysis_check(instrument=sap, parameters=parameters)

    assert (refused.value.code, refused.value.details["missing"]) == ("missing_data", ["news"])
    wider = sa.sentiment_parameters_clean(parameters={"days": 11})
    sa.sentiment_analysis_check(instrument=sap, parameters=wider)
    assert sa.sentiment_analysis_run(instrument=sap, parameters=wider)[0]["items"] == 1


@pytest.mark.django_db
def test_the_providers_scores_are_kept_beside_ours_and_not_mixed_in():
    sap = make_instrument()
    add_news(sap, "SAP shares are quoted", language="en", provider_score="0.8")
    parameters = sa.sentiment_parameters_clean(parameters={})

    result, _, recommendation = sa.sentiment_analysis_run(instrument=sap, parameters=parameters)

    assert (result["score"], recommendation) == (D("0.0000"), "hold")
    assert (result["provider_score"], result["provider_scored_items"]) == (D("0.8000"), 1)


@pytest.mark.parametrize(
    "parameters, field",
    [
        ({"days": 0}, "parameters.days"),
        ({"days": 366}, "parameters.days"),
        ({"half_life_hours": 1.5}, "parameters.half_life_hours"),
        ({"max_items": True}, "parameters.max_items"),
        ({"metrics": ["pe_ratio"]}, "parameters"),
        ("7", "parameters"),
    ],
)
def test_bad_sentiment_parameters_are_refused_naming_the_field(parameters, field):
    with pytest.raises(ValidationFailed) as refused:
        sa.sentiment_parameters_clean(parameters=parameters)

    assert refused.value.details.get("field") == field


@pytest.mark.django_db(transaction=True)
async def test_start_sentiment_analysis_sends_the_score_and_the_headlines(ws_connect, staff_user):
    sap = await sync_to_async(make_instrument)()
    await sync_to_async(add_news)(sap, "SAP übertrifft die Erwartungen", language="de", hours_ago=1)
    await sync_to_async(add_news)(sap, "SAP shares slump", language="en", hours_ago=30)
    client, connected = await ws_connect(cookie=await login_cookie(staff_user))
    assert connected

    response = await client.command("start_analysis", {"symbol": "SAP", "analysis_type": "sentiment"})

    assert response["data"]["status"] == "success", response
    event = await client.receive_event("analysis.complete")
    data = get_schema("analysis.complete").validate(event["data"])
    result = data["result"]
    assert (data["analysis_type"], data["recommendation"]) == ("sentiment", "buy")
    assert result["items"] == 2 and isinstance(result["score"], Decimal)
    assert result["strongest_positive"]["headline"] == "SAP übertrifft die Erwartungen"
    assert result["strongest_negative"]["headline"] == "SAP shares slump"
    assert [h["headline"] for h in result["headlines"]] == ["SAP übertrifft die Erwartungen", "SAP shares slump"]
    listed = (await client.command("get_recommendations", {"symbol": "SAP"}))["data"]["result"]["recommendations"]
    assert listed[0]["result"]["score"] == result["score"]
    assert listed[0]["result"]["strongest_negative"]["score"] == result["strongest_negative"]["score"]


@pytest.mark.django_db(transaction=True)
async def test_sentiment_analysis_without_news_is_an_error_response(ws_connect, staff_user):
    await sync_to_async(make_instrument)()
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))

    response = await client.command("start_analysis", {"symbol": "SAP", "analysis_type": "sentiment"})

    result = response["data"]["result"]
    assert (response["data"]["status"], result["code"], result["missing"]) == ("error", "missing_data", ["news"])
    assert await Analysis.objects.acount() == 0


# Alpha Vantage news sentiment

NEWS: dict[str, Any] = {  # an Alpha Vantage answer, as json.loads gives it
    "items": "3",
    "feed": [
        {
            "title": "SAP beats estimates",
            "url": "https://news.example/sap-beats",
            "time_published": "20250301T093000",
            "summary": "Cloud revenue grew.",
            "source": "Example Wire",
            "overall_sentiment_score": 0.31,
            "ticker_sentiment": [
                {"ticker": "MSFT", "relevance_score": "0.2", "ticker_sentiment_score": "0.05"},
                {"ticker": "SAP", "relevance_score": "0.9", "ticker_sentiment_score": "0.451249"},
            ],
        },
        {
            "title": "Microsoft news without SAP",
            "url": "https://news.example/msft",
            "time_published": "20250301T100000",
            "summary": "",
            "source": "Example Wire",
            "overall_sentiment_score": 0.1,
            "ticker_sentiment": [{"ticker": "MSFT", "relevance_score": "0.9", "ticker_sentiment_score": "0.1"}],
        },
    ],
}


def test_alpha_vantage_news_keeps_the_tickers_items_with_its_score():
    records = news_from_alpha_vantage(NEWS, symbol="SAP", ticker="SAP")
    cleaned = [news_record_clean(record) for record in records]

    assert len(cleaned) == 1
    item = cleaned[0]
    assert (item["headline"], item["language"], item["source"]) == ("SAP beats estimates", "en", "Example Wire")
    assert item["published_at"].isoformat() == "2025-03-01T09:30:00+00:00"
    # six decimals as Alpha Vantage sends them, kept to four
    assert (item["provider_score"], item["url"]) == (D("0.4512"), "https://news.example/sap-beats")


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"Information": "Please subscribe to a premium plan."}, "premium"),
        ({"items": "0"}, "no feed"),
        ({"feed": [{"time_published": "yesterday"}]}, "time_published"),
        ({"feed": ["text"]}, "feed item 1"),
        ({"feed": [{**NEWS["feed"][0], "ticker_sentiment": [], "overall_sentiment_score": "high"}]}, "not a number"),
    ],
)
def test_alpha_vantage_news_errors_are_named(payload, message):
    with pytest.raises(ValueError, match=message):
        news_from_alpha_vantage(payload, symbol="SAP", ticker="SAP")
