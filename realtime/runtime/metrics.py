"""Prometheus metrics of the gateway, and the cheap hooks the hot path calls to move them.

Every hook caches the labelled child of its metric per label value, so a delivery costs a dict
lookup and an increment, never a `.labels()` call. Label values are bounded: message types and
event types come from the protocol and the schema table, commands from the registry, error codes
from `ErrorCode` and the apps' domain errors.

Several gateway processes: set `PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by all of
them (before they start); each process then writes its values there and `/metrics` on any one
of them reports the sum (gauges of live connections and subscriptions sum the living processes).
Without it, every process reports its own values and each one is scraped on its own.
"""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from collections import deque
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from realtime.server.prometheus import observe_many

CONNECTIONS = Gauge("realtime_connections", "Open WebSocket connections.", multiprocess_mode="livesum")
MESSAGES_RECEIVED = Counter("realtime_messages_received", "Client messages received, by message type.", ["type"])
MESSAGES_SENT = Counter("realtime_messages_sent", "Frames written to sockets, by message type.", ["type"])
EVENTS_PUBLISHED = Counter(
    "realtime_events_published", "Events published by this process, by event type.", ["event_type"]
)
EVENTS_DELIVERED = Counter(
    "realtime_events_delivered", "Events written to a socket (one per receiving socket), by event type.", ["event_type"]
)
EVENT_DELIVERY_SECONDS = Histogram(
    "realtime_event_delivery_seconds",
    "Seconds from publishing an event to writing it to a socket.",
    ["event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMAND_SECONDS = Histogram(
    "realtime_command_seconds",
    "Seconds a command handler ran, by command and status (success, error, failure).",
    ["command", "status"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ERRORS = Counter("realtime_errors", "Error messages and error responses sent to clients, by code.", ["code"])
MESSAGES_CONFLATED = Counter(
    "realtime_messages_conflated", "Waiting frames replaced by a newer one of the same key (price ticks)."
)
MESSAGES_DROPPED = Counter("realtime_messages_dropped", "Frames discarded because their socket fell too far behind.")
SLOW_CONSUMERS_CLOSED = Counter(
    "realtime_slow_consumer_disconnects", "Connections closed because they stopped reading."
)
BUS_MESSAGES_DROPPED = Counter(
    "realtime_bus_messages_dropped",
    "Messages from the Redis bus dropped, by reason (realtime/bus/inbound.py DropReason).",
    ["reason"],
)
EVENTS_UNNUMBERED = Counter(
    "realtime_events_unnumbered",
    "Broadcast events sent without seq because the history was unreachable.",
    ["event_type"],
)
FRAMES_REPLAYED = Counter("realtime_frames_replayed", "History entries read for replays after `since`.")
REPLAYS_REFUSED = Counter(
    "realtime_replays_refused", "Replays answered with recovered: false because the replay budget was exhausted."
)
HANDSHAKES_REFUSED = Counter(
    "realtime_handshakes_refused",
    "WebSocket handshakes refused, by reason (origin, no_route, not_staff, draining, connection_cap).",
    ["reason"],
)
SUBSCRIPTIONS = Gauge(
    "realtime_subscriptions",
    "Subscriptions of open connections, by event type.",
    ["event_type"],
    multiprocess_mode="livesum",
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Children:
    """The labelled children of one metric, created once per label values."""

    __slots__ = ("metric", "cache")

    def __init__(self, metric: Any):
        self.metric = metric
        self.cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self.cache.get(labels)
        if child is None:
            child = self.cache[labels] = self.metric.labels(*labels)
        return child


_received = _Children(MESSAGES_RECEIVED)
_sent = _Children(MESSAGES_SENT)
_published = _Children(EVENTS_PUBLISHED)
_delivered = _Children(EVENTS_DELIVERED)
_delivery_seconds = _Children(EVENT_DELIVERY_SECONDS)
_command_seconds = _Children(COMMAND_SECONDS)
_errors = _Children(ERRORS)
_subscriptions = _Children(SUBSCRIPTIONS)
_bus_dropped = _Children(BUS_MESSAGES_DROPPED)
_handshakes_refused = _Children(HANDSHAKES_REFUSED)
_unnumbered = _Children(EVENTS_UNNUMBERED)

# Process-local tallies for the monitoring page (rates per event type, recent errors).
events_delivered: Tally[str] = Tally()
recent_errors: deque[dict[str, Any]] = deque(maxlen=50)

_TYPE_PREFIX = '{"type":"'


def frame_type(text: str) -> str:
    """Return the `type` of an encoded server frame without parsing it (it is always the first key)."""
    if text.startswith(_TYPE_PREFIX):
        end = text.find('"', 9, 64)
        if end > 0:
            return text[9:end]
    return "unknown"


def connection_opened() -> None:
    CONNECTIONS.inc()


def connection_closed() -> None:
    CONNECTIONS.dec()


def message_received(kind: str) -> None:
    _received(kind).inc()


def frame_sent(text: str) -> None:
    _sent(frame_type(text)).inc()


def event_published(event_type: str) -> None:
    _published(event_type).inc()


def event_delivered(event_type: str, emitted_at: float | None) -> None:
    _delivered(event_type).inc()
    events_delivered[event_type] += 1
    if emitted_at is not None:
        _delivery_seconds(event_type).observe(max(0.0, time.time() - emitted_at))


def events_written(event_type: str, text: str, count: int, emitted_at: float | None) -> None:
    """Count `count` frames of one event written to sockets at the same moment.

    The same as `frame_sent` and `event_delivered` `count` times, in constant time: the fan-out
    writes one event to a thousand sockets in one go, with one latency for all of them.
    """
    _sent(frame_type(text)).inc(count)
    _delivered(event_type).inc(count)
    events_delivered[event_type] += count
    if emitted_at is not None:
        observe_many(_delivery_seconds(event_type), max(0.0, time.time() - emitted_at), count)


def command_finished(command: str, status: str, seconds: float) -> None:
    _command_seconds(command, status).observe(seconds)


def error_sent(
    code: str, *, client_id: str | None, correlation_id: str | None, message: str, params: dict[str, Any] | None = None
) -> None:
    """Count an error sent to a client and keep it for the monitoring page.

    `params` are the error's details as the client got them, so the page can word the error
    from its code in the reader's language; `message` is the server's English text beside it.
    """
    _errors(code).inc()
    recent_errors.append(
        {
            "at": time.time(),
            "code": code,
            "client_id": client_id,
            "correlation_id": correlation_id,
            "message": message[:200],
            "params": dict(params or {}),
        }
    )


def conflated() -> None:
    MESSAGES_CONFLATED.inc()


def socket_fell_behind(dropped: int) -> None:
    MESSAGES_DROPPED.inc(dropped)
    SLOW_CONSUMERS_CLOSED.inc()


def bus_message_dropped(reason: str) -> None:
    _bus_dropped(str(reason)).inc()


def handshake_refused(reason: str) -> None:
    _handshakes_refused(reason).inc()


def event_unnumbered(event_type: str) -> None:
    _unnumbered(event_type).inc()


def replayed(frames: int) -> None:
    FRAMES_REPLAYED.inc(frames)


def replay_refused() -> None:
    REPLAYS_REFUSED.inc()


def subscribed(event_type: str) -> None:
    _subscriptions(event_type).inc()


def unsubscribed(event_type: str) -> None:
    _subscriptions(event_type).dec()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def exposition() -> bytes:
    """Return every metric in the Prometheus text format (summed over processes in multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
