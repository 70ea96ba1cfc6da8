"""The channel-layer messages of the gateway: their kinds, the groups they go to, and the event
message built from a validated event.

`build_event_message` validates an event against its schema, wraps it in the spec's envelope and
encodes it to JSON once; whatever carries it afterwards (`dispatch`, the bus bridge, the fan-out)
passes the same text on. `is_broadcast` and `broadcast_copies` say which groups an event goes to,
so the channel layer and the bus bridge route it alike. Sending is `dispatch`'s.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from realtime.runtime.logs import current_correlation_id
from realtime.wire.events import get_schema
from realtime.wire.protocol import SYMBOL_RE, encode, envelope


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


# Every connection of every process (the spec's `broadcast_to_all`): operators' announcements.
ALL_GROUP = "all"


def build_event_message(
    event_type: str,
    data: dict[str, Any],
    *,
    audience: Iterable[int] | None = None,
    correlation_id: str | None = None,
    source_service: str | None = None,
    target_client: str | None = None,
    group: str | None = None,
    spec_defaults: bool = False,
) -> dict[str, Any]:
    """Validate an event and return the channel-layer message that carries its encoded frame.

    `spec_defaults` accepts what the spec's dataclass defaults write (events of bus services).
    """
    schema = get_schema(event_type)
    if audience is not None and not schema.personal:
        # Subscribers of such a type are told they see every number of it (`complete`).
        raise ValueError(f"{event_type} events go to every subscriber; only a personal event type takes an audience.")
    schema.validate(data, spec_defaults=spec_defaults)
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


def is_broadcast(message: dict[str, Any]) -> bool:
    """Tell whether a message is a broadcast event: numbered, kept for replay, sent to its type's group.

    Events for one client (`target_client`) and other kinds of message are never numbered.
    """
    return message["type"] == EVENT and message["group"] == event_group(message["event"])


def broadcast_copies(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Return a broadcast event once per group it goes to, each copy with the same number.

    A broadcast event naming an instrument also goes to that instrument's group: connections
    subscribed to all symbols sit in the event type's group only, those narrowed by
    `data.symbols` in the symbol groups only, so each gets the event exactly once. The channel
    layer (`dispatch.asend_message`) and the bus bridge of each process (`bridge.LocalDelivery`) both
    route by this, so an event reaches the same sockets whichever way it came.
    """
    symbol = message.get("symbol")
    if isinstance(symbol, str) and SYMBOL_RE.fullmatch(symbol):
        return [message, {**message, "group": symbol_group(message["event"], symbol)}]
    return [message]


def to_all_message(frame: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Return the message that delivers an already built frame to every open connection, on every process."""
    return {"type": DIRECT, "group": ALL_GROUP, "text": encode(frame), **extra}
