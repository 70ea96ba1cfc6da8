"""The one way to publish an event: `send_event` and `send_event_on_commit`.

An event is validated against its schema, wrapped in the spec's envelope and encoded to JSON
once, here, by the producer. The encoded frame travels through the channel layer to one group
per event type; each gateway process holds a single membership in it (see `fanout.py`) and hands
the same text to every local subscriber. `audience` limits an event to some users (the members
of a portfolio); it never reaches the wire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from . import metrics
from .events import get_schema
from .history import get_history
from .logs import current_correlation_id, log_flow
from .protocol import SYMBOL_RE, encode, envelope

logger = logging.getLogger(__name__)

EVENT = "realtime.event"  # a broadcast or targeted event frame
DIRECT = "realtime.direct"  # a frame for one client (command responses from another process)
CLOSE = "realtime.close"  # close the sockets of a client or user
ACCESS = "realtime.access"  # a user's session, account or permissions changed: check again


def event_group(event_type: str) -> str:
    return f"ev.{event_type}"


def symbol_group(event_type: str, symbol: str) -> str:
    """Name the group of one instrument's events of a type (for `subscribe` with `data.symbols`)."""
    return f"ev.{event_type}.{symbol}"


def client_group(client_id: str) -> str:
    return f"client.{client_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def build_event_message(
    event_type: str,
    data: dict[str, Any],
    *,
    audience: Iterable[int] | None = None,
    correlation_id: str | None = None,
    source_service: str | None = None,
    target_client: str | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    """Validate an event and return the channel-layer message that carries its encoded frame."""
    schema = get_schema(event_type)
    schema.validate(data)
    frame = envelope(
        schema.category,
        event_type,
        data,
        correlation_id=correlation_id or current_correlation_id.get(),
        source_service=source_service or settings.REALTIME["SERVICE_NAME"],
        target_client=target_client,
    )
    symbol = data.get(schema.symbol_field) if schema.symbol_field else None
    return {
        "type": EVENT,
        "group": group or (client_group(target_client) if target_client else event_group(event_type)),
        "event": event_type,
        "text": encode(frame),
        "audience": sorted(set(audience)) if audience is not None else None,
        "symbol": symbol,
        # Worked out once here, so no consumer builds it per delivery: the outbox key under
        # which a newer tick replaces a waiting one.
        "conflate": f"{event_type}:{symbol}" if schema.conflatable else None,
        "emitted_at": time.time(),
        "correlation_id": frame["correlation_id"],
    }


async def asend_message(message: dict[str, Any]) -> None:
    """Number a broadcast event in its history, then hand the message to its group.

    A broadcast event naming an instrument also goes to that instrument's group, with the same
    number: connections subscribed to all symbols sit in the event type's group only, those
    narrowed by `data.symbols` in the symbol groups only, so each gets the event exactly once.
    """
    layer = get_channel_layer()
    if message["type"] == EVENT and message["group"] == event_group(message["event"]):
        seq, _, message["text"] = await get_history().append(message["event"], message["text"], message["audience"])
        message["seq"] = seq
        log_flow("emitted", correlation_id=message.get("correlation_id"), event_type=message["event"],
                 group=message["group"], audience=_audience_size(message))
        await layer.group_send(message["group"], message)
        symbol = message.get("symbol")
        if isinstance(symbol, str) and SYMBOL_RE.fullmatch(symbol):
            await layer.group_send(symbol_group(message["event"], symbol), {**message, "group": symbol_group(message["event"], symbol)})
        metrics.event_published(message["event"])
        return
    if message["type"] == EVENT:
        log_flow("emitted", correlation_id=message.get("correlation_id"), event_type=message["event"],
                 group=message["group"], audience=_audience_size(message))
    await layer.group_send(message["group"], message)
    if message["type"] == EVENT:
        metrics.event_published(message["event"])


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
    message = build_event_message(event_type, data, **options)

    def publish() -> None:
        try:
            async_to_sync(asend_message)(message)
        except Exception:
            logger.exception("event %s could not be published after commit", event_type)

    transaction.on_commit(publish)


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
