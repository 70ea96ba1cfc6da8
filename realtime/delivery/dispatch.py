"""The one way to publish an event: `send_event` and `send_event_on_commit`.

An event is validated against its schema, wrapped in the spec's envelope and encoded to JSON
once, by the producer (`messages.build_event_message`). The encoded frame travels through the
channel layer to one group per event type; each gateway process holds a single membership in it
(see `fanout.py`) and hands the same text to every local subscriber. `audience` limits an event to some users (the members
of a portfolio); it never reaches the wire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from realtime.delivery.history import get_history
from realtime.delivery.messages import (
    ACCESS,
    CLOSE,
    DIRECT,
    EVENT,
    broadcast_copies,
    build_event_message,
    client_group,
    is_broadcast,
    user_group,
)
from realtime.runtime import metrics
from realtime.runtime.logs import log_flow
from realtime.runtime.loops import per_loop
from realtime.wire.protocol import decode, encode

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Names this process on messages it sent through the channel layer after delivering them to
# its own sockets itself (`Backlog`); its fan-out skips them.
ORIGIN = uuid.uuid4().hex


async def asend_message(message: dict[str, Any]) -> None:
    """Number a broadcast event in its history (unless `asend_messages` did), then hand the
    message to its group(s). An event that cannot be numbered goes out without `seq`."""
    layer = get_channel_layer()
    if is_broadcast(message):
        if "seq" not in message:
            await _number([message])
        _log_emitted(message)
        for copy in broadcast_copies(message):
            await layer.group_send(copy["group"], copy)
    else:
        _log_emitted(message)
        await layer.group_send(message["group"], message)
    if message["type"] == EVENT:
        metrics.event_published(message["event"])


def _log_emitted(message: dict[str, Any]) -> None:
    """Log an event's "emitted" line; before it is sent, so it comes before every "delivered" line."""
    if message["type"] == EVENT:
        log_flow(
            "emitted",
            correlation_id=message.get("correlation_id"),
            event_type=message["event"],
            group=message["group"],
            audience=_audience_size(message),
        )


async def asend_messages(messages: list[dict[str, Any]]) -> None:
    """Publish messages in order, as `asend_message` each would, in as few round trips as the
    layer allows: the broadcast events among them are numbered in one (`append_many`), and a
    layer with `group_send_many` (ours on Redis, `layers.py`) sends them all in at most two more.

    Events that cannot be numbered go out without `seq` (`_number`). When the channel layer
    refuses the batch, this process's own sockets get it at once from its fan-out, and the
    other processes once the layer is back (`Backlog`).
    """
    broadcasts = [message for message in messages if is_broadcast(message) and "seq" not in message]
    if broadcasts:
        await _number(broadcasts)
    send_many = getattr(get_channel_layer(), "group_send_many", None)
    if send_many is None:
        for message in messages:
            try:
                await asend_message(message)
            except Exception:
                logger.exception("event %s could not be published", message.get("event") or message["type"])
                _deliver_here_only(message)
        return
    sends = []
    for message in messages:
        copies = broadcast_copies(message) if is_broadcast(message) else [message]
        sends += [(copy["group"], copy) for copy in copies]
        _log_emitted(message)
    backlog = get_backlog()
    if not await backlog.flush():  # still refused: these wait behind what is held, in order
        backlog.hold(sends)
    else:
        try:
            await send_many(sends)
        except Exception as exc:
            backlog.hold(sends, exc)
    for message in messages:
        if message["type"] == EVENT:
            metrics.event_published(message["event"])


def _deliver_here_only(message: dict[str, Any]) -> None:
    """Hand a message the channel layer refused to this process's sockets at once.

    For a layer without `group_send_many` (channels-redis pub/sub), which has no `Backlog`: the
    other processes never get it, so a broadcast event's type is marked and its next numbered
    event starts a new epoch; their clients reload instead of missing it silently. (A socket here
    may get it twice, had the layer taken part of it: the same `seq`, which clients skip.)
    """
    from realtime.delivery.fanout import get_fanout  # the fan-out sends through this module

    fanout = get_fanout()
    for copy in broadcast_copies(message) if is_broadcast(message) else [message]:
        fanout.route(copy)
    if is_broadcast(message):
        get_history().mark_unnumbered([message["event"]])


class _Outage:
    """Log the start and the end of a failure once each, not per event."""

    def __init__(self, lost: str, back: str):
        self.lost, self.back = lost, back
        self.failing = False
        self.count = 0

    def failed(self, exc: BaseException | None, count: int) -> None:
        self.count += count
        if not self.failing and exc is not None:
            self.failing = True
            logger.error(self.lost, type(exc).__name__, exc)

    def answered(self) -> None:
        if self.failing:
            logger.warning(self.back, self.count)
            self.failing, self.count = False, 0


_numbering = _Outage(
    "event history unavailable (%s: %s): events go out live without seq, and the next numbered event of "
    "each such type starts a new epoch",
    "event history is back: events are numbered again (%d went out without seq)",
)


async def _number(broadcasts: list[dict[str, Any]]) -> None:
    """Number broadcast events in one round trip, or let them go out without `seq`.

    An event that cannot be numbered (the history's Redis is away) still reaches the sockets live;
    its type is marked so that the next numbered event of it starts a new epoch, and clients that
    replay or see that event reload (docs/recovery.md). Numbering a batch again after a failure
    could store some twice, had Redis run part of it, so the whole batch goes unnumbered.
    """
    history = get_history()
    try:
        numbered = await history.append_many(
            [(message["event"], message["text"], message["audience"]) for message in broadcasts]
        )
    except Exception as exc:
        history.mark_unnumbered(message["event"] for message in broadcasts)
        _numbering.failed(exc, len(broadcasts))
        for message in broadcasts:
            metrics.event_unnumbered(message["event"])
        return
    _numbering.answered()
    for message, (seq, _, text) in zip(broadcasts, numbered):
        message["seq"], message["text"] = seq, text


class Backlog:
    """Messages the channel layer refused: delivered to this process's sockets at once, and held
    to go to the other processes once the layer answers again.

    Held copies carry this process's `ORIGIN`, and its fan-out skips them when they come back
    through the layer, so local sockets get each once. At most `LIMIT` are held; what is dropped
    beyond that marks its event types in the history, so their next numbered event starts a new
    epoch and clients reload.
    """

    LIMIT = 1000

    def __init__(self) -> None:
        self.waiting: deque[tuple[str, dict[str, Any]]] = deque()
        self._lock = asyncio.Lock()
        self.outage = _Outage(
            "channel layer unavailable for publishing (%s: %s): events reach this process's sockets only, "
            "the others once it is back",
            "channel layer is back for publishing: %d held messages sent to the other processes",
        )

    def hold(self, sends: list[tuple[str, dict[str, Any]]], exc: BaseException | None = None) -> None:
        """Deliver `sends` to this process's sockets and keep them for the others; `exc` is why."""
        from realtime.delivery.fanout import get_fanout  # the fan-out sends through this module

        fanout = get_fanout()
        for group, message in sends:
            fanout.route(message)
            self.waiting.append((group, {**message, "origin": ORIGIN}))
        lost: set[str] = set()
        while len(self.waiting) > self.LIMIT:
            _, message = self.waiting.popleft()
            if message["type"] == EVENT:
                lost.add(message["event"])
        if lost:
            logger.error("channel layer backlog full: messages of %s dropped for the other processes", sorted(lost))
            get_history().mark_unnumbered(lost)
        self.outage.failed(exc, len(sends))

    async def flush(self) -> bool:
        """Send what is held, in order; return whether nothing is held any more."""
        if not self.waiting:
            return True
        send_many = getattr(get_channel_layer(), "group_send_many", None)
        if send_many is None:
            return False
        async with self._lock:  # the publisher and the fan-out's recovery may both flush
            held = list(self.waiting)
            if not held:
                return True
            try:
                await send_many(held)
            except Exception:
                return False
            for _ in held:
                self.waiting.popleft()
        self.outage.answered()
        return True


get_backlog = per_loop(Backlog)


async def anumber_once(message: dict[str, Any], *, once: str, ttl: int) -> None:
    """Number a broadcast event that several processes hear, identically in each of them.

    The first process to ask appends the event to its history under the key `once`; the others,
    asking with the same key within `ttl` seconds, get its number and stored frame back. So every
    process delivers the same bytes (seq, epoch, and the first process's envelope timestamp and
    correlation id), which are also what a replay sends later.
    """
    own = message["text"]
    seq, _, text = await get_history().append_once(message["event"], own, message["audience"], once=once, ttl=ttl)
    message["seq"], message["text"] = seq, text
    if not text.startswith(own[:-1]):  # another process's frame: log under its correlation id
        message["correlation_id"] = decode(text).get("correlation_id")


def _audience_size(message: dict[str, Any]) -> int | str:
    return len(message["audience"]) if message.get("audience") is not None else "all"


async def asend_event(event_type: str, data: dict[str, Any], **options: Any) -> None:
    """Validate and publish an event to its subscribers (or to `target_client` only)."""
    await asend_message(build_event_message(event_type, data, **options))


def send_event(event_type: str, data: dict[str, Any], **options: Any) -> None:
    """Publish an event from synchronous code (services running in a worker thread)."""
    message = build_event_message(event_type, data, **options)
    async_to_sync(asend_message)(message)


def send_event_on_commit(event_type: str, data: dict[str, Any], **options: Any) -> None:
    """Publish an event once the current transaction commits; nothing is sent on rollback.

    The event is validated now, so a producer with a wrong schema fails inside its transaction
    instead of losing the event after the commit.
    """
    message_send_on_commit(build_event_message(event_type, data, **options))


def message_send_on_commit(message: dict[str, Any]) -> None:
    """Send a built channel-layer message once the current transaction commits; nothing on rollback."""

    def publish() -> None:
        if _publish_from_loop(message):
            return
        try:
            async_to_sync(asend_message)(message)
        except Exception:
            logger.exception("%s could not be published after commit", message.get("event") or message["type"])

    transaction.on_commit(publish)


class Publisher:
    """Publishes the events that worker threads commit, in order, on the event loop.

    A service running for a socket or a request (a worker thread of `sync_to_async`) used to
    wait after each commit until every event was numbered and sent. That kept the one thread
    all database work of a gateway process shares waiting on Redis, and a process asked to stop
    while such a wait was pending could never finish it. Now the thread hands the events over
    and goes on; one task per loop publishes them in the order they were committed.
    """

    def __init__(self) -> None:
        self._waiting: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task | None = None

    def put(self, message: dict[str, Any]) -> None:
        self._waiting.append(message)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="realtime-publisher")

    async def _drain(self) -> None:
        while self._waiting:  # what committed meanwhile goes out together (`asend_messages`)
            batch = list(self._waiting)
            self._waiting.clear()
            await asend_messages(batch)

    async def flush(self) -> None:
        """Wait until everything handed over so far is published."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


get_publisher = per_loop(Publisher)


def run_and_publish(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` in a new event loop, as `asyncio.run` does, and publish what it committed before the loop ends.

    Events committed by `database_sync_to_async` work on this loop wait in its `Publisher`;
    `asyncio.run` alone cancels the publisher's task once `main` returns, and the last events
    with it. A management command that runs an event loop runs it through here.
    """

    async def until_published() -> T:
        try:
            return await main
        finally:
            await get_publisher().flush()

    return asyncio.run(until_published())


def _publish_from_loop(message: dict[str, Any]) -> bool:
    """Hand `message` to the publisher of the loop this worker thread serves; False if there is none."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if (
        loop is None
        or not loop.is_running()
        or getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid()
    ):
        return False
    try:
        loop.call_soon_threadsafe(lambda: get_publisher().put(message))
    except RuntimeError:  # the loop closed meanwhile
        return False
    return True


async def asend_to_client(client_id: str, frame: dict[str, Any]) -> None:
    """Deliver an already built frame to every connection of one client id, on any process."""
    await asend_message({"type": DIRECT, "group": client_group(client_id), "text": encode(frame)})


async def aclose_user_connections(user_id: int, code: int, reason: str) -> None:
    """Close every open socket of a user, on every gateway process."""
    await asend_message({"type": CLOSE, "group": user_group(user_id), "code": code, "reason": reason})


def close_user_connections(user_id: int, code: int, reason: str) -> None:
    async_to_sync(aclose_user_connections)(user_id, code, reason)


async def anotify_access_changed(user_id: int) -> None:
    """Tell every process that a user's access changed, so their sockets are checked at once."""
    await asend_message({"type": ACCESS, "group": user_group(user_id)})
