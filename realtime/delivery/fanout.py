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
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from realtime.runtime import metrics
from realtime.runtime.connections import connections
from realtime.delivery.dispatch import ORIGIN, get_backlog
from realtime.delivery.messages import EVENT, event_group
from realtime.wire.events import EVENT_SCHEMAS
from realtime.runtime.logs import log_flow_debug
from realtime.runtime.loops import per_loop
from realtime.wire.frames import text_frame

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


def _delivery_of(message: dict[str, Any]) -> Delivery | None:
    """The `Delivery` of an event message; None for another message (a member handles it itself)."""
    return Delivery(message) if message.get("type") == EVENT else None


def _deliver(message: dict[str, Any], delivery: Delivery | None, members: Iterable[Member]) -> None:
    """Hand `message` to each of `members`; one member's failure is logged and stops no other."""
    for member in members:
        try:
            member.deliver(message, delivery)
        except Exception:
            logger.exception("delivery to a local member failed")


class Fanout:
    """Route channel-layer messages of this process to the local members of each group."""

    RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
    # Numbered event copies remembered to refuse a second delivery of: enough for the messages
    # in flight around a Redis restart, a few seconds of a busy process.
    REMEMBERED = 4096
    # Members handed one message before the loop is let go to other work (`route`).
    CHUNK = 128
    # Messages waiting in `_routing` before the reader stops taking more from the channel layer.
    ROUTING_LIMIT = 64

    def __init__(self, layer: Any):
        self.layer = layer
        self._routed: set[tuple[str, str]] = set()
        self._routed_order: deque[tuple[str, str]] = deque()
        self.channel_name: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._lock = asyncio.Lock()
        # Joins of groups this process is not in yet, waiting for the next channel-layer batch:
        # group -> the members to add once the process is in it, and the future they wait on.
        self._joining: dict[str, tuple[set[Member], asyncio.Future[None]]] = {}
        self._joiner: asyncio.Task | None = None
        # Groups that lost their last local member, to be left on the channel layer in the next
        # batch: group -> the future their leavers wait on.
        self._leaving: dict[str, asyncio.Future[None]] = {}
        self._leaver: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None
        # Messages routed to a large group, or behind one, still being handed over (`route`).
        self._routing: deque[tuple[dict[str, Any], tuple[Member, ...]]] = deque()
        self._router: asyncio.Task | None = None
        self._room: asyncio.Event | None = None  # set when `_routing` is back at its limit
        self.healthy = True
        self.bridge: Any = None  # this process's bus bridge (realtime/bus/bridge.py), started with the fan-out

    async def join(self, group: str, member: Member) -> None:
        """Make `member` a local member of `group`, joining the group on the channel layer first if
        this process is not in it yet; return once events of the group reach the member.

        Joins of new groups that arrive while the channel layer is busy (a reconnect storm: a
        client group per socket) wait for one batch, added in one round trip per Redis host
        (`_join_waiting`) instead of one round trip each behind the lock.
        """
        if self.channel_name is None or self._reader is None or self._reader.done():
            async with self._lock:
                await self._ensure_reader()
        members = self.members.get(group)
        if members is not None:  # the process is in the group (a leave emptying it takes it out of `members` first)
            members.add(member)
            return
        left = self._leaving.pop(group, None)
        if left is not None:  # emptied a moment ago, not yet left on the layer: the process is still in it there
            left.set_result(None)
            self.members[group] = {member}
            return
        waiting = self._joining.get(group)
        if waiting is None:
            joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            joined.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, if every joiner gave up
            waiting = self._joining[group] = (set(), joined)
        if self._joiner is None or self._joiner.done():
            self._joiner = asyncio.get_running_loop().create_task(self._join_waiting(), name="realtime-fanout-join")
        joiners, joined = waiting
        joiners.add(member)
        try:
            await asyncio.shield(joined)
        except asyncio.CancelledError:
            # Given up before the batch was in: not left behind as a member of a closed socket.
            joiners.discard(member)
            if joined.done() and not joined.cancelled() and joined.exception() is None:
                await self.leave(group, member)
            raise

    async def _join_waiting(self) -> None:
        """Join the groups waiting in `_joining`, a batch at a time, until none wait.

        Under the lock, as a leave's discard is: a group emptied and left while its join waited
        is added after the discard, never before it. The members are added here, before their
        futures are resolved, so a group is never in `members` without the members that joined it.
        """
        while self._joining:
            async with self._lock:
                batch, self._joining = self._joining, {}
                try:
                    await self._ensure_reader()
                    add_many = getattr(self.layer, "group_add_many", None)
                    if add_many is not None:
                        await add_many(list(batch), self.channel_name)
                    else:
                        for group in batch:
                            await self.layer.group_add(group, self.channel_name)
                except BaseException as exc:
                    for _, joined in batch.values():
                        if not joined.done():
                            joined.set_exception(exc if isinstance(exc, Exception) else RuntimeError("join cancelled"))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                abandoned = []
                for group, (joiners, joined) in batch.items():
                    if joiners:
                        self.members.setdefault(group, set()).update(joiners)
                    elif group not in self.members:
                        abandoned.append(group)
                    if not joined.done():
                        joined.set_result(None)
                # Every joiner of these gave up while the batch was on its way (a socket whose
                # handshake the server cancelled): no leave will come for them, so the process
                # leaves them on Redis here, else each stays there until the layer's group expiry.
                for group in abandoned:
                    try:
                        await self.layer.group_discard(group, self.channel_name)
                    except Exception:  # the layer is down; the membership expires with it
                        logger.warning("could not leave group %s on the channel layer", group)

    async def leave(self, group: str, member: Member) -> None:
        await self.leave_all(member, [group])

    async def leave_all(self, member: Member, groups: list[str]) -> None:
        """Take `member` out of `groups`; return once the process has left, on the channel layer,
        the groups that have no local member any more.

        Groups emptied by leaves that arrive together (a network blip's sockets closing) are left
        in one batch, one round trip per Redis host (`_leave_waiting`), as joins are added. When
        the layer fails, the membership expires with the layer's group expiry.

        To the end even when the caller is cancelled meanwhile: a socket's application that the
        server kills (daphne cancels one still running its disconnect after its close timeout, as
        an overloaded process is) would otherwise stay in `members` for good, with everything it
        holds, and the process in its groups on Redis until the group expiry.
        """
        leaving = asyncio.ensure_future(self._leave_many(member, groups))
        await asyncio.shield(leaving)

    async def _leave_many(self, member: Member, groups: list[str]) -> None:
        waits: list[asyncio.Future[None]] = []
        async with self._lock:  # after a join batch on its way, whose members are added under the lock
            loop = asyncio.get_running_loop()
            for group in groups:
                members = self.members.get(group)
                if members is None:
                    continue
                members.discard(member)
                if members:
                    continue
                del self.members[group]
                waiting = self._leaving.get(group)
                if waiting is None:
                    waiting = self._leaving[group] = loop.create_future()
                waits.append(waiting)
            if waits and (self._leaver is None or self._leaver.done()):
                self._leaver = loop.create_task(self._leave_waiting(), name="realtime-fanout-leave")
        if waits:
            await asyncio.gather(*waits)

    async def _leave_waiting(self) -> None:
        """Leave the groups waiting in `_leaving` on the channel layer, a batch at a time.

        Under the lock: a join of a group taken into a batch waits for the lock too, so it is
        added after the discard; a join of a group still waiting here takes it back instead
        (`join`), as the process has not left it yet.
        """
        while self._leaving:
            async with self._lock:
                batch, self._leaving = self._leaving, {}
                try:
                    discard_many = getattr(self.layer, "group_discard_many", None)
                    if discard_many is not None:
                        await discard_many(list(batch), self.channel_name)
                    else:
                        for group in batch:
                            await self.layer.group_discard(group, self.channel_name)
                except Exception:  # the layer is down; the memberships expire with it
                    logger.warning("could not leave %d groups on the channel layer", len(batch))
                for left in batch.values():
                    if not left.done():
                        left.set_result(None)

    def local_members(self, group: str) -> frozenset[Member]:
        return frozenset(self.members.get(group, ()))

    def route(self, message: dict[str, Any]) -> None:
        """Hand one message to every local member of its group, in the order messages are routed.

        An event is framed once here for all of them (`Delivery.wire`), and the frames written at
        once are counted once, after the last member, instead of per socket. A group larger than
        `CHUNK` is handed over `CHUNK` members at a time, the loop free in between: a price tick
        to a thousand desks would otherwise hold it for its whole fan-out, and a trader's order,
        its answer and every other socket's frames with it (docs/benchmarks.md). While such a message
        is still being handed over, the messages routed after it wait behind it, so every socket
        gets them in the order they were routed.
        """
        members = self.members.get(message.get("group", ""))
        if not members:
            return
        if not self._routing and len(members) <= self.CHUNK:
            self._hand_over(message, tuple(members))
            return
        self._routing.append((message, tuple(members)))
        if self._router is None or self._router.done():
            self._router = asyncio.get_running_loop().create_task(self._route_waiting(), name="realtime-fanout-route")

    def _hand_over(self, message: dict[str, Any], members: tuple[Member, ...]) -> None:
        delivery = _delivery_of(message)
        _deliver(message, delivery, members)
        self._count(delivery)

    @staticmethod
    def _count(delivery: Delivery | None) -> None:
        if delivery is not None and delivery.written:
            connections.messages_sent += delivery.written
            metrics.events_written(delivery.event_type, delivery.text, delivery.written, delivery.emitted_at)

    async def _route_waiting(self) -> None:
        """Hand over the routed messages in order, `CHUNK` members at a time, yielding in between.

        A member that left the group meanwhile (its socket closed) is skipped.
        """
        while self._routing:
            message, members = self._routing[0]
            group = message.get("group", "")
            delivery = _delivery_of(message)
            for start in range(0, len(members), self.CHUNK):
                if start:
                    await asyncio.sleep(0)
                current = self.members.get(group, ())
                _deliver(
                    message, delivery, [member for member in members[start : start + self.CHUNK] if member in current]
                )
            self._count(delivery)
            self._routing.popleft()
            if self._room is not None and len(self._routing) <= self.ROUTING_LIMIT:
                self._room.set()

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
            if len(self._routing) > self.ROUTING_LIMIT:  # the sockets fall behind: let the layer hold the rest
                self._room = asyncio.Event()
                await self._room.wait()
                self._room = None

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
