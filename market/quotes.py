"""Quotes of real markets over HTTP: Alpha Vantage's GLOBAL_QUOTE and Bitpanda's public ticker.

Both are polled within a call budget, and every way a source can fail (unreachable, slow, an
HTTP error, a rate-limit or error answer in a 200, a body that is not what the documentation
says) ends in the provider's `health` and a later retry, never in an exception out of `ticks`
or a price that was not in the answer. Prices are parsed from the answer's text as Decimals.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from django.utils import timezone

from core.numbers import ascii_int

from .providers import BadQuote, ProviderHealth, Tick, quote_price, quote_volume

USER_AGENT = "aktienanalyse-market-feed"
MAX_ANSWER_BYTES = 1 << 20
MAX_RETRY_AFTER = 86400.0  # a source's own Retry-After is honoured up to a day
RATE_LIMIT_MIN_WAIT = 60.0  # a rate-limit answer without Retry-After: wait at least a minute
MESSAGE_CHARS = 200


class SourceUnavailable(Exception):
    """The source as a whole gave no usable answer; `retry_after` is the wait it asked for, if any.

    `at_least` is the shortest sensible wait before the next call (a minute after a rate limit).
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, at_least: float = 0.0):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.at_least = at_least


def retry_after_seconds(value: str | None, *, now: Callable[[], datetime] = timezone.now) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if (seconds := ascii_int(value, max_digits=9)) is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now()).total_seconds())


def http_get_json(url: str, *, params: Mapping[str, str] | None = None, timeout: float) -> Any:
    """GET `url` and return its JSON body (numbers as Decimal); raise SourceUnavailable saying why not.

    The reason never contains the URL, since its query may carry an API key.
    """
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
    request = Request(url, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
    try:
        with urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_ANSWER_BYTES + 1)
    except HTTPError as exc:
        retry_after = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None)
        exc.close()
        limited = exc.code == 429
        raise SourceUnavailable(
            "rate limited: HTTP 429" if limited else f"HTTP {exc.code}",
            retry_after=retry_after,
            at_least=RATE_LIMIT_MIN_WAIT if limited and retry_after is None else 0.0,
        ) from None
    except TimeoutError:
        raise SourceUnavailable(f"no answer within {timeout:g} s") from None
    except URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise SourceUnavailable(f"no answer within {timeout:g} s") from None
        raise SourceUnavailable(f"unreachable: {str(exc.reason)[:MESSAGE_CHARS]}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise SourceUnavailable(f"connection failed: {type(exc).__name__}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise SourceUnavailable("malformed answer: larger than 1 MiB")
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise SourceUnavailable("malformed answer: not JSON") from None


class Backoff:
    """Waits between retries: doubling from `base` up to `cap`, jittered; a longer Retry-After wins.

    Jitter keeps the upper half of each step random, so feeds restarted together spread out.
    """

    def __init__(self, *, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None):
        if base <= 0 or cap < base:
            raise ValueError("the backoff base must be positive and not above the cap")
        self.base, self.cap = base, cap
        self.random = rng or random.Random()
        self.failures = 0

    def failed(self, *, retry_after: float | None = None, minimum: float = 0.0) -> float:
        """Count a failure and return the seconds to wait before the next try."""
        self.failures += 1
        step = min(self.cap, self.base * 2 ** min(self.failures - 1, 32))
        wait = max(step / 2 + self.random.uniform(0, step / 2), minimum)
        if retry_after is not None:
            wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
        return wait

    def succeeded(self) -> None:
        self.failures = 0


def call_spacing(*, per_minute: float, per_day: float = 0.0) -> float:
    """Return the seconds between calls that keep within both budgets (per_day 0: no daily limit).

    Calls are spread evenly rather than spent in a burst, so a daily budget lasts the whole day.
    """
    if per_minute <= 0 or per_day < 0:
        raise ValueError("calls per minute must be positive and calls per day not negative")
    spacing = 60.0 / per_minute
    return max(spacing, 86400.0 / per_day) if per_day else spacing


class PolledMarket:
    """A provider that calls its source no more often than `spacing` and backs off after failures."""

    source = "polled"
    needs_last_price = False

    def __init__(
        self,
        *,
        spacing: float,
        timeout: float,
        backoff_max: float,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        if timeout <= 0:
            raise ValueError("the provider timeout must be positive")
        self.spacing = spacing
        self.timeout = timeout
        self.clock = clock
        self.backoff = Backoff(cap=max(backoff_max, 2.0), rng=rng)
        self.next_call_at = clock()
        self.health = ProviderHealth(expected_interval=spacing)

    def due(self) -> bool:
        return self.clock() >= self.next_call_at

    def called(self) -> None:
        """Spend one call of the budget."""
        self.next_call_at = max(self.next_call_at, self.clock() + self.spacing)

    def source_failed(self, exc: SourceUnavailable) -> None:
        """Record why the source failed and put the next call off by the backoff."""
        wait = max(self.spacing, self.backoff.failed(retry_after=exc.retry_after, minimum=exc.at_least))
        self.next_call_at = max(self.next_call_at, self.clock() + wait)
        self.health.reason = f"{self.source}: {exc.reason}"
        self.health.retry_at = timezone.now() + timedelta(seconds=wait)

    def source_answered(self) -> None:
        self.backoff.succeeded()
        self.health.reason = None
        self.health.retry_at = None
        self.health.last_answer_at = timezone.now()

    def forget_other_symbols(self, quotes: Iterable[str]) -> None:
        """Drop problems of symbols the feed no longer asks about."""
        asked = set(quotes)
        for symbol in [s for s in self.health.symbol_problems if s not in asked]:
            del self.health.symbol_problems[symbol]


def provider_text(value: Any, secret: str = "") -> str:
    """Return a source's message shortened for logs and status, with the API key blanked."""
    text = " ".join(str(value).split())[:MESSAGE_CHARS]
    return text.replace(secret, "***") if secret else text


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
