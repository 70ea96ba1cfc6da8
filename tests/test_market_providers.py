"""Market data providers against a local stand-in of their HTTP sources, and CSV replay.

Every source answer the documentation describes (a quote, a rate-limit "Note" or "Information",
an "Error Message", HTTP errors, a slow or malformed answer, missing and non-numeric fields) is
served by `quote_stand_in`; the provider's clock is a `FakeClock`, so backoffs are stepped over
instead of slept through.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from channels.layers import channel_layers

from market import status as market_status
from market.background import background_start, background_stop
from market.feed import PriceFeed, provider_from_settings, running_feed
from market.models import FeedState, PriceTick
from market.probes import feed_facts
from market.providers import BadQuote, quote_price, quote_volume
from market.polling import Backoff, call_spacing, retry_after_seconds
from market.quotes import AlphaVantageMarket, BitpandaMarket
from market.replay import ReplayFileError, ReplayMarket, replay_rows_read
from tests.fixtures.market import (
    AV_ERROR,
    AV_INFORMATION,
    AV_NOTE,
    Answer,
    FakeClock,
    as_json,
    bitpanda_ticker,
    global_quote,
    make_instrument,
)
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(__file__).resolve().parent.parent


def run_round(feed: PriceFeed) -> int:
    return asyncio.run(feed.run_round())


def market_feed_status() -> dict:
    return asyncio.run(feed_facts())


def stored(symbol: str) -> list[tuple[Decimal, int, str]]:
    return [(t.price, t.volume, t.source) for t in PriceTick.objects.filter(instrument__symbol=symbol).order_by("at", "id")]


@pytest.fixture
def sap_and_siemens(db):
    return make_instrument(), make_instrument(symbol="SIE", isin="DE0007236101", price="50.00", name="Siemens AG")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def alpha_vantage(stand_in, clock, **options) -> AlphaVantageMarket:
    """An Alpha Vantage provider on the stand-in: one call a second of the fake clock, no daily limit."""
    defaults = {"calls_per_minute": 60, "calls_per_day": 0, "timeout": 2.0, "suffix": ".DEX"}
    return AlphaVantageMarket(
        url=stand_in.url, api_key="test-key", clock=clock, rng=random.Random(1), **{**defaults, **options}
    )


# Parsing quotes: exact, validated, never made up


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("215.4000", Decimal("215.4000")),
        (" 0.0001 ", Decimal("0.0001")),
        ("7", Decimal("7")),
        (Decimal("12.5"), Decimal("12.5")),  # a JSON number, parsed as a Decimal
        (58000, Decimal("58000")),  # a JSON integer
    ],
)
def test_quote_price_is_the_exact_decimal_of_the_text(raw, expected):
    price = quote_price(raw)
    assert price == expected and isinstance(price, Decimal) and str(price) == str(expected)


@pytest.mark.parametrize(
    "raw",
    ["", "N/A", "-1.00", "0", "0.0000", "1e3", "NaN", "Infinity", "1.23456", "١٢٣", "123456789012345.5", 1.5, None, [], True, -3, Decimal("NaN")],
)
def test_quote_price_refuses_what_is_not_a_storable_positive_price(raw):
    with pytest.raises(BadQuote):
        quote_price(raw)


@pytest.mark.parametrize("raw", ["-5", "1.5", "", "lots", 3.0, None])
def test_quote_volume_refuses_what_is_not_a_whole_number(raw):
    with pytest.raises(BadQuote):
        quote_volume(raw)


def test_backoff_doubles_up_to_its_cap_with_jitter_and_a_longer_retry_after_wins():
    backoff = Backoff(base=2, cap=16, rng=random.Random(3))
    waits = [backoff.failed() for _ in range(6)]
    for wait, step in zip(waits, [2, 4, 8, 16, 16, 16]):
        assert step / 2 <= wait <= step
    assert backoff.failed(retry_after=120) == 120
    assert backoff.failed(minimum=60) >= 60
    backoff.succeeded()
    assert backoff.failed() <= 2


def test_call_spacing_keeps_within_the_minute_and_the_day_budget():
    assert call_spacing(per_minute=5, per_day=25) == 86400 / 25  # the free tier: the daily budget decides
    assert call_spacing(per_minute=75, per_day=0) == 0.8  # a plan without a daily limit
    with pytest.raises(ValueError):
        call_spacing(per_minute=0)


def test_retry_after_is_read_as_seconds_or_an_http_date():
    from datetime import datetime, timezone

    now = datetime(2024, 5, 2, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Thu, 02 May 2024 12:01:30 GMT", now=lambda: now) == 90
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("²") is None and retry_after_seconds("١٢") is None  # not ASCII digits


# Alpha Vantage


def test_alpha_vantage_quotes_are_stored_and_published_with_their_source(
    sap_and_siemens, quote_stand_in, clock, published
):
    # given the source quoting SAP.DEX and SIE.DEX
    quote_stand_in.script("SAP.DEX", global_quote("SAP.DEX", "215.4000", "1200"), global_quote("SAP.DEX", "216.1000", "1500"))
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
    feed = PriceFeed(provider=alpha_vantage(quote_stand_in, clock, symbols={"SAP": "SAP.FRK"}), interval=1, symbols=["SAP"])
    run_round(feed)
    assert quote_stand_in.asked("SAP.FRK") == 1
    assert [e["price"] for e in published.data("market.price_update")] == [Decimal("215.00")]


def test_an_unchanged_quote_publishes_no_tick(sap_at_100, quote_stand_in, clock, published):
    quote_stand_in.script("SAP.DEX", global_quote("SAP.DEX", "101.0000", "500"), global_quote("SAP.DEX", "101.0000", "500"), global_quote("SAP.DEX", "101.5000", "900"))
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
    quote_stand_in.script("SAP.DEX", global_quote("SAP.DEX", "101.0000", "10"), global_quote("SAP.DEX", "101.2000", "20"))
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
    quote_stand_in.script("SAP.DEX", Answer("slow down", status=429, headers={"Retry-After": "120"}), global_quote("SAP.DEX", "101.0000"))
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
        ({"01. symbol": "SAP.DEX", "05. price": "N/A", "06. volume": "10"}, "price 'N/A' is not a positive decimal number"),
        ({"01. symbol": "SAP.DEX", "05. price": "0.0000", "06. volume": "10"}, "price '0.0000' is not positive"),
        ({"01. symbol": "SAP.DEX", "05. price": 101.25, "06. volume": "10"}, None),
        ({"01. symbol": "SIE.DEX", "05. price": "101.0000", "06. volume": "10"}, "answer is for SIE.DEX, not SAP.DEX"),
        ({}, "no quote for SAP.DEX"),
    ],
    ids=["no-price", "no-volume", "non-numeric", "zero", "json-number", "other-symbol", "empty"],
)
def test_a_quote_with_a_missing_or_bad_field_is_skipped_and_reported(sap_at_100, quote_stand_in, clock, published, quote, problem):
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
    quote_stand_in.script(
        "SAP.DEX", global_quote("SAP.DEX", "215.4000"), global_quote("SAP.DEX", "216.1000"), AV_NOTE
    )
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
        return {"timestamp": "2024-05-02T09:00:00.000Z", "services": {"database": probe, "channel_layer": probe, "market_feed": feed}}

    for reason in ("SIE: no quote", "SIE: no quote", "alpha_vantage: rate limited: wait"):
        asyncio.run(monitor.publish(status(reason)))
    feed_events = [e for e in published.data("system.service_status") if e["service_name"] == "market_feed"]
    assert [e["additional_info"]["reason"] for e in feed_events] == ["SIE: no quote", "alpha_vantage: rate limited: wait"]


# Bitpanda


def bitpanda(stand_in, clock, **options) -> BitpandaMarket:
    return BitpandaMarket(url=stand_in.url, calls_per_minute=60, timeout=0.3, clock=clock, rng=random.Random(2), **options)


@pytest.fixture
def coins(db):
    return (
        make_instrument(symbol="BTC", isin="XT0000000BTC", price=None, name="Bitcoin"),
        make_instrument(symbol="ETH", isin="XT0000000ETH", price=None, name="Ether"),
    )


def test_bitpanda_ticker_prices_are_published_and_an_unchanged_one_is_not(coins, quote_stand_in, clock, published):
    quote_stand_in.script(
        "*",
        bitpanda_ticker({"BTC": "58234.12", "ETH": "3101.55", "XRP": "0.5123"}),
        bitpanda_ticker({"BTC": "58240.00", "ETH": "3101.55"}),
    )
    feed = PriceFeed(provider=bitpanda(quote_stand_in, clock), interval=1)
    run_round(feed)
    clock.advance(1)
    run_round(feed)
    events = published.data("market.price_update")
    assert [(e["symbol"], e["price"], e["source"]) for e in events] == [
        ("BTC", Decimal("58234.12"), "bitpanda"),
        ("ETH", Decimal("3101.55"), "bitpanda"),
        ("BTC", Decimal("58240.00"), "bitpanda"),
    ]
    assert events[0]["volume"] == 0
    assert market_feed_status()["status"] == "online"


@pytest.mark.parametrize(
    "answer, reason",
    [
        (Answer("busy", status=429, headers={"Retry-After": "3"}), "bitpanda: rate limited: HTTP 429"),
        (Answer("oops", status=500), "bitpanda: HTTP 500"),
        (Answer("<html>", status=200), "bitpanda: malformed answer: not JSON"),
        (Answer(bitpanda_ticker({"BTC": "1.00"}).body, delay=2.0), "bitpanda: no answer within 0.3 s"),
    ],
    ids=["429", "500", "malformed", "slow"],
)
def test_bitpanda_failure_degrades_the_feed_and_it_recovers(coins, quote_stand_in, clock, published, answer, reason):
    quote_stand_in.script("*", answer, bitpanda_ticker({"BTC": "58000.00", "ETH": "3100.00"}))
    feed = PriceFeed(provider=bitpanda(quote_stand_in, clock), interval=1)
    assert run_round(feed) == 0
    status = market_feed_status()
    assert (status["status"], status["reason"]) == ("degraded", reason)
    clock.advance(3.5)
    assert run_round(feed) == 2
    assert market_feed_status()["status"] == "online"


def test_bitpanda_asset_missing_or_bad_is_skipped_and_reported(coins, quote_stand_in, clock, published):
    quote_stand_in.script("*", as_json({"BTC": {"EUR": "not a price"}, "XRP": {"EUR": "0.51"}}))
    feed = PriceFeed(provider=bitpanda(quote_stand_in, clock), interval=1)
    assert run_round(feed) == 0
    status = market_feed_status()
    assert status["status"] == "degraded"
    assert status["symbol_problems"] == {
        "BTC": "price 'not a price' is not a positive decimal number",
        "ETH": "ETH is not in the ticker",
    }


# Replay


def write_csv(tmp_path: Path, text: str, name: str = "quotes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


QUOTES_CSV = """time,symbol,price,volume
2024-05-02T09:00:00Z,SAP,180.10,100
2024-05-02T09:00:00Z,SIE,175.00,50
2024-05-02T09:01:00Z,SAP,180.40,120
2024-05-02T09:02:00Z,SAP,180.25,90
"""


def test_replay_plays_the_file_in_order_at_its_speed(sap_and_siemens, tmp_path, clock, published):
    # given a minute between rows, played at 60 (a minute a second)
    rows = replay_rows_read(write_csv(tmp_path, QUOTES_CSV))
    feed = PriceFeed(provider=ReplayMarket(rows, speed=60, clock=clock), interval=1)
    # when rounds run half a second apart
    played = []
    for _ in range(5):
        played.append(run_round(feed))
        clock.advance(0.5)
    # then each row played when its time came, in file order, as replay ticks
    assert played == [2, 0, 1, 0, 1]
    assert [(e["symbol"], e["price"], e["volume"], e["source"]) for e in published.data("market.price_update")] == [
        ("SAP", Decimal("180.10"), 100, "replay"),
        ("SIE", Decimal("175.00"), 50, "replay"),
        ("SAP", Decimal("180.40"), 120, "replay"),
        ("SAP", Decimal("180.25"), 90, "replay"),
    ]
    assert feed.finished


def test_replay_loops_when_asked(sap_and_siemens, tmp_path, clock):
    rows = replay_rows_read(write_csv(tmp_path, QUOTES_CSV))
    market = ReplayMarket(rows, speed=1000, loop=True, clock=clock)
    feed = PriceFeed(provider=market, interval=1)
    assert run_round(feed) == 2
    clock.advance(1)
    assert run_round(feed) == 2  # the rest of the file
    assert run_round(feed) == 2  # the start again
    assert market.plays == 1 and not feed.finished


def test_replay_of_ohlc_bars_plays_their_close(sap_at_100, tmp_path, published):
    path = write_csv(tmp_path, "Time,Symbol,Open,High,Low,Close,Volume\n2024-05-02,SAP,100,110,95,108.5,5000\n")
    [row] = replay_rows_read(path)
    assert (row.symbol, row.price, row.volume, row.at.isoformat()) == ("SAP", Decimal("108.5"), 5000, "2024-05-02T00:00:00+00:00")


def test_replay_feed_from_settings_plays_to_the_end_and_stops(sap_and_siemens, tmp_path, settings):
    settings.MARKET = {**settings.MARKET, "PROVIDER": "replay", "REPLAY_FILE": str(write_csv(tmp_path, QUOTES_CSV)), "REPLAY_SPEED": 1e9}
    feed = PriceFeed.from_settings(interval=0.01)
    asyncio.run(asyncio.wait_for(feed.run(), 30))
    assert feed.finished and feed.ticks == 4
    assert [p for p, _, _ in stored("SAP")] == [Decimal("180.10"), Decimal("180.40"), Decimal("180.25")]
    # a finished replay is reported as stopped
    assert FeedState.objects.get().running is False
    assert market_feed_status()["status"] == "offline"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "it is empty"),
        ("time,symbol\n", "line 1: the header lacks price (or open, high, low, close)"),
        ("time,symbol,price,close\n", "line 1: the header has both price and open/high/low/close"),
        ("time,symbol,open,close\n", "line 1: the header lacks high, low"),
        ("time,symbol,price\n", "it has a header but no rows"),
        ("time,symbol,price\n2024-05-02,SAP,1\n2024-05-02,SAP,abc\n", "line 3: price 'abc' is not a positive decimal number"),
        ("time,symbol,price\n2024-05-02,SAP,-1\n", "line 2: price '-1' is not a positive decimal number"),
        ("time,symbol,price\nyesterday,SAP,1\n", "line 2: time 'yesterday' is not an ISO 8601"),
        ("time,symbol,price\n2024-05-03,SAP,1\n2024-05-02,SAP,1\n", "line 3: time 2024-05-02T00:00:00+00:00 is before"),
        ("time,symbol,price\n2024-05-02,SAP\n", "line 2: 2 columns, the header has 3"),
        ("time,symbol,price,volume\n2024-05-02,SAP,1,many\n", "line 2: volume 'many' is not a whole"),
        ("time,symbol,open,high,low,close\n2024-05-02,SAP,10,9,8,9\n", "line 2: the bar's low and high do not enclose"),
    ],
)
def test_a_bad_replay_file_is_refused_naming_the_line(tmp_path, text, message):
    path = write_csv(tmp_path, text)
    with pytest.raises(ReplayFileError) as refused:
        replay_rows_read(path)
    assert message in str(refused.value) and str(path) in str(refused.value)


def test_a_missing_or_binary_replay_file_is_refused(tmp_path):
    with pytest.raises(ReplayFileError, match="cannot be read"):
        replay_rows_read(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"time,symbol,price\n\xff\xfe\x00")
    with pytest.raises(ReplayFileError, match="not UTF-8"):
        replay_rows_read(binary)


def test_market_feed_command_refuses_a_bad_replay_file_with_exit_1_and_the_line(tmp_path):
    path = write_csv(tmp_path, "time,symbol,price\n2024-05-02,SAP,1\n2024-05-02,SAP,twelve\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "market_feed", "--provider", "replay", "--replay-file", str(path), "--ticks", "1"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "line 3: price 'twelve' is not a positive decimal number" in result.stderr
    assert "Traceback" not in result.stderr


def test_market_feed_command_refuses_replay_symbols_without_an_instrument(sap_at_100, tmp_path):
    path = write_csv(tmp_path, QUOTES_CSV)
    with pytest.raises(CommandError, match="no instrument has: SIE"):
        call_command("market_feed", provider="replay", replay_file=str(path), ticks=1)
    assert PriceTick.objects.count() == 0


def test_market_feed_command_replays_a_file(sap_and_siemens, tmp_path, capsys):
    path = write_csv(tmp_path, QUOTES_CSV)
    call_command("market_feed", provider="replay", replay_file=str(path), speed=1e9, interval=0.01)
    assert [p for p, _, _ in stored("SAP")] == [Decimal("180.10"), Decimal("180.40"), Decimal("180.25")]
    assert "4 ticks" in capsys.readouterr().out


@pytest.mark.parametrize(
    "market, message",
    [
        ({"PROVIDER": "replay", "REPLAY_FILE": ""}, "MARKET_REPLAY_FILE"),
        ({"PROVIDER": "replay", "REPLAY_FILE": "/nonexistent/quotes.csv"}, "cannot be read"),
        ({"PROVIDER": "bitpanda", "BITPANDA_CALLS_PER_MINUTE": 0}, "calls per minute must be positive"),
    ],
)
def test_provider_settings_that_make_no_provider_are_refused(settings, market, message):
    settings.MARKET = {**settings.MARKET, **market}
    with pytest.raises(ImproperlyConfigured, match=message):
        provider_from_settings(interval=1)


@pytest.mark.parametrize(
    ("environment", "key"),
    [
        ({"MARKET_ALPHA_VANTAGE_API_KEY": "market-key"}, "market-key"),
        ({"ALPHA_VANTAGE_API_KEY": "plain-key"}, "plain-key"),
        ({"MARKET_ALPHA_VANTAGE_API_KEY": "market-key", "ALPHA_VANTAGE_API_KEY": "plain-key"}, "market-key"),
        ({}, ""),
    ],
)
def test_the_alpha_vantage_key_comes_from_the_environment_for_feed_and_loader_alike(environment, key):
    """The documented MARKET_ALPHA_VANTAGE_API_KEY reaches the quote feed (a second entry of the same
    setting once overrode it with ALPHA_VANTAGE_API_KEY, so the documented key was never read)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MARKET_ALPHA_VANTAGE_API_KEY", "ALPHA_VANTAGE_API_KEY")}
    env.update(environment, DJANGO_SETTINGS_MODULE="aktienanalyse.settings")
    script = "import django; django.setup(); from market.conf import DEFAULTS; print(repr(DEFAULTS['ALPHA_VANTAGE_API_KEY']))"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(key)
