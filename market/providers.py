"""Where prices come from: a provider yields the next tick of each instrument it is asked about.

The feed only knows the `PriceProvider` interface, so a real data source can replace the
simulated market without touching storage, events, alerts or order execution. The simulated
market is what ships, since no external quote source is reachable from here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

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
    source: str

    def ticks(self, quotes: Mapping[str, Decimal]) -> Iterable[Tick]:
        """Yield the next tick of every instrument in `quotes` (symbol to last price)."""
        ...


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

    def ticks(self, quotes: Mapping[str, Decimal]) -> Iterable[Tick]:
        now = timezone.now()
        for symbol, last in quotes.items():
            price = self.next_price(last)
            yield Tick(symbol=symbol, price=price, volume=self.next_volume(last, price), at=now)
