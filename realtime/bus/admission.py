"""The per-user connection cap, held across gateway processes.

`connections.py` knows the sockets of one process, so with several processes behind a proxy a
user could open the cap once per process. With the bus Redis configured, every admitted socket
holds a lease in a sorted set per user (`<prefix>:conns:user:<id>`: lease id -> expiry, in Redis
server time so the hosts' clocks need not agree). Admission is one Lua script (drop expired
leases, count, add), so two processes admitting at once cannot both take the last place; the
admissions a process makes together (a reconnect storm) go to Redis in one pipeline of such runs. Each
process renews the leases of its live sockets on a heartbeat: a killed process's leases lapse
after `CONNECTION_LEASE_SECONDS`.

A Redis that restarts has forgotten every lease while the sockets are still open, so counting
right after it would admit the cap again. Two things keep the cap across that:

- Each process keeps a marker key beside its leases (`<prefix>:conns:process:<id>`), written with
  them. If it is missing when the process admits a socket, Redis lost this process's leases: the
  admission is refused by the script until the process has put them all back. A check every
  `CHECK_SECONDS` puts them back unasked, too.
- The cap's state key (`<prefix>:conns:state`) tells a Redis that lost its data from a new one. A
  process that saw it before and finds it gone starts a rebuilding window of `rebuild_seconds()`
  (long enough for every process's check to put its leases back); admissions of every process
  wait until it ends. A Redis never seen before has no window, so a fresh start is not delayed.

Without Redis (the embedded defaults: one process) the cap counts this process's sockets.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from realtime.bus.redis_client import bus_config, bus_redis
from realtime.runtime.connections import connections
from realtime.runtime.loops import per_loop
from realtime.bus.presence import PROCESS_ID

logger = logging.getLogger(__name__)

# Longest a connect waits for Redis before it counts locally instead.
REDIS_TIMEOUT = 1.0
REDIS_FAILURES = (RedisError, OSError, TimeoutError)
CHECK_SECONDS = 1.0
ADMIT_ATTEMPTS = 5  # a verdict, after at most a reconnect, a put-back and a wait

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# KEYS: the user's leases, this process's marker, the cap's state. ARGV: limit, lease id, lease
# seconds, whether this process holds leases (1/0), whether it saw the state key before (1/0),
# the rebuilding window in ms. Returns {1, held} admitted, {0, held} refused, {-1, 0} put this
# process's leases back first, {-2, ms} wait that long for the other processes to put theirs back.
_ADMIT = (
    _NOW
    + """
local now_ms = math.floor(now * 1000)
local state = redis.call('GET', KEYS[3])
if not state then
  if ARGV[5] == '1' then state = 'rebuilding:' .. (now_ms + tonumber(ARGV[6])) else state = 'ready' end
  redis.call('SET', KEYS[3], state)
end
if state ~= 'ready' then
  local until_ms = tonumber(string.sub(state, 12))
  if until_ms and now_ms < until_ms then return {-2, until_ms - now_ms} end
  redis.call('SET', KEYS[3], 'ready')
end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return {-1, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return {0, held} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
return {1, held + 1}
"""
)

# KEYS[1] the user's leases; ARGV: lease seconds, then the lease ids to renew (or put back).
_RENEW = (
    _NOW
    + """
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return #ARGV - 1
"""
)


def held_in_redis() -> bool:
    """Return whether the cap is held in Redis: whenever the bus Redis is configured.

    Not `bus_enabled()`: with `BUS_BRIDGE=off` the processes still share Redis and the cap.
    """
    return bool(bus_config()["URL"])


def leases_key(user_id: int) -> str:
    return f"{bus_config()['KEY_PREFIX']}:conns:user:{user_id}"


def marker_key() -> str:
    """Name the key that exists while Redis holds every lease of this process."""
    return f"{bus_config()['KEY_PREFIX']}:conns:process:{PROCESS_ID}"


def state_key() -> str:
    return f"{bus_config()['KEY_PREFIX']}:conns:state"


def lease_seconds() -> int:
    return settings.REALTIME["CONNECTION_LEASE_SECONDS"]


def check_seconds() -> float:
    """Return how often a process checks that Redis still holds its leases."""
    return min(CHECK_SECONDS, lease_seconds() / 3)


def rebuild_seconds() -> float:
    """Return how long admissions wait after Redis lost the leases: two checks and a reconnect."""
    return 2 * check_seconds() + 0.5


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class Leases:
    """The connection leases of this process's sockets: take, give back, renew."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}  # lease id -> user id
        self.failing = False
        self.saw_state = False  # this process found the cap's state key in Redis before
        self._renewer: asyncio.Task | None = None
        self._waiting: list[tuple[int, int, str, asyncio.Future[tuple[int, int]]]] = []  # admissions for the next batch
        self._admitter: asyncio.Task | None = None

    async def admit(self, *, user_id: int, limit: int) -> str | None:
        """Return a lease for a new socket of `user_id`, or None when the user is at `limit`.

        When Redis is configured but does not answer, the socket is admitted or refused by this
        process's count, and the outage is logged once: refusing everyone while Redis is down
        would turn a Redis outage into a gateway outage, and each process still enforces the cap
        on its own sockets. The lease is put into Redis by the first renewal once it is back.
        """
        lease = f"{PROCESS_ID}:{uuid.uuid4().hex}"
        if not held_in_redis():
            return None if self._locally_full(user_id, limit) else lease
        try:
            admitted, held = await self._admit_in_redis(user_id, limit, lease)
            self._redis_answered()
            if not admitted:
                logger.info("user %s holds %d of %d connections across processes", user_id, held, limit)
        except REDIS_FAILURES as exc:
            self._redis_failed(exc)
            admitted = not self._locally_full(user_id, limit)
        if not admitted:
            return None
        # Nothing above yields between counting and returning, so the caller's connection
        # table entry is in place before another socket of this process is counted.
        self.held[lease] = user_id
        self._ensure_renewing()
        return lease

    async def _admit_in_redis(self, user_id: int, limit: int, lease: str) -> tuple[int, int]:
        """Admit or refuse: first in the batch of the admissions waiting together, then, if that
        gave no verdict (Redis lost the leases, a rebuilding window, a reconnect), alone."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                verdict, value = await asyncio.shield(self._admit_together(user_id, limit, lease))
        except RedisConnectionError:  # a restarted Redis fails the first command on each pooled connection once
            return await self._admit_alone(user_id, limit, lease)
        if verdict in (0, 1):
            self.saw_state = True
            return verdict, value
        return await self._admit_alone(user_id, limit, lease)

    def _admit_together(self, user_id: int, limit: int, lease: str) -> asyncio.Future[tuple[int, int]]:
        """Queue one run of the admission script for the next batch and return its verdict's future.

        The admissions that arrive while a batch is on its way (a reconnect storm) go in one
        pipeline, one round trip. Each script run is still atomic, so two admissions of one user
        in a batch count each other as two processes admitting at once would.
        """
        loop = asyncio.get_running_loop()
        verdict: asyncio.Future[tuple[int, int]] = loop.create_future()
        verdict.add_done_callback(_retrieved)  # a caller that timed out no longer awaits it
        self._waiting.append((user_id, limit, lease, verdict))
        if self._admitter is None or self._admitter.done():
            self._admitter = loop.create_task(self._admit_waiting(), name="realtime-leases-admit")
        return verdict

    async def _admit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            rebuild_ms = int(rebuild_seconds() * 1000)
            holding, saw_state = int(bool(self.held)), int(self.saw_state)
            try:
                async with asyncio.timeout(REDIS_TIMEOUT):
                    async with bus_redis().pipeline(transaction=False) as pipe:
                        for user_id, limit, lease, _ in batch:
                            keys = (leases_key(user_id), marker_key(), state_key())
                            args = (limit, lease, lease_seconds(), holding, saw_state, rebuild_ms)
                            pipe.eval(_ADMIT, len(keys), *keys, *args)  # type: ignore[arg-type]
                        replies = await pipe.execute(raise_on_error=False)
            except Exception as exc:
                for *_, verdict in batch:
                    if not verdict.done():
                        verdict.set_exception(exc)
                continue
            for (*_, verdict), reply in zip(batch, replies):
                if verdict.done():
                    continue
                if isinstance(reply, Exception):
                    verdict.set_exception(reply)
                else:
                    verdict.set_result((int(reply[0]), int(reply[1])))

    async def _admit_alone(self, user_id: int, limit: int, lease: str) -> tuple[int, int]:
        """Run the admission script until it admits or refuses; put leases back or wait as it says."""
        retried = False
        for _ in range(ADMIT_ATTEMPTS):
            try:
                async with asyncio.timeout(REDIS_TIMEOUT):
                    keys = (leases_key(user_id), marker_key(), state_key())
                    rebuild_ms = int(rebuild_seconds() * 1000)
                    args = (limit, lease, lease_seconds(), int(bool(self.held)), int(self.saw_state), rebuild_ms)
                    # redis-py types `eval` once for its blocking and asyncio clients: every argument
                    # as `str` (it sends a number as its decimal text all the same), the reply as
                    # `Awaitable[str] | str`: hence the two ignores, each with its one code.
                    reply = bus_redis().eval(_ADMIT, len(keys), *keys, *args)  # type: ignore[arg-type]
                    verdict, value = await reply  # type: ignore[misc]
            except RedisConnectionError:
                # A restarted Redis fails the first command on each pooled connection once.
                if retried:
                    raise
                retried = True
                continue
            if verdict == -1:
                logger.warning("connection cap: Redis lost this process's %d leases; putting them back", len(self.held))
                async with asyncio.timeout(max(REDIS_TIMEOUT, lease_seconds() / 3)):
                    await self.renew()
                continue
            if verdict == -2:
                await asyncio.sleep(value / 1000)
                continue
            self.saw_state = True
            return verdict, value
        raise TimeoutError(f"no admission verdict after {ADMIT_ATTEMPTS} attempts")

    async def release(self, lease: str) -> None:
        """Give a socket's lease back at once; if Redis is away, it lapses by itself."""
        user_id = self.held.pop(lease, None)
        if user_id is None:
            return
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                await bus_redis().zrem(leases_key(user_id), lease)
        except REDIS_FAILURES as exc:
            self._redis_failed(exc)

    @staticmethod
    def _locally_full(user_id: int, limit: int) -> bool:
        return len(connections.of_user(user_id)) >= limit

    def _redis_failed(self, exc: BaseException) -> None:
        if not self.failing:
            logger.warning(
                "connection cap: Redis unavailable (%s: %s); each process counts only its own sockets until it is back",
                type(exc).__name__,
                exc,
            )
        self.failing = True

    def _redis_answered(self) -> None:
        if self.failing:
            logger.warning("connection cap: Redis is back; the cap holds across processes again")
        self.failing = False

    def _ensure_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(), name="realtime-leases")

    async def _renew_forever(self) -> None:
        renewed_at = time.monotonic()
        while True:
            await asyncio.sleep(check_seconds())
            if not self.held:
                continue
            try:
                if time.monotonic() - renewed_at >= lease_seconds() / 3:
                    await self.renew()
                    renewed_at = time.monotonic()
                elif not await self._marker_present():
                    logger.warning(
                        "connection cap: Redis lost this process's %d leases; putting them back", len(self.held)
                    )
                    await self.renew()
                    renewed_at = time.monotonic()
                self._redis_answered()
            except REDIS_FAILURES as exc:
                self._redis_failed(exc)
            except Exception:
                logger.exception("connection leases could not be renewed; retrying on the next heartbeat")

    async def _marker_present(self) -> bool:
        async with asyncio.timeout(REDIS_TIMEOUT):
            return bool(await bus_redis().exists(marker_key()))

    async def renew(self) -> None:
        """Push the expiry of every held lease forward, putting back any Redis has lost, then mark them held."""
        renewing = dict(self.held)
        by_user: dict[int, list[str]] = {}
        for lease, user_id in renewing.items():
            by_user.setdefault(user_id, []).append(lease)
        seconds = lease_seconds()
        async with asyncio.timeout(max(REDIS_TIMEOUT, seconds / 3)):
            async with bus_redis().pipeline(transaction=False) as pipe:
                for user_id, leases in by_user.items():
                    # redis-py types every argument `str`; it sends the int `seconds` as its decimal text.
                    pipe.eval(_RENEW, 1, leases_key(user_id), seconds, *leases)  # type: ignore[arg-type]
                pipe.set(marker_key(), "1", ex=seconds)  # last: present only once every lease is back
                await pipe.execute()
            # A socket that closed while the renewal was on its way may have been put back.
            gone = [lease for lease in renewing if lease not in self.held]
            if gone:
                async with bus_redis().pipeline(transaction=False) as pipe:
                    for lease in gone:
                        pipe.zrem(leases_key(renewing[lease]), lease)
                    await pipe.execute()


get_leases = per_loop(Leases)
