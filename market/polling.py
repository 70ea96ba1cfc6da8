"""Calling a market's HTTP source within a budget: JSON over HTTP, retry-after, backoff, the polled provider.

What `market.quotes` builds its providers on: every way a source can fail (unreachable, slow, an
HTTP error, an answer too large or not JSON) becomes `SourceUnavailable`, which the provider
records in its `health` and answers with a later retry.
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

from .providers import ProviderHealth

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
