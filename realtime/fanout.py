"""Per-process fan-out: one channel-layer membership per group, many local sockets.

Stock Channels gives every connection its own channel and group memberships, so each event is
sent, received and decoded once per connection. Here each gateway process joins a group once,
on behalf of all its local consumers, receives each event once, and hands the already encoded
frame to every local member's outbox. Consumers keep the protocol; this module only routes.

The fan-out also survives a channel layer that fails (Redis going away): it logs the loss, keeps
retrying with backoff and, once the layer answers again, joins its groups anew, since a
restarted Redis has forgotten them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from . import metrics

logger = logging.getLogger(__name__)


class Member(Protocol):
    def deliver(self, message: dict[str, Any]) -> None: ...


class Fanout:
    """Route channel-layer messages of this process to the local members of each group."""

    RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)

    def __init__(self, layer: Any):
        self.layer = layer
        self.channel_name: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self.healthy = True
        self.bridge: Any = None  # this process's bus bridge (realtime/bridge.py), started with the fan-out

    async def join(self, group: str, member: Member) -> None:
        async with self._lock:
            await self._ensure_reader()
            members = self.members.get(group)
            if members is None:
                await self.layer.group_add(group, self.channel_name)
                members = self.members[group] = set()
            members.add(member)

    async def leave(self, group: str, member: Member) -> None:
        async with self._lock:
            members = self.members.get(group)
            if members is None:
                return
            members.discard(member)
            if not members:
                del self.members[group]
                try:
                    await self.layer.group_discard(group, self.channel_name)
                except Exception:  # the layer is down; the membership expires with it
                    logger.warning("could not leave group %s on the channel layer", group)

    async def leave_all(self, member: Member, groups: list[str]) -> None:
        for group in groups:
            await self.leave(group, member)

    def local_members(self, group: str) -> frozenset[Member]:
        return frozenset(self.members.get(group, ()))

    def route(self, message: dict[str, Any]) -> None:
        """Hand one message to every local member of its group."""
        members = self.members.get(message.get("group", ""))
        if not members:
            return
        for member in tuple(members):
            try:
                member.deliver(message)
            except Exception:
                logger.exception("delivery to a local member failed")

    async def _ensure_reader(self) -> None:
        if self.channel_name is None:
            self.channel_name = await self.layer.new_channel("fanout.")
            from .bridge import start_local_bridge  # the bus bridge delivers through this fan-out

            self.bridge = await start_local_bridge(self)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="realtime-fanout")

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failures == 0:
                    logger.error("channel layer lost (%s); events stop until it is back", exc)
                self.healthy = False
                delay = self.RETRY_DELAYS[min(failures, len(self.RETRY_DELAYS) - 1)]
                failures += 1
                await asyncio.sleep(delay)
                if await self._rejoin():
                    logger.warning("channel layer is back after %d attempts; groups joined again", failures)
                    failures = 0
                    self.healthy = True
                continue
            self.route(message)

    async def _rejoin(self) -> bool:
        try:
            for group in list(self.members):
                await self.layer.group_add(group, self.channel_name)
        except Exception:
            return False
        return True


_fanouts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout]" = weakref.WeakKeyDictionary()


def get_fanout() -> Fanout:
    """Return this process's fan-out (one per event loop, so each test loop gets its own)."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout(get_channel_layer())
    return fanout


class OutboxOverflow(Exception):
    """A socket fell so far behind that a message which must not be dropped could not be queued."""


class Outbox:
    """A bounded send queue of one socket; one slow socket never delays the others.

    Frames with a conflation key (price ticks, by event type and symbol) replace a waiting frame
    with the same key, so a socket that falls behind still ends on the newest price. Every other
    frame is kept in order; when more than `limit` of them wait, the socket is given up.

    `backlog` tells how many bytes the server still holds for the client (see `transport.py`):
    above `HIGH_WATER` the writer stops handing frames over and waits, so frames queue here,
    where they can be conflated and counted, instead of piling up unbounded in the server.
    """

    HIGH_WATER = 256 * 1024
    POLL_SECONDS = 0.02

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        limit: int,
        on_overflow: Callable[[], None],
        backlog: Callable[[], int] | None = None,
        send_now: Callable[[str], None] | None = None,
    ):
        self._send = send
        self._send_now = send_now
        self._limit = limit
        self._on_overflow = on_overflow
        self._backlog = backlog
        self._pending: OrderedDict[Hashable, str] = OrderedDict()
        self._events: dict[Hashable, tuple[str, float | None]] = {}  # (event type, emitted at) per waiting event
        self._sequence = 0
        self._writer: asyncio.Task | None = None
        self._closed = False
        self.conflated = 0
        self.sent = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def put(
        self, text: str, *, conflate_key: Hashable | None = None, event: tuple[str, float | None] | None = None
    ) -> None:
        """Queue a frame; `event` (type, emitted at) marks an event frame for the delivery metrics."""
        if self._closed:
            return
        if (
            self._send_now is not None
            and self._writer is None
            and not self._pending
            and (self._backlog is None or self._backlog() <= self.HIGH_WATER)
        ):  # nothing waits and the socket keeps up: write now, without a task
            try:
                self._send_now(text)
            except Exception:
                logger.debug("socket gone while sending", exc_info=True)
                self.close()
                return
            self.sent += 1
            if event is not None:
                metrics.event_delivered(*event)
            return
        if conflate_key is not None and conflate_key in self._pending:
            self._pending[conflate_key] = text
            self.conflated += 1
            metrics.conflated()
        else:
            if conflate_key is None:
                if len(self._pending) >= self._limit:
                    self._closed = True
                    self.dropped += len(self._pending) + 1
                    self._pending.clear()
                    self._events.clear()
                    self._on_overflow()
                    return
                self._sequence += 1
                conflate_key = self._sequence  # ints never equal a (string) conflation key
            self._pending[conflate_key] = text
        if event is not None:
            self._events[conflate_key] = event
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending and not self._closed:
                if self._backlog is not None and self._backlog() > self.HIGH_WATER:
                    await asyncio.sleep(self.POLL_SECONDS)  # the client is not reading: let frames wait here
                    continue
                key, text = self._pending.popitem(last=False)
                event = self._events.pop(key, None) if self._events else None
                await self._send(text)
                self.sent += 1
                if event is not None:
                    metrics.event_delivered(*event)
        except Exception:
            logger.debug("socket gone while sending", exc_info=True)
            self.close()
        finally:
            self._writer = None
            if self._pending and not self._closed:
                self._writer = asyncio.get_running_loop().create_task(self._drain())

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        self._events.clear()

    async def flush(self) -> None:
        """Wait until every queued frame was handed to the server."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
