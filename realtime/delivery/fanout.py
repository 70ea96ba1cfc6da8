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
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from realtime.runtime import metrics
from realtime.runtime.connections import connections
from realtime.delivery.dispatch import ORIGIN, get_backlog
from realtime.delivery.messages import EVENT, event_group
from realtime.wire.events import EVENT_SCHEMAS
from realtime.runtime.logs import log_flow_debug
from realtime.runtime.loops import per_loop
from realtime.wire.frames import FrameWriter, WatchedWriter, text_frame

logger = logging.getLogger(__name__)


class Delivery:
    """One event on its way to the local members of a group: what every member needs of it,
    worked out once, and a tally.

    `wire` is the complete WebSocket frame of the event's text; members whose socket takes it at
    once add to `written` and set their last activity to `at`, and the fan-out counts them in the
    metrics together. The rest is what each member checks the event against (its schema's
    permission, audience, group and symbol) and puts in its outbox (conflation key, metrics tag).
    """

    __slots__ = (
        "event_type",
        "text",
        "emitted_at",
        "wire",
        "written",
        "at",
        "known",
        "permission",
        "audience",
        "symbol",
        "broadcast",
        "to_all_symbols",
        "conflate",
        "event",
        "debug",
    )

    def __init__(self, message: dict[str, Any]):
        self.event_type: str = message.get("event", "")
        self.text: str = message.get("text", "")
        self.emitted_at: float | None = message.get("emitted_at")
        self.wire = text_frame(self.text.encode("utf-8"))
        self.written = 0
        self.at = time.time()
        schema = EVENT_SCHEMAS.get(self.event_type)
        self.known = schema is not None
        self.permission: str | None = schema.permission if schema is not None else None
        audience = message.get("audience")
        self.audience: frozenset[int] | None = frozenset(audience) if audience is not None else None
        self.symbol: str | None = message.get("symbol")
        group = message.get("group", "")
        self.broadcast = group.startswith("ev.")  # to the type's group or one symbol's group
        self.to_all_symbols = group == event_group(self.event_type)
        self.conflate: str | None = message.get("conflate")
        self.event = (self.event_type, self.emitted_at)  # for the delivery metrics of frames sent later
        self.debug = log_flow_debug()


# Starts this process's bus bridge, which delivers bus messages through the fan-out, when a fan-out
# first reads from the channel layer. The bus builds on delivery, so it registers itself here
# (`realtime.apps.RealtimeConfig.ready`) instead of delivery importing it.
_bridge_starter: Callable[[Fanout], Awaitable[Any]] | None = None


def start_bridge_with(starter: Callable[[Fanout], Awaitable[Any]] | None) -> None:
    """Set what starts the bus bridge of each fan-out (None: no bridge)."""
    global _bridge_starter
    _bridge_starter = starter


class Member(Protocol):
    def deliver(self, message: dict[str, Any], delivery: Delivery | None = None) -> None: ...


class Fanout:
    """Route channel-layer messages of this process to the local members of each group."""

    RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
    # Numbered event copies remembered to refuse a second delivery of: enough for the messages
    # in flight around a Redis restart, a few seconds of a busy process.
    REMEMBERED = 4096

    def __init__(self, layer: Any):
        self.layer = layer
        self._routed: set[tuple[str, str]] = set()
        self._routed_order: deque[tuple[str, str]] = deque()
        self.channel_name: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task | None = None
        self.healthy = True
        self.bridge: Any = None  # this process's bus bridge (realtime/bus/bridge.py), started with the fan-out

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
        """Hand one message to every local member of its group.

        An event is framed once here for all of them (`Delivery.wire`), and the frames written at
        once are counted once, after the loop, instead of per socket.
        """
        members = self.members.get(message.get("group", ""))
        if not members:
            return
        delivery = Delivery(message) if message.get("type") == EVENT else None
        for member in tuple(members):
            try:
                member.deliver(message, delivery)
            except Exception:
                logger.exception("delivery to a local member failed")
        if delivery is not None and delivery.written:
            connections.messages_sent += delivery.written
            metrics.events_written(delivery.event_type, delivery.text, delivery.written, delivery.emitted_at)

    async def _ensure_reader(self) -> None:
        if self.channel_name is None:
            self.channel_name = await self.layer.new_channel("fanout.")
            if _bridge_starter is not None:
                self.bridge = await _bridge_starter(self)
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
                    await get_backlog().flush()  # what this process published meanwhile, to the others
                continue
            if message.get("origin") == ORIGIN:  # delivered here already when the layer refused it
                continue
            if self.redelivered(message):
                continue
            self.route(message)

    def redelivered(self, message: dict[str, Any]) -> bool:
        """Whether the layer hands this process a numbered event copy it has routed already.

        channels-redis moves a message it pops to a backup list until the receive is done and puts
        what it finds there back in the queue; a Redis that restarts from a snapshot taken in
        between (or a receive cut off by a lost connection) hands the same message over twice. A
        numbered copy is the same event when its group and its frame's end (`"seq":N,"epoch":"E"}`)
        are, so a socket never gets one event twice. Unnumbered messages have no identity and pass.
        """
        if "seq" not in message:
            return False
        key = (message.get("group", ""), message.get("text", "")[-96:])
        if key in self._routed:
            logger.info("dropped a second delivery of %s seq %s in %s", message.get("event"), message["seq"], key[0])
            return True
        self._routed.add(key)
        self._routed_order.append(key)
        if len(self._routed_order) > self.REMEMBERED:
            self._routed.discard(self._routed_order.popleft())
        return False

    async def _rejoin(self) -> bool:
        try:
            for group in list(self.members):
                await self.layer.group_add(group, self.channel_name)
        except Exception:
            return False
        return True


get_fanout = per_loop(lambda: Fanout(get_channel_layer()))


class OutboxOverflow(Exception):
    """A socket fell so far behind that a message which must not be dropped could not be queued."""


class Outbox:
    """A bounded send queue of one socket; one slow socket never delays the others.

    Frames with a conflation key (price ticks, by event type and symbol) replace a waiting frame
    with the same key, so a socket that falls behind still ends on the newest price. Every other
    frame is kept in order; when more than `limit` of them wait, the socket is given up.

    With a `FrameWriter` (daphne over TCP with the adapter, `realtime/server/transport.py`) a
    frame is written the moment it is put, as long as nothing waits before it and the server holds
    less than `HIGH_WATER` bytes for the client; otherwise it waits here, where it can be
    conflated and counted, and a writer task hands it over once the client reads again. A
    `WatchedWriter` tells the outbox when the client's buffer passes `HIGH_WATER` (`full`) and
    when it has emptied (`writable`), and the writer task sleeps until then; a writer that cannot
    tell has its `backlog()` measured every `POLL_SECONDS` instead. Without a writer, frames go
    through ASGI `send`.

    `put` tells whether it wrote the frame at once, so the caller (the fan-out, for a thousand
    sockets at a time) can count those itself; frames written later are reported to `on_sent`.
    """

    HIGH_WATER = 256 * 1024
    POLL_SECONDS = 0.02  # only for a writer that cannot tell when the client's buffer empties
    _resumed: asyncio.Future[None] | None = None  # what the writer task waits on while a watched writer is full

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        limit: int,
        on_overflow: Callable[[], None],
        on_sent: Callable[[str, tuple[str, float | None] | None], None] | None = None,
        writer: FrameWriter | None = None,
    ):
        self._send = send
        self._socket = writer
        self._limit = limit
        self._on_overflow = on_overflow
        self._on_sent = on_sent
        self._pending: OrderedDict[Hashable, tuple[str, bytes | None]] = OrderedDict()
        self._events: dict[Hashable, tuple[str, float | None]] = {}  # (event type, emitted at) per waiting event
        self._sequence = 0
        self._writer: asyncio.Task | None = None
        self._closed = False
        self.conflated = 0
        self.sent = 0
        self.dropped = 0
        self.fanned_out = 0  # events the fan-out wrote at once (see `Connection.frames_out`)
        self.fanned_out_at = 0.0
        # Last: a writer on a connection already gone closes the outbox from inside `watch`.
        self._watched = isinstance(writer, WatchedWriter) and writer.watch(self, mark=self.HIGH_WATER)

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def writer(self) -> str:
        """How frames reach the socket: "socket" (a `FrameWriter`) or "asgi" (ASGI `send`)."""
        return "socket" if self._socket is not None else "asgi"

    @property
    def flow(self) -> str | None:
        """How the outbox learns that the server's buffer for the client is full: "told" (the writer
        is told by the server), "measured" (`backlog()` read, every `POLL_SECONDS` while over the
        mark), None (ASGI, which cannot tell)."""
        if self._socket is None:
            return None
        return "told" if self._watched else "measured"

    def server_backlog(self) -> int | None:
        """Bytes the server holds for the client beyond this outbox (None: ASGI cannot tell)."""
        return self._socket.backlog() if self._socket is not None else None

    def put(
        self,
        text: str,
        *,
        wire: bytes | None = None,
        conflate_key: Hashable | None = None,
        event: tuple[str, float | None] | None = None,
    ) -> bool:
        """Write or queue a frame; return True when it was written now.

        `wire` is the frame already framed (`transport.text_frame`), when the caller has it;
        `event` (type, emitted at) marks an event frame for the delivery metrics.
        """
        if self._closed:
            return False
        socket = self._socket
        if socket is not None and self._writer is None and not self._pending:
            frame = wire if wire is not None else text_frame(text.encode("utf-8"))
            try:  # over HIGH_WATER in the server, the frame waits here
                if self._watched:
                    written = not socket.full and socket.write(frame)  # type: ignore[attr-defined]
                else:  # one look at what the server holds for the client
                    written = socket.write(frame, unless_over=self.HIGH_WATER)
            except Exception:
                logger.debug("socket gone while sending", exc_info=True)
                self.close()
                return False
            if written:
                self.sent += 1
                return True
        if conflate_key is not None and conflate_key in self._pending:
            self._pending[conflate_key] = (text, wire)
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
                    return False
                self._sequence += 1
                conflate_key = self._sequence  # ints never equal a (string) conflation key
            self._pending[conflate_key] = (text, wire)
        if event is not None:
            self._events[conflate_key] = event
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())
        return False

    async def _drain(self) -> None:
        socket = self._socket
        try:
            while self._pending and not self._closed:
                if socket is not None:  # while the client is not reading, frames wait here
                    if self._watched:
                        if socket.full:  # type: ignore[attr-defined]
                            self._resumed = asyncio.get_running_loop().create_future()
                            await self._resumed  # until `writable` or `close`; no timer meanwhile
                            continue
                    elif socket.backlog() > self.HIGH_WATER:
                        await asyncio.sleep(self.POLL_SECONDS)
                        continue
                key, (text, wire) = self._pending.popitem(last=False)
                event = self._events.pop(key, None) if self._events else None
                if socket is not None:
                    socket.write(wire if wire is not None else text_frame(text.encode("utf-8")))
                else:
                    await self._send(text)
                self.sent += 1
                if self._on_sent is not None:
                    self._on_sent(text, event)
        except Exception:
            logger.debug("socket gone while sending", exc_info=True)
            self.close()
        finally:
            self._writer = None
            if self._pending and not self._closed:
                self._writer = asyncio.get_running_loop().create_task(self._drain())

    def writable(self) -> None:
        """The watched writer's client has taken everything the server held: the writer task goes on.

        Called by Twisted's reactor, which under daphne runs on the consumers' asyncio loop
        (daphne installs the asyncio reactor on the loop its applications run on), so the writer
        task's future is set directly.
        """
        resumed = self._resumed
        if resumed is not None:
            self._resumed = None
            if not resumed.done():
                resumed.set_result(None)

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        self._events.clear()
        self.writable()  # a writer task waiting for the client ends

    async def flush(self) -> None:
        """Wait until every queued frame was handed to the server."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
