"""The measurements the status monitor (`market.status`) is made of, each a fact measured now.

Round trips to the database (SELECT 1), the channel layer (a message to a fresh channel and
back) and the Redis event bus (PING); this process's memory and CPU; the rate of a growing
counter; the age of the newest tick the feed recorded, with what the feed reports about its
provider.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from .conf import market_setting
from .feed import FEED_STATE_NAME, feed_in_process_enabled, feed_start_error, running_feed
from .models import FeedState, PriceTick
from .selectors import feed_state_read


class RateMeter:
    """The rate of a growing counter over roughly the last `window` seconds."""

    def __init__(self, read: Callable[[], int], *, window: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.read = read
        self.window = window
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque([(clock(), read())])

    def per_second(self) -> float:
        now, value = self.clock(), self.read()
        self.samples.append((now, value))
        # Keep the newest sample at least `window` old as the base of the measurement.
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()
        since, base = self.samples[0]
        return (value - base) / (now - since) if now > since else 0.0


@dataclass(frozen=True)
class ProcessUsage:
    """This process's resident memory (None where /proc cannot tell) and CPU seconds so far."""

    rss_bytes: int | None
    cpu_seconds: float


def process_usage() -> ProcessUsage:
    """Read this process's resident set size from /proc and its CPU time (user + system)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            rss_bytes = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss_bytes = None
    times = os.times()
    return ProcessUsage(rss_bytes, times.user + times.system)


class CpuMeter:
    """The CPU this process used over roughly the last `window` seconds, in percent of one core.

    Over a span shorter than `min_span` (the first moments of a monitor) the figure is mostly
    noise, so there is none yet. It passes 100 when threads run at once.
    """

    def __init__(
        self,
        read: Callable[[], ProcessUsage] = process_usage,
        *,
        window: float = 10.0,
        min_span: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.read = read
        self.window = window
        self.min_span = min_span
        self.clock = clock
        self.samples: deque[tuple[float, float]] = deque([(clock(), read().cpu_seconds)])

    def measure(self) -> tuple[ProcessUsage, float | None]:
        """Return the usage now and the CPU percent over the window, or None over too short a span."""
        now, usage = self.clock(), self.read()
        self.samples.append((now, usage.cpu_seconds))
        # Keep the newest sample at least `window` old as the base of the measurement.
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()
        since, base = self.samples[0]
        if now - since < self.min_span:
            return usage, None
        return usage, round(max(100 * (usage.cpu_seconds - base) / (now - since), 0.0), 2)


@dataclass
class Probe:
    status: str
    response_time_ms: float
    error: str | None = None


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def database_probe() -> Probe:
    """Time a SELECT 1 on the default database."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(database_sync_to_async(_select_one)(), market_setting("PROBE_TIMEOUT"))
    except Exception as exc:
        return Probe("offline", elapsed_ms(started), f"{type(exc).__name__}: {exc}"[:200])
    return Probe("online", elapsed_ms(started))


_probe_layers: dict[int, Any] = {}


def _probe_layer() -> Any:
    """Return a layer to probe with: the shared one in memory, a twin with the same config on Redis.

    On Redis the process fan-out keeps a receive pending on the shared layer instance, which
    holds that instance's receive lock; a twin has its own, so the probe measures Redis alone.
    """
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return layer
    if id(layer) not in _probe_layers:
        _probe_layers.clear()
        _probe_layers[id(layer)] = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    return _probe_layers[id(layer)]


async def channel_layer_probe() -> Probe:
    """Time a message through the channel layer to a fresh channel of this process and back."""
    started = time.perf_counter()
    try:
        layer = _probe_layer()
        async with asyncio.timeout(market_setting("PROBE_TIMEOUT")):
            channel = await layer.new_channel("status.")
            await layer.send(channel, {"type": "status.probe"})
            await layer.receive(channel)
    except Exception as exc:
        error = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return Probe("offline", elapsed_ms(started), error[:200])
    return Probe("online", elapsed_ms(started))


async def bus_probe() -> Probe | None:
    """Time a PING to the Redis event bus; None when the gateway has no bus."""
    url = settings.REALTIME_BUS.get("URL", "")
    if not url:
        return None
    from aktienanalyse import redis as redis_locations

    timeout = market_setting("PROBE_TIMEOUT")
    client = redis_locations.async_client(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await client.ping()
    except Exception as exc:
        error = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return Probe("offline", elapsed_ms(started), error[:200])
    finally:
        await client.aclose()
    return Probe("online", elapsed_ms(started))


def _last_feed_tick_at():
    return PriceTick.objects.exclude(source="seed").aggregate(newest=Max("at"))["newest"]


def _age_seconds(at: datetime | None, now: datetime) -> float | None:
    return round((now - at).total_seconds(), 3) if at else None


async def feed_facts() -> dict[str, Any]:
    """Return whether the feed runs, which provider it asks, and why it is degraded or offline if so.

    In-process the feed object answers; otherwise the state the external feed stores after its
    rounds, which counts as alive while it is fresher than three rounds (at least
    MARKET_FEED_STALE_AFTER). A provider problem degrades the feed with its reason; so does
    going without a good answer for longer than the feed's stall window.
    """
    now = timezone.now()
    try:
        newest = await database_sync_to_async(_last_feed_tick_at)()
    except Exception:
        newest = None
    tick_age = _age_seconds(newest, now)
    feed = running_feed()
    reason: str | None = None
    if feed_in_process_enabled():
        mode, running = "in_process", bool(feed and feed.running)
        report = feed.report() if feed else None
        if not running:
            reason = feed_start_error() or (
                "the provider has nothing more to play"
                if feed and feed.finished
                else "the in-process feed is not running"
            )
    else:
        mode = "external"
        try:
            state = await database_sync_to_async(feed_state_read)(name=FEED_STATE_NAME)
        except Exception:
            state = None
        report = _state_report(state)
        alive_within = max(market_setting("FEED_STALE_AFTER"), 3 * state.interval_seconds) if state else 0.0
        alive = bool(state and state.running and (now - state.updated_at).total_seconds() <= alive_within)
        # Without a stored state (a feed that never stored one), a fresh tick is the sign of life.
        running = alive if state else tick_age is not None and tick_age <= market_setting("FEED_STALE_AFTER")
        if not running:
            reason = (
                "no feed process has reported"
                if state is None
                else "the feed process stopped"
                if not state.running
                else f"the feed process has not reported for {round((now - state.updated_at).total_seconds())} s"
            )
    stale_after = report["stale_after_seconds"] if report else market_setting("FEED_STALE_AFTER")
    answered = report["last_answer_at"] if report and report["last_answer_at"] else newest
    answer_age = _age_seconds(answered, now)
    fresh = answer_age is not None and answer_age <= stale_after
    problems = report["symbol_problems"] if report else {}
    if not running:
        status = "offline"
    elif report and (report["reason"] or problems):
        status = "degraded"
        reason = report["reason"] or "no usable quote for " + "; ".join(
            f"{s}: {p}" for s, p in sorted(problems.items())
        )
    elif not fresh:
        status = "degraded"
        reason = f"no good answer from the provider for {answer_age} s" if answer_age is not None else "no tick yet"
    else:
        status = "online"
    retry_at = report["retry_at"] if report else None
    return {
        "status": status,
        "running": running,
        "mode": mode,
        "provider": report["provider"] if report else market_setting("PROVIDER"),
        "reason": reason[:500] if reason else None,
        "symbol_problems": problems,
        "retry_in_seconds": round((retry_at - now).total_seconds(), 3) if retry_at and retry_at > now else None,
        "last_tick_age_seconds": tick_age,
        "last_answer_age_seconds": answer_age,
        "stale_after_seconds": stale_after,
        "rounds": feed.rounds if feed else None,
        "failed_rounds": feed.failures if feed else None,
    }


def _state_report(state: FeedState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "provider": state.provider,
        "reason": state.reason or None,
        "symbol_problems": dict(state.symbol_problems or {}),
        "last_answer_at": state.last_answer_at,
        "retry_at": state.retry_at,
        "stale_after_seconds": state.stale_after_seconds,
    }
