"""Load company fundamentals (OVERVIEW) and news with sentiment (NEWS_SENTIMENT) from Alpha Vantage."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ValidationFailed
from market.conf import market_setting
from market.figures import fundamentals_from_alpha_vantage_overview, fundamentals_record_clean, fundamentals_store
from market.records import records_clean
from market.sentiment.news import news_from_alpha_vantage, news_record_clean, news_store

WHAT = ("fundamentals", "news")
# Answers larger than this are refused rather than read into memory.
MAX_ANSWER_BYTES = 5 * 1024 * 1024


def alpha_vantage_query(function: str, **params: str) -> Any:
    """Ask Alpha Vantage for one function and return its decoded JSON answer; raise ValueError on any failure."""
    key = market_setting("ALPHA_VANTAGE_API_KEY")
    if not key:
        raise CommandError("No Alpha Vantage key: set MARKET_ALPHA_VANTAGE_API_KEY (or ALPHA_VANTAGE_API_KEY).")
    query = urllib.parse.urlencode({"function": function, **params, "apikey": key})
    url = f"{market_setting('ALPHA_VANTAGE_URL')}?{query}"
    try:
        with urllib.request.urlopen(url, timeout=market_setting("ALPHA_VANTAGE_TIMEOUT")) as response:
            body = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise ValueError(f"{function}: HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise ValueError(f"{function}: {getattr(error, 'reason', error)}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise ValueError(f"{function}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        raise ValueError(f"{function}: the answer is not JSON") from None


class Command(BaseCommand):
    help = (
        "Load fundamentals and news of instruments from Alpha Vantage (ALPHA_VANTAGE_API_KEY, "
        "MARKET_ALPHA_VANTAGE_URL). Give SYMBOL, or SYMBOL=TICKER where Alpha Vantage lists it otherwise "
        "(SAP=SAP.DEX). Exits 1 if any symbol failed; the others are stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="+", help="SYMBOL or SYMBOL=TICKER")
        parser.add_argument("--only", choices=WHAT, help="load only fundamentals or only news")

    def handle(self, *args, symbols: list[str], only: str | None, **options):
        failures = []
        for argument in symbols:
            symbol, _, ticker = argument.partition("=")
            symbol, ticker = symbol.strip().upper(), (ticker or symbol).strip().upper()
            for what in [only] if only else WHAT:
                try:
                    self.stdout.write(f"{symbol} {what}: {self._load(what, symbol, ticker)}")
                except (ValueError, ValidationFailed) as error:
                    message = error.message if isinstance(error, ValidationFailed) else str(error)
                    failures.append(f"{symbol} {what}: {message}")
        if failures:
            raise CommandError("\n".join(failures))

    def _load(self, what: str, symbol: str, ticker: str) -> str:
        if what == "fundamentals":
            record = fundamentals_from_alpha_vantage_overview(
                alpha_vantage_query("OVERVIEW", symbol=ticker), symbol=symbol
            )
            stored = fundamentals_store(records=[fundamentals_record_clean(record)])
            return f"figures of {stored[0].as_of} stored"
        answer = alpha_vantage_query("NEWS_SENTIMENT", tickers=ticker, limit="50")
        records = [
            (f"feed item {index}", item)
            for index, item in enumerate(news_from_alpha_vantage(answer, symbol=symbol, ticker=ticker), 1)
        ]
        cleaned, errors = records_clean(records, news_record_clean)
        if errors:
            raise ValueError("; ".join(errors[:5]))
        added, known = news_store(records=cleaned)
        return f"{added} new items, {known} already stored"
