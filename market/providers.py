"""Where prices come from: a provider yields the next tick of each instrument it is asked about.

The feed only knows the `PriceProvider` interface, so a real data source can replace the
simulated market without touching storage, events, alerts or order execution. The feed calls
`ticks` in a worker thread, so a provider may block on the network; it yields nothing for a
symbol whose quote is unavailable or unchanged this round. The quote sources are in
`market/quotes.py` (Alpha Vantage, Bitpanda) and `market/replay.py` (a CSV file).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol, runtime_checkable

from django.utils import timezone

TICK_SIZE = Decimal("0.01")
MARKET_SECONDS_PER_YEAR = 252 * 8.5 * 3600  # trading days times a Xetra session


@dataclass(frozen=True)
class Tick:
    """One observed price and the volume traded at it."""

    symbol: str
    price: Decimal
    volume: int
    at: datetime


class PriceProvider(Protocol):
    """A source of ticks; `source` names it in every `market.price_update`.

    Optional attributes the feed reads when present: `needs_last_price` (default True: only
    instruments with a price are asked about; False: every instrument, the price may be None),
    `health` (a `ProviderHealth`, see `ReportsHealth`) and `finished` (True: nothing more will
    come, the feed stops).
    """

    source: str

    def ticks(self, quotes: Mapping[str, Decimal | None]) -> Iterable[Tick]:
        """Yield the next tick of each instrument in `quotes` (symbol to last price) that has one."""
        ...


@dataclass
class ProviderHealth:
    """What a provider knows about its source: why it is degraded, and when it last answered well.

    `reason` is a failure of the source as a whole (unreachable, rate limited, malformed answer);
    `symbol_problems` holds per-symbol failures (no quote, a price that is not a price). Both are
    cleared by the next good answer. `expected_interval` is the seconds between two answers the
    provider plans at most, so the feed counts it stalled only after missing several.
    """

    reason: str | None = None
    symbol_problems: dict[str, str] = field(default_factory=dict)
    last_answer_at: datetime | None = None
    retry_at: datetime | None = None
    expected_interval: float = 0.0

    @property
    def degraded(self) -> bool:
        return bool(self.reason or self.symbol_problems)


@runtime_checkable
class ReportsHealth(Protocol):
    health: ProviderHealth


class BadQuote(ValueError):
    """A quote whose price or volume is unusable; the message says why."""


# A plain decimal: digits, optionally a point and digits; no sign, exponent, NaN or Infinity.
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
PRICE_PLACES = 4  # what PriceTick.price stores
PRICE_INTEGER_DIGITS = 14  # 18 digits in all


def quote_price(raw: object) -> Decimal:
    """Return a provider's price text as an exact Decimal; raise BadQuote if it is not a usable price.

    Usable: a positive plain decimal that the price column holds exactly (at most four decimal
    places once trailing zeros go, at most fourteen integer digits). Nothing is rounded: a
    price the store would change is refused, never altered.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = Decimal(raw)
    if isinstance(raw, Decimal):  # a JSON number, parsed exactly
        text = format(raw, "f") if raw.is_finite() else str(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise BadQuote(f"price is {type(raw).__name__}, not a decimal string")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise BadQuote(f"price {text[:40]!r} is not a positive decimal number")
    if len(text.split(".")[0].lstrip("0")) > PRICE_INTEGER_DIGITS:
        raise BadQuote(f"price {text[:40]!r} has more than {PRICE_INTEGER_DIGITS} integer digits")
    price = Decimal(text)
    if price <= 0:
        raise BadQuote(f"price {text!r} is not positive")
    if price != price.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
        raise BadQuote(f"price {text[:40]!r} has more than {PRICE_PLACES} decimal places")
    return price


def quote_volume(raw: object) -> int:
    """Return a provider's volume text as an int; raise BadQuote if it is not a whole non-negative number."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = Decimal(raw)
    text = (
        format(raw, "f")
        if isinstance(raw, Decimal) and raw.is_finite()
        else raw.strip()
        if isinstance(raw, str)
        else None
    )
    if text is None or not re.fullmatch(r"[0-9]{1,19}", text):
        raise BadQuote(f"volume {str(raw)[:40]!r} is not a whole non-negative number")
    return int(text)


class SimulatedMarket:
    """A random-walk market: geometric Brownian motion on prices, noisy volume with rare spikes.

    `volatility` is annualised; `time_scale` is market seconds per real second between rounds, so
    a one-second feed at scale 60 moves prices like one minute of trading (about 0.08 % per tick
    at 30 % volatility). There are no trading hours: the simulated market never closes.
    """

    source = "simulated"

    def __init__(
        self,
        *,
        interval: float,
        volatility: float = 0.30,
        time_scale: float = 60.0,
        base_volume: int = 800,
        spike_probability: float = 0.02,
        seed: int | None = None,
    ):
        if interval <= 0 or volatility < 0 or time_scale <= 0 or base_volume <= 0:
            raise ValueError("interval, time_scale and base_volume must be positive, volatility not negative")
        self.random = random.Random(seed)
        years = interval * time_scale / MARKET_SECONDS_PER_YEAR
        self.sigma = Decimal(repr(volatility * math.sqrt(years)))
        self.drift = -self.sigma * self.sigma / 2  # no expected return: the median path stays flat
        self.base_volume = base_volume
        self.spike_probability = spike_probability

    def next_price(self, last: Decimal) -> Decimal:
        """Return the price after `last`, one random-walk step later, on the tick grid."""
        shock = Decimal(repr(self.random.gauss(0.0, 1.0)))
        price = (last * (self.drift + self.sigma * shock).exp()).quantize(TICK_SIZE, rounding=ROUND_HALF_EVEN)
        return max(price, TICK_SIZE)

    def next_volume(self, last: Decimal, price: Decimal) -> int:
        """Return a traded volume: larger on larger moves, occasionally a spike."""
        move = abs(price - last) / last / self.sigma if self.sigma else Decimal(0)
        volume = self.base_volume * (1 + float(move)) * self.random.lognormvariate(0.0, 0.35)
        if self.random.random() < self.spike_probability:
            volume *= self.random.uniform(4.0, 8.0)
        return max(1, int(volume))

    def ticks(self, quotes: Mapping[str, Decimal | None]) -> Iterable[Tick]:
        now = timezone.now()
        for symbol, last in quotes.items():
            if last is None:  # not asked for (`needs_last_price` is the default): nothing to walk from
                continue
            price = self.next_price(last)
            yield Tick(symbol=symbol, price=price, volume=self.next_volume(last, price), at=now)
