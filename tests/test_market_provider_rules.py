"""The providers' rules without a source: quote fields parsed exactly, backoff and call spacing, provider settings."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from market.feed import provider_from_settings
from market.polling import Backoff, call_spacing, retry_after_seconds
from market.providers import BadQuote, quote_price, quote_volume

pytestmark = pytest.mark.django_db(transaction=True)


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
    [
        "",
        "N/A",
        "-1.00",
        "0",
        "0.0000",
        "1e3",
        "NaN",
        "Infinity",
        "1.23456",
        "١٢٣",
        "123456789012345.5",
        1.5,
        None,
        [],
        True,
        -3,
        Decimal("NaN"),
    ],
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


# Which settings make a provider


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
