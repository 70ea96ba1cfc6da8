"""One active `market_feed` among several: a lease in Redis, held by the process that publishes.

Every `market_feed` process of a deployment contends for one key (`SET NX PX`, named after the
channel layer's prefix, so deployments sharing a Redis do not meet). The holder renews it every
third of its lifetime and runs the feed; the others stand by and try again at the same pace, so
one takes over at most a lease lifetime after the holder died, and at once when the holder
stops cleanly (it deletes the key). Renewing and deleting check the holder in the same step (a
Lua script), so a process never extends or frees a lease another one has taken meanwhile.

A holder that fails to renew (Redis unreachable, or its lease expired while it was paused)
stops its feed at once, before the lease can pass to a standby, and reports it; the command then
exits with an error so the service manager starts it again, as a standby.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from aktienanalyse import redis as redis_locations

logger = logging.getLogger(__name__)

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class LeaseLost(Exception):
    """The lease ran out or could not be renewed while its work ran; the work was stopped."""


class Lease:
    """A named lease in Redis, held by at most one process at a time."""

    def __init__(self, name: str, *, seconds: float, url: str | None = None, prefix: str | None = None):
        if seconds <= 0:
            raise ValueError("a lease lasts a positive number of seconds")
        self.seconds = seconds
        self.key = f"{prefix or settings.CHANNEL_LAYER_PREFIX}:lease:{name}"
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.redis = redis_locations.async_client(url or settings.REDIS_HOSTS[0], socket_timeout=seconds / 3)

    @property
    def milliseconds(self) -> int:
        return max(1, int(self.seconds * 1000))

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; return whether this process holds it now."""
        return bool(await self.redis.set(self.key, self.holder, nx=True, px=self.milliseconds))

    async def renew(self) -> bool:
        """Extend the lease if this process still holds it; return whether it does."""
        # redis-py types `eval` once for its blocking and asyncio clients: every argument as `str`
        # (it sends a number as its decimal text all the same), the reply as `Awaitable[str] | str`.
        renewed = self.redis.eval(_RENEW, 1, self.key, self.holder, self.milliseconds)  # type: ignore[arg-type]
        return bool(await renewed)  # type: ignore[misc]  # the asyncio client's reply is awaitable

    async def release(self) -> None:
        """Give the lease up, if this process holds it, so a standby takes over without waiting."""
        await self.redis.eval(_RELEASE, 1, self.key, self.holder)  # type: ignore[misc]  # as in `renew`

    async def current_holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if value is not None else None

    async def close(self) -> None:
        await self.redis.aclose()


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass


async def run_leased(
    lease: Lease,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    stop_work: Callable[[], None],
    stopping: asyncio.Event,
) -> bool:
    """Stand by until `lease` is free, then run `work()` while holding it.

    Returns True when the work ran and ended (or `stopping` was set first, the work then told
    to stop and awaited); raises LeaseLost after stopping the work when the lease could not be
    renewed. The lease is given up on the way out.
    """
    pace = lease.seconds / 3
    standing_by = False
    while not stopping.is_set():
        try:
            if await lease.acquire():
                break
        except (aioredis.RedisError, OSError) as exc:
            logger.warning("lease %s: Redis unavailable (%s); trying again", lease.key, exc)
        if not standing_by:
            standing_by = True
            logger.info("lease %s is held by another process: standing by", lease.key)
        await _wait(stopping, pace)
    else:
        return True
    logger.info("lease %s taken by %s: running", lease.key, lease.holder)
    loop = asyncio.get_running_loop()
    task = loop.create_task(work())
    stop_asked = loop.create_task(stopping.wait())
    try:
        while not task.done():
            await asyncio.wait([task, stop_asked], timeout=pace, return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                stop_work()
                await task
                break
            if task.done():
                break
            try:
                held = await lease.renew()
            except (aioredis.RedisError, OSError) as exc:
                held, reason = False, f"Redis unavailable: {exc}"
            else:
                reason = "it expired and another process may hold it"
            if not held:
                logger.error("lease %s lost (%s): stopping", lease.key, reason)
                stop_work()
                await task
                raise LeaseLost(f"lease {lease.key} lost: {reason}")
        task.result()
        return True
    finally:
        stop_asked.cancel()
        if not task.done():
            task.cancel()
        try:
            await lease.release()
        except (aioredis.RedisError, OSError):
            pass  # it expires on its own
