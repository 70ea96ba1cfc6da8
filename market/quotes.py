"""Quotes of real markets over HTTP: Alpha Vantage's GLOBAL_QUOTE and Bitpanda's public ticker.

Both are polled within a call budget, and every way a source can fail (unreachable, slow, an
HTTP error, a rate-limit or error answer in a 200, a body that is not what the documentation
says) ends in the provider's `health` and a later retry, never in an exception out of `ticks`
or a price that was not in the answer. Prices are parsed from the answer's text as Decimals.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.utils import timezone

from .polling import (
    RATE_LIMIT_MIN_WAIT,
    Backoff,
    PolledMarket,
    SourceUnavailable,
    call_spacing,
    http_get_json,
    provider_text,
)
from .providers import BadQuote, Tick, quote_price, quote_volume


class AlphaVantageMarket(PolledMarket):
    """Alpha Vantage GLOBAL_QUOTE, one symbol a call, the symbols taken in turn within the budget.

    A rate-limit answer ("Note", "Information") or an unusable body fails the source: the same
    symbol is asked again after the backoff. An "Error Message", an empty quote or a bad field
    fails that symbol alone, which is then skipped for its own backoff. An answer equal to the
    previous one for the symbol (same day, price and volume) yields no tick.
    """

    source = "alpha_vantage"

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        symbols: Mapping[str, str] | None = None,
        suffix: str = "",
        calls_per_minute: float = 5.0,
        calls_per_day: float = 25.0,
        timeout: float = 10.0,
        backoff_max: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        if not api_key:
            raise ValueError("Alpha Vantage needs an API key: set MARKET_ALPHA_VANTAGE_API_KEY")
        super().__init__(
            spacing=call_spacing(per_minute=calls_per_minute, per_day=calls_per_day),
            timeout=timeout,
            backoff_max=backoff_max,
            clock=clock,
            rng=rng,
        )
        self.url = url
        self.api_key = api_key
        self.symbols = dict(symbols or {})
        self.suffix = suffix
        self.random = rng or random.Random()
        self.last_symbol: str | None = None
        self.seen: dict[str, tuple[str | None, Decimal, int]] = {}
        self.symbol_backoff: dict[str, Backoff] = {}
        self.symbol_next_call: dict[str, float] = {}

    def provider_symbol(self, symbol: str) -> str:
        return self.symbols.get(symbol) or f"{symbol}{self.suffix}"

    def ticks(self, quotes: Mapping[str, Decimal | None]) -> Iterable[Tick]:
        symbols = sorted(quotes)
        self.forget_other_symbols(symbols)
        ticks: list[Tick] = []
        asked: set[str] = set()
        while self.due():
            symbol = self._next_symbol(symbols, asked)
            if symbol is None:
                break
            asked.add(symbol)
            self.called()
            try:
                answer = http_get_json(
                    self.url,
                    params={"function": "GLOBAL_QUOTE", "symbol": self.provider_symbol(symbol), "apikey": self.api_key},
                    timeout=self.timeout,
                )
                tick = self._tick(symbol, answer)
            except SourceUnavailable as exc:
                self.source_failed(exc)
                break
            except BadQuote as exc:
                self.source_answered()
                self._symbol_failed(symbol, str(exc))
                continue
            self.source_answered()
            self._symbol_answered(symbol)
            if tick is not None:
                ticks.append(tick)
        return ticks

    def _next_symbol(self, symbols: list[str], asked: set[str]) -> str | None:
        """Return the symbol after the last one answered (in turn), skipping those backing off."""
        if not symbols:
            return None
        start = 0
        if self.last_symbol is not None:
            start = next((i for i, s in enumerate(symbols) if s > self.last_symbol), 0)
        now = self.clock()
        for symbol in symbols[start:] + symbols[:start]:
            if symbol not in asked and self.symbol_next_call.get(symbol, now) <= now:
                return symbol
        return None

    def _symbol_failed(self, symbol: str, reason: str) -> None:
        self.last_symbol = symbol
        self.health.symbol_problems[symbol] = reason
        backoff = self.symbol_backoff.setdefault(symbol, Backoff(cap=self.backoff.cap, rng=self.random))
        self.symbol_next_call[symbol] = self.clock() + backoff.failed()

    def _symbol_answered(self, symbol: str) -> None:
        self.last_symbol = symbol
        self.health.symbol_problems.pop(symbol, None)
        self.symbol_backoff.pop(symbol, None)
        self.symbol_next_call.pop(symbol, None)

    def _tick(self, symbol: str, answer: Any) -> Tick | None:
        """Return the tick in a GLOBAL_QUOTE answer, None if it repeats the last one."""
        if not isinstance(answer, dict):
            raise SourceUnavailable("malformed answer: not a JSON object")
        for key in ("Note", "Information"):
            if key in answer:
                raise SourceUnavailable(
                    f"rate limited: {provider_text(answer[key], self.api_key)}", at_least=RATE_LIMIT_MIN_WAIT
                )
        if "Error Message" in answer:
            raise BadQuote(f"error: {provider_text(answer['Error Message'], self.api_key)}")
        quote = answer.get("Global Quote")
        if not isinstance(quote, dict):
            raise SourceUnavailable('malformed answer: no "Global Quote" object')
        theirs = self.provider_symbol(symbol)
        if not quote:
            raise BadQuote(f"no quote for {theirs}")
        if str(quote.get("01. symbol", theirs)).upper() != theirs.upper():
            raise BadQuote(f"answer is for {provider_text(quote.get('01. symbol'))}, not {theirs}")
        if "05. price" not in quote:
            raise BadQuote('answer has no "05. price"')
        if "06. volume" not in quote:
            raise BadQuote('answer has no "06. volume"')
        price = quote_price(quote["05. price"])
        volume = quote_volume(quote["06. volume"])
        day = quote.get("07. latest trading day")
        day = str(day) if day is not None else None
        previous = self.seen.get(symbol)
        self.seen[symbol] = (day, price, volume)
        if previous == (day, price, volume):
            return None
        # The source reports the day's running volume; a tick carries what traded since the
        # previous answer (nothing known before the first one).
        if previous is None:
            traded = 0
        elif previous[0] == day:
            traded = max(0, volume - previous[2])
        else:
            traded = volume
        return Tick(symbol=symbol, price=price, volume=traded, at=timezone.now())


class BitpandaMarket(PolledMarket):
    """Bitpanda's public ticker: one call answers every asset's price in each fiat currency.

    The ticker carries no volume, so its ticks have volume 0; an unchanged price yields no tick.
    """

    source = "bitpanda"

    def __init__(
        self,
        *,
        url: str,
        symbols: Mapping[str, str] | None = None,
        currency: str = "EUR",
        calls_per_minute: float = 6.0,
        timeout: float = 10.0,
        backoff_max: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        super().__init__(
            spacing=call_spacing(per_minute=calls_per_minute),
            timeout=timeout,
            backoff_max=backoff_max,
            clock=clock,
            rng=rng,
        )
        self.url = url
        self.symbols = dict(symbols or {})
        self.currency = currency
        self.last_price: dict[str, Decimal] = {}

    def ticks(self, quotes: Mapping[str, Decimal | None]) -> Iterable[Tick]:
        symbols = sorted(quotes)
        self.forget_other_symbols(symbols)
        if not symbols or not self.due():
            return []
        self.called()
        try:
            answer = http_get_json(self.url, timeout=self.timeout)
            if not isinstance(answer, dict):
                raise SourceUnavailable("malformed answer: not a JSON object")
            if isinstance(answer.get("errors"), list):
                raise SourceUnavailable(f"error: {provider_text(answer['errors'])}")
        except SourceUnavailable as exc:
            self.source_failed(exc)
            return []
        self.source_answered()
        now = timezone.now()
        ticks = []
        for symbol in symbols:
            asset = self.symbols.get(symbol, symbol)
            try:
                entry = answer.get(asset)
                if not isinstance(entry, dict):
                    raise BadQuote(f"{asset} is not in the ticker")
                if self.currency not in entry:
                    raise BadQuote(f"{asset} has no {self.currency} price")
                price = quote_price(entry[self.currency])
            except BadQuote as exc:
                self.health.symbol_problems[symbol] = str(exc)
                continue
            self.health.symbol_problems.pop(symbol, None)
            if self.last_price.get(symbol) == price:
                continue
            self.last_price[symbol] = price
            ticks.append(Tick(symbol=symbol, price=price, volume=0, at=now))
        return ticks
