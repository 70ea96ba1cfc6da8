"""The price feed: rounds of ticks from a provider, recorded and published at a steady rate.

With the in-memory channel layer the feed runs inside the server process, started on the
server's event loop by `BackgroundServices` (`market/background.py`) at the first request or connection (daphne has no
ASGI lifespan, so the first scope is the earliest moment a running loop exists). With Redis
it never runs inside a gateway process: `manage.py market_feed` runs it once for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from .conf import channel_layer_in_memory, market_setting
from .providers import PriceProvider, ReportsHealth, SimulatedMarket, Tick
from .quotes import AlphaVantageMarket, BitpandaMarket
from .replay import ReplayFileError, ReplayMarket, replay_rows_read
from .selectors import feed_quotes_read
from .ticks import feed_state_save, price_ticks_record

logger = logging.getLogger(__name__)

FEED_STATE_NAME = "market_feed"


def provider_from_settings(*, interval: float, seed: int | None = None, **options: Any) -> PriceProvider:
    """Build the provider MARKET_PROVIDER names; raise ImproperlyConfigured saying what is wrong.

    `options` override settings by their MARKET name (`PROVIDER`, `REPLAY_FILE`, ...).
    """

    def setting(name: str) -> Any:
        return options[name] if options.get(name) is not None else market_setting(name)

    name = setting("PROVIDER")
    try:
        if name == "simulated":
            return SimulatedMarket(
                interval=interval,
                volatility=setting("SIMULATED_VOLATILITY"),
                time_scale=setting("SIMULATED_TIME_SCALE"),
                seed=seed,
            )
        if name == "alpha_vantage":
            return AlphaVantageMarket(
                url=setting("ALPHA_VANTAGE_URL"),
                api_key=setting("ALPHA_VANTAGE_API_KEY"),
                symbols=setting("ALPHA_VANTAGE_SYMBOLS"),
                suffix=setting("ALPHA_VANTAGE_SUFFIX"),
                calls_per_minute=setting("ALPHA_VANTAGE_CALLS_PER_MINUTE"),
                calls_per_day=setting("ALPHA_VANTAGE_CALLS_PER_DAY"),
                timeout=setting("PROVIDER_TIMEOUT"),
                backoff_max=setting("PROVIDER_BACKOFF_MAX"),
            )
        if name == "bitpanda":
            return BitpandaMarket(
                url=setting("BITPANDA_URL"),
                symbols=setting("BITPANDA_SYMBOLS"),
                currency=setting("BITPANDA_CURRENCY"),
                calls_per_minute=setting("BITPANDA_CALLS_PER_MINUTE"),
                timeout=setting("PROVIDER_TIMEOUT"),
                backoff_max=setting("PROVIDER_BACKOFF_MAX"),
            )
        if name == "replay":
            path = setting("REPLAY_FILE")
            if not path:
                raise ImproperlyConfigured("the replay provider needs a CSV file: set MARKET_REPLAY_FILE")
            return ReplayMarket(
                replay_rows_read(path), speed=setting("REPLAY_SPEED"), loop=bool(setting("REPLAY_LOOP"))
            )
    except (ValueError, ReplayFileError) as exc:
        raise ImproperlyConfigured(f"market provider {name}: {exc}") from None
    raise ImproperlyConfigured(f"unknown market provider {name!r}")


class PriceFeed:
    """Record a round of ticks every `interval` seconds until stopped, `rounds` are done or the provider is finished.

    A round reads the instruments' last prices, asks the provider in a worker thread (it may
    wait on the network there, neither on the event loop nor on the database thread), then
    records what it yielded. After a round the feed stores its report (`FeedState`) when it
    changed, and at least every few seconds, so status checks in other processes see it.
    """

    def __init__(self, *, provider: PriceProvider, interval: float, symbols: list[str] | None = None):
        if interval <= 0:
            raise ValueError("the feed interval must be positive")
        self.provider = provider
        self.interval = interval
        self.symbols = symbols or None
        self.rounds = 0
        self.ticks = 0
        self.failures = 0
        self.last_tick_monotonic: float | None = None
        self.last_tick_at: datetime | None = None
        self.round_error: str | None = None
        self.unknown_symbols: set[str] = set()
        self.running = False
        self._stop = asyncio.Event()
        self._quotes = database_sync_to_async(feed_quotes_read)
        self._record = database_sync_to_async(price_ticks_record)
        self._save_state = database_sync_to_async(feed_state_save)
        self._saved: tuple[Any, float] | None = None

    @classmethod
    def from_settings(cls, **overrides: Any) -> PriceFeed:
        """Build the feed the settings describe; raise ImproperlyConfigured if they do not make one."""
        interval = overrides.pop("interval", None) or market_setting("FEED_INTERVAL")
        provider = provider_from_settings(
            interval=interval, seed=overrides.pop("seed", None), **overrides.pop("provider_options", {})
        )
        symbols = overrides.pop("symbols", None) or market_setting("FEED_SYMBOLS")
        return cls(provider=provider, interval=interval, symbols=symbols, **overrides)

    @property
    def source(self) -> str:
        return self.provider.source

    @property
    def finished(self) -> bool:
        return bool(getattr(self.provider, "finished", False))

    def _provider_ticks(self, quotes: dict) -> list[Tick]:
        return list(self.provider.ticks(quotes))

    async def run_round(self) -> int:
        """Ask the provider for one round of ticks and record them; return how many were recorded."""
        try:
            quotes = await self._quotes(
                symbols=self.symbols, priced_only=getattr(self.provider, "needs_last_price", True)
            )
            ticks = await asyncio.to_thread(self._provider_ticks, quotes)
            recorded, unknown = await self._record(ticks=ticks, source=self.source)
        except Exception as exc:
            self.round_error = f"a feed round failed: {type(exc).__name__}: {exc}"[:300]
            await self._store_report()
            raise
        self.rounds += 1
        self.round_error = None
        self.unknown_symbols = set(unknown)
        self.ticks += len(recorded)
        if recorded:
            self.last_tick_monotonic = time.monotonic()
            self.last_tick_at = timezone.now()
        await self._store_report()
        return len(recorded)

    def stale_after(self) -> float:
        """Return the seconds without a good answer after which the feed counts as stalled."""
        expected = self.provider.health.expected_interval if isinstance(self.provider, ReportsHealth) else 0.0
        return max(market_setting("FEED_STALE_AFTER"), 3 * max(self.interval, expected))

    def report(self) -> dict[str, Any]:
        """Return what the feed knows about itself and its provider, for the system status."""
        health = self.provider.health if isinstance(self.provider, ReportsHealth) else None
        problems = dict(health.symbol_problems) if health else {}
        problems.update(
            {symbol: "the provider quotes it, but no instrument has this symbol" for symbol in self.unknown_symbols}
        )
        return {
            "provider": self.source,
            "running": self.running,
            "reason": self.round_error or (health.reason if health else None),
            "symbol_problems": problems,
            "last_answer_at": health.last_answer_at if health else self.last_tick_at,
            "retry_at": health.retry_at if health else None,
            "interval_seconds": self.interval,
            "stale_after_seconds": self.stale_after(),
        }

    async def _store_report(self, *, running: bool = True) -> None:
        """Store the report when it changed, or when the last store is a few seconds old."""
        report = {**self.report(), "running": running}
        changed = {k: v for k, v in report.items() if k != "last_answer_at"}
        now = time.monotonic()
        every = max(self.interval, market_setting("FEED_STALE_AFTER") / 3)
        if self._saved is not None and self._saved[0] == changed and now - self._saved[1] < every:
            return
        try:
            await self._save_state(name=FEED_STATE_NAME, report=report)
        except Exception:
            logger.exception("the price feed could not store its state")
            return
        self._saved = (changed, now)

    async def run(self, *, rounds: int | None = None) -> None:
        """Run rounds at the feed's rate; a failed round is logged and the next one follows."""
        self.running = True
        loop = asyncio.get_running_loop()
        logger.info(
            "price feed started: provider %s, every %ss, symbols %s", self.source, self.interval, self.symbols or "all"
        )
        try:
            done = 0
            while not self._stop.is_set() and (rounds is None or done < rounds):
                started = loop.time()
                try:
                    await self.run_round()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failures += 1
                    logger.exception("price feed round failed")
                done += 1
                if (rounds is not None and done >= rounds) or self.finished:
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), max(0.0, self.interval - (loop.time() - started)))
                except asyncio.TimeoutError:
                    pass
        finally:
            self.running = False
            self._saved = None
            await asyncio.shield(self._store_report(running=False))
            logger.info(
                "price feed stopped after %d rounds%s",
                self.rounds,
                " (the provider has finished)" if self.finished else "",
            )

    def stop(self) -> None:
        self._stop.set()


def feed_in_process_enabled() -> bool:
    """Say whether this server process runs the feed itself (in-memory layer and the setting on)."""
    return bool(market_setting("FEED_IN_PROCESS")) and channel_layer_in_memory()


@dataclass
class Background:
    """The background work one event loop of this process runs."""

    feed: PriceFeed | None = None
    feed_error: str | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


# Each event loop's background work, started and stopped by `market/background.py`.
backgrounds: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Background]" = weakref.WeakKeyDictionary()


def _current_background() -> Background | None:
    try:
        return backgrounds.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def running_feed() -> PriceFeed | None:
    """Return the feed this process runs on the current loop, if any."""
    background = _current_background()
    return background.feed if background else None


def feed_start_error() -> str | None:
    """Return why this process could not start its feed on the current loop, if it could not."""
    background = _current_background()
    return background.feed_error if background else None
