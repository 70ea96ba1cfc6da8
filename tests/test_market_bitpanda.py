"""The Bitpanda provider against a local stand-in of its ticker (`quote_stand_in`), on a `FakeClock`."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from market.feed import PriceFeed
from market.quotes import BitpandaMarket
from tests.fixtures.market import Answer, as_json, bitpanda_ticker, make_instrument, market_feed_status, run_round

pytestmark = pytest.mark.django_db(transaction=True)


def bitpanda(stand_in, clock, **options) -> BitpandaMarket:
    return BitpandaMarket(
        url=stand_in.url, calls_per_minute=60, timeout=0.3, clock=clock, rng=random.Random(2), **options
    )


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
