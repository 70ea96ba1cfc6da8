"""The price feed: rounds of ticks from a provider, recorded and published at a steady rate.

With the in-memory channel layer the feed runs inside the server process, started on the
server's event loop by `BackgroundServices` at the first request or connection (daphne has no
ASGI lifespan, so the first scope is the earliest moment a running loop exists). With Redis
it never runs inside a gateway process: `manage.py market_feed` runs it once for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async

from .conf import channel_layer_in_memory, market_setting
from .providers import PriceProvider, SimulatedMarket
from .services import price_round_record

logger = logging.getLogger(__name__)


class PriceFeed:
    """Record one tick per instrument every `interval` seconds until stopped or `rounds` are done."""

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
        self.running = False
        self._stop = asyncio.Event()
        self._record = database_sync_to_async(price_round_record)

    @classmethod
    def from_settings(cls, **overrides: Any) -> PriceFeed:
        interval = overrides.pop("interval", None) or market_setting("FEED_INTERVAL")
        provider = SimulatedMarket(
            interval=interval,
            volatility=market_setting("SIMULATED_VOLATILITY"),
            time_scale=market_setting("SIMULATED_TIME_SCALE"),
            seed=overrides.pop("seed", None),
        )
        symbols = overrides.pop("symbols", None) or market_setting("FEED_SYMBOLS")
        return cls(provider=provider, interval=interval, symbols=symbols, **overrides)

    async def run_round(self) -> int:
        """Record one round of ticks off the event loop; return how many were recorded."""
        ticks = await self._record(provider=self.provider, symbols=self.symbols)
        self.rounds += 1
        self.ticks += len(ticks)
        if ticks:
            self.last_tick_monotonic = time.monotonic()
        return len(ticks)

    async def run(self, *, rounds: int | None = None) -> None:
        """Run rounds at the feed's rate; a failed round is logged and the next one follows."""
        self.running = True
        loop = asyncio.get_running_loop()
        logger.info("price feed started: every %ss, symbols %s", self.interval, self.symbols or "all")
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
                if rounds is not None and done >= rounds:
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), max(0.0, self.interval - (loop.time() - started)))
                except asyncio.TimeoutError:
                    pass
        finally:
            self.running = False
            logger.info("price feed stopped after %d rounds", self.rounds)

    def stop(self) -> None:
        self._stop.set()


def feed_in_process_enabled() -> bool:
    """Say whether this server process runs the feed itself (in-memory layer and the setting on)."""
    return bool(market_setting("FEED_IN_PROCESS")) and channel_layer_in_memory()


@dataclass
class Background:
    """The background work one event loop of this process runs."""

    feed: PriceFeed | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


_background: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Background]" = weakref.WeakKeyDictionary()


def background_start() -> Background:
    """Start the in-process feed and the status monitor on the running loop, once per loop."""
    loop = asyncio.get_running_loop()
    background = _background.get(loop)
    if background is not None:
        return background
    background = _background[loop] = Background()
    _stop_before_server_shutdown(loop)
    if feed_in_process_enabled():
        background.feed = PriceFeed.from_settings()
        background.tasks.append(loop.create_task(background.feed.run(), name="market-feed"))
    elif market_setting("FEED_IN_PROCESS") and not channel_layer_in_memory():
        logger.info("price feed not started in this gateway process: with Redis, run `manage.py market_feed`")
    if market_setting("STATUS_INTERVAL") > 0:
        from .status import status_monitor

        background.tasks.append(loop.create_task(status_monitor().run(), name="system-status"))
    return background


async def background_stop() -> None:
    """Stop this loop's background work and wait for it (a feed round in progress completes)."""
    background = _background.pop(asyncio.get_running_loop(), None)
    if background is None:
        return
    if background.feed is not None:
        background.feed.stop()
    from .status import status_monitor

    status_monitor().stop()
    await asyncio.gather(*background.tasks, return_exceptions=True)


def _stop_before_server_shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """Make a running daphne stop this loop's background work before its shutdown stops the loop."""
    # A feed round runs on a database thread and publishes its ticks back through this loop
    # (async_to_sync in an on_commit hook). Daphne's SIGTERM/SIGINT handler stops the reactor,
    # and with it the loop; a round caught in flight then waits forever for the loop, and the
    # interpreter's exit waits forever for that thread. Stopping the background work first lets
    # the round complete while the loop still runs.
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not reactor.running:
        return
    from twisted.internet.defer import Deferred

    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(background_stop(), loop=loop))
    )


def running_feed() -> PriceFeed | None:
    """Return the feed this process runs on the current loop, if any."""
    try:
        background = _background.get(asyncio.get_running_loop())
    except RuntimeError:
        return None
    return background.feed if background else None


class BackgroundServices:
    """ASGI middleware that starts the process's background work on the first request or socket."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            background_start()
        return await self.app(scope, receive, send)
