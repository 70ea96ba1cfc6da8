"""The Alpha Vantage provider against a local stand-in of its HTTP source, and the feed status it reports.

Every source answer the documentation describes (a quote, a rate-limit "Note" or "Information",
an "Error Message", HTTP errors, a slow or malformed answer, missing and non-numeric fields) is
served by `quote_stand_in`; the provider's clock is a `FakeClock`, so backoffs are stepped over
instead of slept through.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from channels.layers import channel_layers

from market import status as market_status
from market.background import background_start, background_stop
from market.feed import PriceFeed, running_feed
from market.models import PriceTick
from market.probes import feed_facts
from market.quotes import AlphaVantageMarket
from tests.fixtures.market import (
    AV_ERROR,
    AV_INFORMATION,
    AV_NOTE,
    Answer,
    as_json,
    global_quote,
    market_feed_status,
    run_round,
    stored,
)
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def alpha_vantage(stand_in, clock, **options) -> AlphaVantageMarket:
    """An Alpha Vantage provider on the stand-in: one call a second of the fake clock, no daily limit."""
    defaults = {"calls_per_minute": 60, "calls_per_day": 0, "timeout": 2.0, "suffix": ".DEX"}
    return AlphaVantageMarket(
        url=stand_in.url, api_key="test-key", clock=clock, rng=random.Random(1), **{**defaults, **options}
    )


def test_alpha_vantage_quotes_are_stored_and_published_with_their_source(
    sap_and_siemens, quote_stand_in, clock, published
):
    # given the source quoting SAP.DEX and SIE.DEX
    quote_stand_in.script(
        "SAP.DEX", global_quote("SAP.DEX", "215.4000", "1200"), global_quote("SAP.DEX", "216.1000", "1500")
    )
    quote_stand_in.script("SIE.DEX", global_quote("SIE.DEX", "178.9000", "800"))
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    # when three rounds run, a second of the budget apart (one call each, the symbols in turn)
    for _ in range(3):
        run_round(feed)
        clock.advance(1)
    # then each quote was stored as sent, and published as market.price_update from alpha_vantage
    assert stored("SAP") == [(Decimal("215.4000"), 0, "alpha_vantage"), (Decimal("216.1000"), 300, "alpha_vantage")]
    assert stored("SIE") == [(Decimal("178.9000"), 0, "alpha_vantage")]
    events = published.data("market.price_update")
    assert [(e["symbol"], e["price"], e["source"]) for e in events] == [
        ("SAP", Decimal("215.40"), "alpha_vantage"),
        ("SIE", Decimal("178.90"), "alpha_vantage"),
        ("SAP", Decimal("216.10"), "alpha_vantage"),
    ]
    # the request was GLOBAL_QUOTE with the exchange suffix and the key
    assert quote_stand_in.requests[0] == {"function": "GLOBAL_QUOTE", "symbol": "SAP.DEX", "apikey": "test-key"}
    status = market_feed_status()
    assert (status["status"], status["provider"], status["reason"]) == ("online", "alpha_vantage", None)


def test_alpha_vantage_uses_the_configured_symbol_map(sap_and_siemens, quote_stand_in, clock, published):
    quote_stand_in.script("SAP.FRK", global_quote("SAP.FRK", "215.0000"))
    feed = PriceFeed(
        provider=alpha_vantage(quote_stand_in, clock, symbols={"SAP": "SAP.FRK"}), interval=1, symbols=["SAP"]
    )
    run_round(feed)
    assert quote_stand_in.asked("SAP.FRK") == 1
    assert [e["price"] for e in published.data("market.price_update")] == [Decimal("215.00")]


def test_an_unchanged_quote_publishes_no_tick(sap_at_100, quote_stand_in, clock, published):
    quote_stand_in.script(
        "SAP.DEX",
        global_quote("SAP.DEX", "101.0000", "500"),
        global_quote("SAP.DEX", "101.0000", "500"),
        global_quote("SAP.DEX", "101.5000", "900"),
    )
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    for _ in range(3):
        run_round(feed)
        clock.advance(1)
    assert quote_stand_in.asked("SAP.DEX") == 3
    # the repeat brought no tick; the change brought one with the volume traded since
    assert stored("SAP") == [(Decimal("101.0000"), 0, "alpha_vantage"), (Decimal("101.5000"), 400, "alpha_vantage")]
    assert market_feed_status()["status"] == "online"


@pytest.mark.parametrize("limit", [AV_NOTE, AV_INFORMATION], ids=["Note", "Information"])
def test_alpha_vantage_rate_limit_answer_degrades_the_feed_and_it_recovers_after_backing_off(
    sap_at_100, quote_stand_in, clock, published, limit
):
    # given a source that answers the first call with its rate-limit message, then a quote
    quote_stand_in.script("SAP.DEX", limit, global_quote("SAP.DEX", "102.0000"))
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    # when a round meets the limit
    assert run_round(feed) == 0
    # then nothing was made up, and the status says the feed is degraded and why
    assert stored("SAP") == [] and published.data("market.price_update") == []
    status = market_feed_status()
    assert status["status"] == "degraded" and status["running"]
    assert status["reason"].startswith("alpha_vantage: rate limited: ")
    assert status["retry_in_seconds"] >= 59
    # and the feed waits at least a minute before it asks again
    clock.advance(30)
    run_round(feed)
    assert quote_stand_in.asked() == 1
    # when the wait is over, the next quote is published and the status is online again
    clock.advance(31)
    assert run_round(feed) == 1
    assert [e["price"] for e in published.data("market.price_update")] == [Decimal("102.00")]
    status = market_feed_status()
    assert (status["status"], status["reason"]) == ("online", None)


def test_alpha_vantage_error_for_one_symbol_skips_it_and_keeps_the_others(
    sap_and_siemens, quote_stand_in, clock, published
):
    # given SAP quoted and SIE answered with an error message
    quote_stand_in.script(
        "SAP.DEX", global_quote("SAP.DEX", "101.0000", "10"), global_quote("SAP.DEX", "101.2000", "20")
    )
    quote_stand_in.script("SIE.DEX", AV_ERROR)
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    # when the rounds take SAP, SIE, then SAP again (SIE is backing off)
    for _ in range(3):
        run_round(feed)
        clock.advance(1)
    # then SAP's quotes are published, SIE has no tick and is named in the status
    assert [e["symbol"] for e in published.data("market.price_update")] == ["SAP", "SAP"]
    assert stored("SIE") == []
    assert quote_stand_in.asked("SIE.DEX") == 1
    status = market_feed_status()
    assert status["status"] == "degraded"
    assert status["symbol_problems"] == {"SIE": "error: " + AV_ERROR_TEXT}
    assert "SIE: error: Invalid API call" in status["reason"]


AV_ERROR_TEXT = "Invalid API call. Check the symbol and the function named in the request."


@pytest.mark.parametrize(
    "answer, reason",
    [
        (Answer("upstream down", status=503), "alpha_vantage: HTTP 503"),
        (Answer("{not json", status=200), "alpha_vantage: malformed answer: not JSON"),
        (as_json(["a", "list"]), "alpha_vantage: malformed answer: not a JSON object"),
        (as_json({"Meta": "no quote here"}), 'alpha_vantage: malformed answer: no "Global Quote" object'),
        (Answer(global_quote("SAP.DEX", "101.0000").body, delay=2.0), "alpha_vantage: no answer within 0.3 s"),
    ],
    ids=["http-503", "malformed-json", "not-an-object", "no-global-quote", "slow"],
)
def test_alpha_vantage_source_failure_degrades_the_feed_with_the_reason_and_it_recovers(
    sap_at_100, quote_stand_in, clock, published, answer, reason
):
    quote_stand_in.script("SAP.DEX", answer, global_quote("SAP.DEX", "103.0000"))
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock, timeout=0.3), interval=1)
    assert run_round(feed) == 0
    status = market_feed_status()
    assert (status["status"], status["reason"]) == ("degraded", reason)
    assert stored("SAP") == []
    # the backoff (about two seconds after a first failure) passes, and the quote comes through
    clock.advance(2.5)
    assert run_round(feed) == 1
    assert [e["price"] for e in published.data("market.price_update")] == [Decimal("103.00")]
    assert market_feed_status()["status"] == "online"


def test_retry_after_of_the_source_is_honoured(sap_at_100, quote_stand_in, clock):
    quote_stand_in.script(
        "SAP.DEX", Answer("slow down", status=429, headers={"Retry-After": "120"}), global_quote("SAP.DEX", "101.0000")
    )
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    run_round(feed)
    assert market_feed_status()["reason"] == "alpha_vantage: rate limited: HTTP 429"
    clock.advance(119)
    run_round(feed)
    assert quote_stand_in.asked() == 1
    clock.advance(2)
    assert run_round(feed) == 1


@pytest.mark.parametrize(
    "quote, problem",
    [
        ({"01. symbol": "SAP.DEX", "06. volume": "10"}, 'answer has no "05. price"'),
        ({"01. symbol": "SAP.DEX", "05. price": "101.0000"}, 'answer has no "06. volume"'),
        (
            {"01. symbol": "SAP.DEX", "05. price": "N/A", "06. volume": "10"},
            "price 'N/A' is not a positive decimal number",
        ),
        ({"01. symbol": "SAP.DEX", "05. price": "0.0000", "06. volume": "10"}, "price '0.0000' is not positive"),
        ({"01. symbol": "SAP.DEX", "05. price": 101.25, "06. volume": "10"}, None),
        ({"01. symbol": "SIE.DEX", "05. price": "101.0000", "06. volume": "10"}, "answer is for SIE.DEX, not SAP.DEX"),
        ({}, "no quote for SAP.DEX"),
    ],
    ids=["no-price", "no-volume", "non-numeric", "zero", "json-number", "other-symbol", "empty"],
)
def test_a_quote_with_a_missing_or_bad_field_is_skipped_and_reported(
    sap_at_100, quote_stand_in, clock, published, quote, problem
):
    quote_stand_in.script("SAP.DEX", as_json({"Global Quote": quote}))
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    recorded = run_round(feed)
    status = market_feed_status()
    if problem is None:
        # a JSON number is taken exactly as written, never through a float
        assert recorded == 1 and stored("SAP")[0][0] == Decimal("101.25")
        return
    assert recorded == 0 and published.data("market.price_update") == []
    assert status["status"] == "degraded"
    assert status["symbol_problems"] == {"SAP": problem}


def test_the_api_key_never_appears_in_the_status(sap_at_100, quote_stand_in, clock):
    quote_stand_in.script("SAP.DEX", as_json({"Error Message": "the key test-key is not valid"}))
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock), interval=1)
    run_round(feed)
    status = market_feed_status()
    assert status["symbol_problems"] == {"SAP": "error: the key *** is not valid"}
    assert "test-key" not in str(status)


def test_alpha_vantage_without_an_api_key_is_refused_at_start(settings):
    settings.MARKET = {**settings.MARKET, "PROVIDER": "alpha_vantage", "ALPHA_VANTAGE_API_KEY": ""}
    with pytest.raises(ImproperlyConfigured, match="MARKET_ALPHA_VANTAGE_API_KEY"):
        PriceFeed.from_settings()


async def test_in_process_alpha_vantage_feed_streams_quotes_and_survives_its_limits(
    ws_connect, operator_user, sap_and_siemens, quote_stand_in, settings, monkeypatch
):
    # given the server's own feed on Alpha Vantage (the stand-in), fast, with the status monitor on
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "BRIDGE": "off"}  # the Redis bus plays no part here
    channel_layers.backends.clear()
    monkeypatch.setattr(market_status, "_monitor", None)
    quote_stand_in.script("SAP.DEX", global_quote("SAP.DEX", "215.4000"), global_quote("SAP.DEX", "216.1000"), AV_NOTE)
    quote_stand_in.script("SIE.DEX", AV_ERROR)
    client, _ = await ws_connect(cookie=await login_cookie(operator_user))
    await client.subscribe("market.price_update", "system.service_status")
    settings.MARKET = {
        **settings.MARKET,
        "FEED_IN_PROCESS": True,
        "FEED_INTERVAL": 0.05,
        "STATUS_INTERVAL": 0.05,
        "STATUS_HEARTBEAT": 3600,
        "DATABASE_LATENCY_ALERT_MS": 60000,
        "CHANNEL_LAYER_LATENCY_ALERT_MS": 60000,
        "PROVIDER": "alpha_vantage",
        "ALPHA_VANTAGE_URL": quote_stand_in.url,
        "ALPHA_VANTAGE_API_KEY": "test-key",
        "ALPHA_VANTAGE_CALLS_PER_MINUTE": 1200,
        "ALPHA_VANTAGE_CALLS_PER_DAY": 0,
    }
    try:
        # when the server starts its background work (again: the connection started it with the feed off)
        await background_stop()
        background_start()
        # then SAP's quotes stream to the subscriber as alpha_vantage ticks
        first = await client.receive_event("market.price_update", timeout=10)
        second = await client.receive_event("market.price_update", timeout=10)
        assert [(m["data"]["symbol"], m["data"]["price"], m["data"]["source"]) for m in (first, second)] == [
            ("SAP", Decimal("215.40"), "alpha_vantage"),
            ("SAP", Decimal("216.10"), "alpha_vantage"),
        ]
        # and once the source answers with its rate limit, the status says so while the feed runs on
        async with asyncio.timeout(10):
            while True:
                event = await client.receive_event("system.service_status", timeout=10)
                info = event["data"]["additional_info"]
                if event["data"]["service_name"] == "market_feed" and "rate limited" in (info["reason"] or ""):
                    break
        assert event["data"]["status"] == "degraded"
        assert (info["provider"], info["running"], info["mode"]) == ("alpha_vantage", True, "in_process")
        assert info["symbol_problems"] == {"SIE": "error: " + AV_ERROR_TEXT}
        assert running_feed().running and running_feed().failures == 0
    finally:
        await background_stop()
    assert await PriceTick.objects.filter(instrument__symbol="SIE").acount() == 0


def test_in_process_feed_with_bad_settings_reports_why_it_is_offline(sap_at_100, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.MARKET = {**settings.MARKET, "FEED_IN_PROCESS": True, "PROVIDER": "replay", "REPLAY_FILE": ""}

    async def start_and_check() -> dict:
        background_start()
        try:
            return await feed_facts()
        finally:
            await background_stop()

    facts = asyncio.run(start_and_check())
    assert (facts["status"], facts["running"]) == ("offline", False)
    assert "MARKET_REPLAY_FILE" in facts["reason"]


def test_monitor_publishes_the_feed_status_again_when_only_its_reason_changes(settings, published):
    settings.MARKET = {**settings.MARKET, "STATUS_HEARTBEAT": 3600}
    monitor = market_status.StatusMonitor()

    def status(reason: str) -> dict:
        probe = {"status": "online", "response_time_ms": 1.0, "error_rate": 0.0}
        feed = {"status": "degraded", "reason": reason, "response_time_ms": None, "error_rate": 0.0}
        return {
            "timestamp": "2024-05-02T09:00:00.000Z",
            "services": {"database": probe, "channel_layer": probe, "market_feed": feed},
        }

    for reason in ("SIE: no quote", "SIE: no quote", "alpha_vantage: rate limited: wait"):
        asyncio.run(monitor.publish(status(reason)))
    feed_events = [e for e in published.data("system.service_status") if e["service_name"] == "market_feed"]
    assert [e["additional_info"]["reason"] for e in feed_events] == [
        "SIE: no quote",
        "alpha_vantage: rate limited: wait",
    ]
