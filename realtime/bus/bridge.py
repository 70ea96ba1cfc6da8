"""The bridge between the spec's Redis event bus and the gateway's sockets.

Services outside Django publish on the Redis channel `aktienanalyse:events:websocket` exactly as
the spec's `WebSocketEventDispatcher._emit_event` (section 3.1) and `UserCommandHandler.
send_command_response` (section 3.2) do. Redis pub/sub hands every message to every subscriber,
so the question is who subscribes and where each subscriber delivers:

- `local` (default): every gateway process runs one bridge beside its fan-out, and that bridge
  delivers only to the sockets of its own process (`Fanout.route`), never into the channel layer.
  A socket lives in exactly one process, so each subscriber gets each event exactly once however
  many processes run; a process that starts subscribes before its first socket is welcomed, one
  that stops takes only its own sockets with it, so adding or removing processes neither
  duplicates nor loses. A `target_client` message is routed the same way: only the process that
  holds that client has members in `client.<id>`, so it reaches that client wherever it is
  connected. It costs no extra hop through the channel layer.
  Broadcast events are numbered all the same (`LocalDelivery`): every process hears the bus in
  the same order and asks the shared history to number each message under its digest; the first
  stores it, the others get the same `seq`, `epoch` and frame back. So a bus event carries the
  same numbers on every process, is stored once, and a client that reconnects with `since` gets
  the bus events it missed like any other. A process that cannot reach the history delivers
  live without `seq` (and logs it) rather than not at all. Events for one `target_client` and
  command responses are never numbered, as in `dispatch`. Bus events reach a process directly,
  Django's own events through the channel layer: two events of one type sent both ways at the
  same moment may arrive in the other order than their `seq` (replay is in `seq` order).
- `external`: gateways do not subscribe; `manage.py event_bridge` processes do and re-publish
  into the channel layer groups, which reach every gateway's fan-out once. Several bridges may
  run for availability: a lease elects the one that publishes (keeping the order of events),
  the others take over what it leaves unpublished, and a `SET NX` claim on each message's
  digest keeps any of them from publishing it twice (`ClaimingPublisher`).

A consumer-group design (Redis streams) was not chosen: the spec's services PUBLISH, so the bus
carries pub/sub messages that a stream would never see without yet another subscriber.

Every bus message is checked like client input before it is delivered (`inbound.py`): a bad one
is logged with the reason, counted and dropped alone (`DropLog`). When Redis goes away the bridge
logs the loss, retries with a short backoff and logs the recovery; it never takes the process
down. Commands going the other way, to services on the bus, are `forwarding.py`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from core.times import utc_now_iso
from realtime.bus.inbound import BusMessageRejected, DropReason, parse_bus_message
from realtime.bus.presence import Presence
from realtime.bus.redis_client import bus_config, bus_enabled, bus_redis, connect_bus
from realtime.delivery import dispatch, messages
from realtime.delivery.history import get_history
from realtime.runtime import metrics
from realtime.runtime.logs import Throttle

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0)


class BusBridge:
    """Subscribe to the bus channel and hand each valid message to `deliver`, reconnecting forever."""

    def __init__(self, deliver: Callable[[dict[str, Any], bytes], Awaitable[None] | None], *, url: str | None = None):
        self.deliver = deliver
        self.url = url or bus_config()["URL"]
        self.channel = bus_config()["EVENTS_CHANNEL"]
        self.subscribed = asyncio.Event()
        self.connected = False
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self._task: asyncio.Task | None = None

    async def start(self, *, ready_within: float = 2.0) -> None:
        """Start the subscriber and wait (briefly) until it listens, so no early event is missed."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name="realtime-bus-bridge")
        try:
            await asyncio.wait_for(self.subscribed.wait(), ready_within)
        except asyncio.TimeoutError:
            logger.error("event bus bridge not subscribed within %.1fs; it keeps trying", ready_within)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def run(self) -> None:
        failures = 0
        while True:
            client = connect_bus(self.url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if failures:
                    logger.warning(
                        "event bus is back after %d attempts; bridge subscribed to %s again", failures, self.channel
                    )
                else:
                    logger.info("event bus bridge subscribed to %s", self.channel)
                failures = 0
                self.connected = True
                self.subscribed.set()
                while True:
                    # Not `listen()`: its reads give up after the client's socket timeout, so an
                    # idle bus would look lost every few seconds and resubscribe, missing what is
                    # published meanwhile. Short polls let redis-py ping on its health-check
                    # interval instead, which still finds a dead connection within seconds.
                    item = await pubsub.get_message(timeout=1.0)
                    if item is not None and item.get("type") == "message":
                        await self.handle(item["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failures == 0:
                    logger.error("event bus lost (%s: %s); bus events stop until it is back", type(exc).__name__, exc)
                self.connected = False
                self.subscribed.clear()
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                await asyncio.sleep(delay)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass

    async def handle(self, raw: bytes) -> None:
        """Validate one raw bus message and deliver it; a bad one is dropped alone, logged and counted.

        Nothing a single message does may end the subscription: an exception from parsing,
        validating, encoding, numbering or routing one message drops that message only.
        """
        self.received += 1
        try:
            message = parse_bus_message(raw)
        except BusMessageRejected as exc:
            self.dropped += 1
            drops.record(exc.reason, str(exc), raw)
            return
        except Exception as exc:  # a defect in validation: still this message's alone
            self.dropped += 1
            drops.record(DropReason.INVALID_DATA, f"{type(exc).__name__}: {exc}", raw, exc_info=True)
            return
        try:
            result = self.deliver(message, raw)
            if result is not None:
                await result
            self.delivered += 1
        except asyncio.CancelledError:
            raise
        except BusMessageRejected as exc:
            self.dropped += 1
            drops.record(exc.reason, str(exc), raw)
        except Exception as exc:
            self.dropped += 1
            drops.record(DropReason.DELIVERY_FAILED, f"{type(exc).__name__}: {exc}", raw, exc_info=True)


class DropLog:
    """Count dropped bus messages by reason and log them, at most one line per reason per interval.

    A service that floods the bus with bad messages must not flood the log too: the first drop of
    a reason is logged at once, later ones at most every `INTERVAL` seconds with how many were
    dropped meanwhile. The counter (`realtime_bus_messages_dropped_total{reason}`) counts each.
    """

    INTERVAL = 10.0

    def __init__(self) -> None:
        self.throttle = Throttle(self.INTERVAL)

    def record(self, reason: DropReason, text: str, raw: bytes | str, *, exc_info: bool = False) -> None:
        metrics.bus_message_dropped(reason)
        unlogged = self.throttle.admit(reason)
        if unlogged is None:
            return
        more = f" ({unlogged} more dropped for this reason since the last line)" if unlogged else ""
        logger.warning(
            "bus message dropped: %s (reason=%s): %.200r%s", text[:300], reason, raw, more, exc_info=exc_info
        )
        self._tell_monitors(str(reason), text, raw, unlogged)

    @staticmethod
    def _tell_monitors(reason: str, text: str, raw: bytes | str, unlogged: int) -> None:
        """Show the drop in the event inspector: a `system.bus_message_dropped` event, as often as the log line."""
        try:
            excerpt = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            message = messages.build_event_message(
                "system.bus_message_dropped",
                {
                    "reason": reason,
                    "detail": text[:300],
                    "excerpt": excerpt[:200].encode("utf-8", "replace").decode("utf-8"),
                    "dropped_since_last": unlogged,
                    "timestamp": utc_now_iso(),
                },
            )
            dispatch.get_publisher().put(message)
        except RuntimeError:  # no running loop (a drop judged outside the gateway's loop): the log has it
            pass
        except Exception:  # telling the monitors must never stop the bridge
            logger.exception("could not publish a bus drop to the monitors")


drops = DropLog()


async def start_local_bridge(fanout: Any) -> BusBridge | None:
    """Start this process's bridge, delivering bus messages to the local sockets of `fanout`.

    The process's entry in the cross-process client registry (`presence.py`) starts with it.
    """
    if not bus_enabled():
        return None
    Presence().start()
    if bus_config()["BRIDGE"] != "local":
        return None
    bridge = BusBridge(LocalDelivery(fanout))
    await bridge.start()
    return bridge


class LocalDelivery:
    """Deliver bus messages to this process's sockets, numbering broadcast events alike in every process.

    Redis hands pub/sub messages to every subscriber in the order they were published, so every
    gateway process sees the same bus messages in the same order. Each asks the history to number
    a broadcast event under the digest of its raw bytes (`dispatch.anumber_once`): the first to
    ask stores it, the others get the same seq, epoch and frame back. Then each routes it to its
    own members exactly as the channel layer routes an event from `dispatch.asend_message`
    (`messages.broadcast_copies`: the type's group and the instrument's group). Every process
    numbers every event, subscribers or not, so the history is complete for clients that replay.

    The same bytes heard again within `NUMBERING_WINDOW` are taken for the same event (a service
    that retried its publish) and delivered once, as `ClaimingPublisher` does for `external`.
    When the history cannot be reached, events go out live without seq rather than not at all,
    and the next numbered event of their type starts a new epoch (`history.mark_unnumbered`);
    after a failure the history fails fast for a second (`RedisHistory.RETRY_SECONDS`), so a
    history Redis that hangs does not hold up every bus message for its timeout.
    """

    # Longer than any delay between two processes hearing one message, short enough to keep few keys.
    NUMBERING_WINDOW = 60

    def __init__(self, fanout: Any):
        self.fanout = fanout
        self.unnumbered = 0  # broadcast events sent without seq since the history went away
        self._history_lost = False
        self._recent: OrderedDict[bytes, float] = OrderedDict()  # digest -> end of its window, oldest first

    async def __call__(self, message: dict[str, Any], raw: bytes) -> None:
        if not messages.is_broadcast(message):  # command responses and events for one client
            self.fanout.route(message)
            return
        digest = hashlib.sha256(raw).digest()
        if self._heard_before(digest):
            drops.record(DropReason.DUPLICATE, f"the same bytes came within {self.NUMBERING_WINDOW}s already", raw)
            return
        await self._number(message, digest.hex())
        for copy in messages.broadcast_copies(message):
            self.fanout.route(copy)

    def _heard_before(self, digest: bytes) -> bool:
        """Remember `digest` for the window; tell whether it was heard within the window already."""
        now = time.monotonic()
        while self._recent and next(iter(self._recent.values())) <= now:
            self._recent.popitem(last=False)
        if digest in self._recent:
            return True
        self._recent[digest] = now + self.NUMBERING_WINDOW
        return False

    async def _number(self, message: dict[str, Any], digest: str) -> None:
        history = get_history()
        try:
            await dispatch.anumber_once(message, once=digest, ttl=self.NUMBERING_WINDOW)
        except Exception as exc:  # the history's Redis is away (or failed this one message)
            history.mark_unnumbered([message["event"]])
            metrics.event_unnumbered(message["event"])
            self.unnumbered += 1
            if not self._history_lost:
                self._history_lost = True
                logger.error(
                    "event history unavailable (%s: %s): bus events go out live without seq and cannot be "
                    "replayed until it is back; the next numbered event of each such type starts a new epoch",
                    type(exc).__name__,
                    exc,
                )
            return
        if self._history_lost:
            logger.warning(
                "event history is back: bus events are numbered again (%d went out without seq)", self.unnumbered
            )
            self._history_lost = False
            self.unnumbered = 0


def claim_key(raw: bytes) -> str:
    return f"{bus_config()['KEY_PREFIX']}:bus:claimed:{hashlib.sha256(raw).hexdigest()}"


class ClaimingPublisher:
    """Re-publish bus messages into the channel layer from one of several bridge processes.

    The bridges elect a leader with a lease in Redis. The leader claims and publishes each message
    at once, so events keep their order; the others claim each message only after a grace
    period, which publishes nothing while the leader lives and, when it dies, delivers what it
    left behind. A claim is `SET NX` on the message's digest, so nothing goes out twice.
    """

    LEASE_MS = 3000
    STANDBY_DELAY = 1.0

    def __init__(self) -> None:
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_key = f"{bus_config()['KEY_PREFIX']}:bus:bridge-leader"
        self.leader = False
        self.published = 0
        self._standby: asyncio.Queue[tuple[float, dict[str, Any], bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._hold_lease()), loop.create_task(self._drain_standby())]

    async def _hold_lease(self) -> None:
        redis_client = bus_redis()
        while True:
            try:
                if await redis_client.set(self.lease_key, self.identity, nx=True, px=self.LEASE_MS):
                    leader = True
                else:
                    holder = await redis_client.get(self.lease_key)
                    leader = holder == self.identity.encode()
                    if leader:
                        await redis_client.pexpire(self.lease_key, self.LEASE_MS)
            except (aioredis.RedisError, OSError):
                leader = False
            if leader != self.leader:
                logger.info("event bridge %s is now %s", self.identity, "the leader" if leader else "a standby")
            self.leader = leader
            await asyncio.sleep(self.LEASE_MS / 3000)

    async def __call__(self, message: dict[str, Any], raw: bytes) -> None:
        if self.leader:
            await self._claim_and_publish(message, raw)
        else:
            self._standby.put_nowait((time.monotonic() + self.STANDBY_DELAY, message, raw))

    async def _drain_standby(self) -> None:
        while True:
            due, message, raw = await self._standby.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            try:
                await self._claim_and_publish(message, raw)
            except Exception:
                logger.exception("standby bridge could not publish %s", message.get("event") or message["type"])

    async def _claim_and_publish(self, message: dict[str, Any], raw: bytes) -> None:
        if await bus_redis().set(claim_key(raw), "1", nx=True, ex=60):
            await dispatch.asend_message(message)
            self.published += 1
