"""Numbered history of broadcast events, so a client that reconnects gets what it missed.

Every broadcast event gets `seq` (one more than the last of its event type) and `epoch` (a
string naming the life of that stream; it changes whenever the history was lost, so numbers from
an older life are never trusted). The history keeps the last events of each type, bounded by
count and age. Replay returns the events after a client's `seq`, or says it cannot.

Two stores behind one interface: a ring buffer in this process for the embedded defaults (one
process, so one numbering), and Redis Streams when `REDIS_URL` is set, where a Lua script numbers
and stores each event atomically, so every gateway and producer process shares one numbering.

`append_once` numbers an event that every gateway process hears on the Redis bus by itself: the
first to ask stores it, the others get the same number and frame back (see `bridge.py`).

An event that cannot be numbered (Redis unreachable) still goes out live, without `seq`, and its
type is marked (`mark_unnumbered`): the next event of that type this process numbers starts a
new epoch, so no client takes a history without it for complete (docs/recovery.md).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from aktienanalyse import redis as redis_locations

from realtime.delivery.history_lua import history_scripts
from realtime.wire.protocol import decode, encode


@dataclass(frozen=True)
class Entry:
    seq: int
    text: str
    audience: list[int] | None
    at: float


@dataclass(frozen=True)
class Replay:
    """The answer to "what came after seq N of epoch E"."""

    recovered: bool
    entries: list[Entry]
    seq: int
    epoch: str
    over_limit: bool = False  # more than the caller's limit came after seq; nothing was read


def with_sequence(text: str, seq: int, epoch: str) -> str:
    """Return an encoded frame with `seq` and `epoch` added as its last keys."""
    return f'{text[:-1]},"seq":{seq},"epoch":{encode(epoch)}}}'


def _config() -> dict[str, Any]:
    return settings.REALTIME


class Numbering:
    """What both stores share: the event types whose next numbered event starts a new epoch."""

    def __init__(self) -> None:
        self.unnumbered: set[str] = set()

    def mark_unnumbered(self, event_types: Iterable[str]) -> None:
        """Note that events of these types went out without a number, or were lost."""
        self.unnumbered.update(event_types)


class MemoryHistory(Numbering):
    """Event history in this process: one ring buffer per event type."""

    def __init__(self, *, max_events: int, max_age: float):
        super().__init__()
        self.max_events = max_events
        self.max_age = max_age
        self._buffers: dict[str, deque[Entry]] = {}
        self._seq: dict[str, int] = {}
        self._epochs: dict[str, str] = {}
        self._once: OrderedDict[str, tuple[float, tuple[int, str, str]]] = OrderedDict()

    async def append(self, event_type: str, text: str, audience: list[int] | None) -> tuple[int, str, str]:
        if event_type in self.unnumbered:
            self.unnumbered.discard(event_type)
            self._seq.pop(event_type, None)
            self._epochs.pop(event_type, None)
            self._buffers.pop(event_type, None)
        seq = self._seq.get(event_type, 0) + 1
        self._seq[event_type] = seq
        epoch = self._epochs.setdefault(event_type, uuid.uuid4().hex[:16])
        numbered = with_sequence(text, seq, epoch)
        buffer = self._buffers.setdefault(event_type, deque(maxlen=self.max_events))
        buffer.append(Entry(seq, numbered, audience, time.time()))
        return seq, epoch, numbered

    async def append_many(self, events: list[tuple[str, str, list[int] | None]]) -> list[tuple[int, str, str]]:
        """`append` each (event type, frame, audience) in order."""
        return [await self.append(*event) for event in events]

    async def append_once(
        self, event_type: str, text: str, audience: list[int] | None, *, once: str, ttl: int
    ) -> tuple[int, str, str]:
        """Append an event unless one was appended under `once` within `ttl` seconds; return its numbers."""
        now = time.monotonic()
        while self._once and next(iter(self._once.values()))[0] <= now:
            self._once.popitem(last=False)
        key = f"{event_type}:{once}"
        known = self._once.get(key)
        if known is not None:
            return known[1]
        numbered = await self.append(event_type, text, audience)
        self._once[key] = (now + ttl, numbered)
        return numbered

    async def position(self, event_type: str) -> tuple[int, str]:
        return self._seq.get(event_type, 0), self._epochs.setdefault(event_type, uuid.uuid4().hex[:16])

    async def since(self, event_type: str, seq: int, epoch: str, *, limit: int | None = None) -> Replay:
        current, current_epoch = await self.position(event_type)
        if _over_limit(seq, epoch, current, current_epoch, limit):
            return Replay(False, [], current, current_epoch, over_limit=True)
        entries = [entry for entry in self._buffers.get(event_type, ()) if entry.seq > seq]
        return _judge(seq, epoch, current, current_epoch, entries, self.max_age)


# History entries read per round trip of a replay (`RedisHistory.since`).
REPLAY_PAGE = 200


class HistoryUnavailable(ConnectionError):
    """The history's Redis failed a moment ago; numbering is not tried again before `RETRY_SECONDS`."""


class RedisHistory(Numbering):
    """Event history in Redis Streams, shared by every process on the same Redis.

    After a failure to reach Redis, appends fail at once (`HistoryUnavailable`) for
    `RETRY_SECONDS`, so a Redis that hangs does not hold every event up for its timeout.
    """

    RETRY_SECONDS = 1.0

    def __init__(self, *, url: str, prefix: str, max_events: int, max_age: float, follow_failover: bool | None = None):
        """`follow_failover` (default: whether `url` is a Sentinel location) starts a new epoch on
        each stream first written after its primary changed (`_epoch`); it costs an INFO per call."""
        super().__init__()
        self._retry_at = 0.0
        self.client = redis_locations.async_client(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self.max_events = max_events
        self.max_age = max_age
        if follow_failover is None:
            follow_failover = redis_locations.parse_location(url) is not None
        self.follow_failover = follow_failover
        append, append_once, position = history_scripts(primary=follow_failover)
        self._append = self.client.register_script(append)
        self._append_once = self.client.register_script(append_once)
        self._position = self.client.register_script(position)
        self._positions: list[tuple[str, asyncio.Future[tuple[int, str]]]] = []  # asked for, for the next batch
        self._positioner: asyncio.Task | None = None

    def _keys(self, event_type: str) -> list[str]:
        base = f"{self.prefix}:history:{event_type}"
        keys = [f"{base}:seq", f"{base}:epoch", f"{base}:stream"]
        if self.follow_failover:
            keys.append(f"{base}:primary")
        return keys

    def _append_args(self, event_type: str, text: str, audience: list[int] | None, renewing: set[str]) -> list[Any]:
        """Return the script arguments of one append; the first of a marked type starts a new epoch."""
        renew = event_type in self.unnumbered and event_type not in renewing
        if renew:
            renewing.add(event_type)
        return [
            text[:-1],
            encode(audience),
            self.max_events,
            uuid.uuid4().hex[:16],
            int(time.time() * 1000),
            int(renew),
        ]

    async def _run(self, call: Any) -> Any:
        """Await a call to Redis; after a failure to reach it, fail fast for `RETRY_SECONDS`."""
        if time.monotonic() < self._retry_at:
            if inspect.iscoroutine(call):
                call.close()  # not run: closed, so it is not reported as never awaited
            raise HistoryUnavailable("the event history failed a moment ago")
        try:
            return await call
        except (RedisError, OSError):
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            raise

    async def append(self, event_type: str, text: str, audience: list[int] | None) -> tuple[int, str, str]:
        renewing: set[str] = set()
        args = self._append_args(event_type, text, audience, renewing)
        seq, epoch, numbered, _ = await self._run(self._append(keys=self._keys(event_type), args=args))
        self.unnumbered -= renewing
        return int(seq), epoch.decode(), numbered.decode()

    async def append_many(self, events: list[tuple[str, str, list[int] | None]]) -> list[tuple[int, str, str]]:
        """`append` each (event type, frame, audience) in order, in one round trip to Redis.

        Each event is still numbered by its own script run, atomically; the pipeline only saves
        the waits between them (an order's fill commits four events at once).
        """
        renewing: set[str] = set()
        async with self.client.pipeline(transaction=False) as pipe:
            for event_type, text, audience in events:
                args = self._append_args(event_type, text, audience, renewing)
                await self._append(keys=self._keys(event_type), args=args, client=pipe)
            results = await self._run(pipe.execute())
        self.unnumbered -= renewing
        return [(int(seq), epoch.decode(), numbered.decode()) for seq, epoch, numbered, _ in results]

    async def append_once(
        self, event_type: str, text: str, audience: list[int] | None, *, once: str, ttl: int
    ) -> tuple[int, str, str]:
        """Append an event unless one was appended under `once` within `ttl` seconds; return its numbers.

        Every gateway process calls this for each bus message, in the order the bus delivers them,
        so the numbers follow the bus's order and each message is stored once.
        """
        renewing: set[str] = set()
        seq, epoch, numbered, appended = await self._run(
            self._append_once(
                keys=[*self._keys(event_type), f"{self.prefix}:history:{event_type}:once:{once}"],
                args=[*self._append_args(event_type, text, audience, renewing), ttl],
            )
        )
        if appended:  # another process's append of the same message started no new epoch
            self.unnumbered -= renewing
        seq, epoch = int(seq), epoch.decode()
        return seq, epoch, numbered.decode() if numbered else with_sequence(text, seq, epoch)

    async def position(self, event_type: str) -> tuple[int, str]:
        """Return the stream's last seq and its epoch.

        The positions asked for while a batch is on its way (every subscription confirms one,
        and a reconnect storm subscribes thousands of sockets at once) are read in one pipeline.
        """
        loop = asyncio.get_running_loop()
        found: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._positions.append((event_type, found))
        if self._positioner is None or self._positioner.done():
            self._positioner = loop.create_task(self._read_positions(), name="realtime-history-positions")
        return await found

    async def _read_positions(self) -> None:
        while self._positions:
            batch, self._positions = self._positions, []
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for event_type, _ in batch:
                        await self._position(keys=self._keys(event_type), args=[uuid.uuid4().hex[:16]], client=pipe)
                    replies = await pipe.execute(raise_on_error=False)
            except Exception as exc:
                replies = [exc] * len(batch)
            for (_, found), reply in zip(batch, replies):
                if found.done():  # its caller was cancelled
                    continue
                if isinstance(reply, Exception):
                    found.set_exception(reply)
                else:
                    found.set_result((int(reply[0]), reply[1].decode()))

    async def since(self, event_type: str, seq: int, epoch: str, *, limit: int | None = None) -> Replay:
        current, current_epoch = await self.position(event_type)
        if _over_limit(seq, epoch, current, current_epoch, limit):
            return Replay(False, [], current, current_epoch, over_limit=True)
        entries: list[Entry] = []
        if current_epoch == epoch and 0 <= seq < current:
            # In pages: reading and parsing a thousand entries in one reply holds the event loop
            # for tens of milliseconds, and every other connection's commands wait behind it.
            # Between pages the loop serves others; an entry trimmed meanwhile shows as a gap,
            # which `_judge` refuses like any other.
            start = f"{seq + 1}-0"
            while True:
                rows = await self.client.xrange(self._keys(event_type)[2], min=start, max="+", count=REPLAY_PAGE)
                for entry_id, fields in rows:
                    entries.append(
                        Entry(
                            seq=int(entry_id.split(b"-", 1)[0]),
                            text=fields[b"t"].decode(),
                            audience=None if fields[b"a"] == b"null" else decode(fields[b"a"]),
                            at=int(fields[b"ms"]) / 1000,
                        )
                    )
                if len(rows) < REPLAY_PAGE or entries[-1].seq >= current:
                    break
                start = "(" + rows[-1][0].decode()  # after the last one read
        return _judge(seq, epoch, current, current_epoch, entries, self.max_age)


def _over_limit(seq: int, epoch: str, current: int, current_epoch: str, limit: int | None) -> bool:
    """Tell whether a replay that could succeed would hold more than `limit` events."""
    return limit is not None and epoch == current_epoch and 0 <= seq < current and current - seq > limit


def _judge(seq: int, epoch: str, current: int, current_epoch: str, entries: list[Entry], max_age: float) -> Replay:
    """Decide whether `entries` are exactly what came after `seq`: no gap, not too old, same epoch."""
    entries = [entry for entry in entries if entry.seq <= current]
    if epoch != current_epoch or seq < 0 or seq > current:
        return Replay(False, [], current, current_epoch)
    if seq == current:
        return Replay(True, [], current, current_epoch)
    expected = list(range(seq + 1, current + 1))
    oldest_allowed = time.time() - max_age
    if [entry.seq for entry in entries] != expected or entries[0].at < oldest_allowed:
        return Replay(False, [], current, current_epoch)
    return Replay(True, entries, current, current_epoch)


_memory: MemoryHistory | None = None
_redis: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisHistory]" = weakref.WeakKeyDictionary()


def get_history() -> MemoryHistory | RedisHistory:
    """Return the history store of this configuration (Redis clients are per event loop)."""
    global _memory
    config = _config()
    if settings.REDIS_URL:
        loop = asyncio.get_running_loop()
        store = _redis.get(loop)
        layer = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
        prefix = layer.get("prefix", "asgi")
        if store is None or store.prefix != prefix:
            store = _redis[loop] = RedisHistory(
                url=redis_locations.first_location(settings.REDIS_URL),
                prefix=prefix,
                max_events=config["HISTORY_MAX_EVENTS"],
                max_age=config["HISTORY_MAX_AGE_SECONDS"],
            )
        return store
    if _memory is None:
        _memory = MemoryHistory(max_events=config["HISTORY_MAX_EVENTS"], max_age=config["HISTORY_MAX_AGE_SECONDS"])
    return _memory


def reset_memory_history() -> None:
    """Forget the in-process history (a new epoch for every stream); for tests and restarts."""
    global _memory
    _memory = None
