"""One connection's subscriptions: which event types it gets, narrowed to which symbols, the replay
of what it missed, and the filter every event passes on its way to the socket.

`Subscriptions` answers the client's `subscription` messages and keeps the state; `deliver` is the
per-socket delivery filter, bound as `EventConsumer.deliver` so the fan-out calls it directly: it
runs once per socket and event (the hot path), so it reads the containers `Subscriptions` keeps
through the connection's own attributes (`subscriptions`, `symbols`, `replaying`, the same
objects) and costs no call more than the filter itself.

What a connection offers them (`realtime.consumers.EventConsumer` does): `client_id`, `user`,
`config`, `fanout`, `outbox`, `replay_budget`, `activity`, `may(permission)`, `send_text`,
`send_frame`, `send_error`, `sent` (count a frame handed to the outbox), `end`, `flow`, and for
`deliver` also `session_key`, `loop` and `recheck_access()`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from realtime.connection.access import get_permission_cache, session_fingerprint
from realtime.connection.limits import replay_turn
from realtime.delivery import messages
from realtime.delivery.fanout import Delivery
from realtime.delivery.history import get_history
from realtime.runtime import metrics
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.protocol import (
    EVENT_NAME_RE,
    ClientMessage,
    CloseCode,
    ErrorCode,
    ProtocolError,
    decode,
    envelope,
    parse_event_types,
    parse_since,
    parse_symbols,
)

logger = logging.getLogger(__name__)

# `reason` of a `subscription.confirmed` with `recovered: false` whose replay the budget refused.
REPLAY_BUDGET_EXHAUSTED = "replay_budget_exhausted"
# Replayed frames sent between two turns of the event loop: a replay of a thousand frames must not
# hold up other connections' commands and events for its whole length (bench/replay_abuse.py).
REPLAY_SLICE = 50


class Subscriptions:
    """The event types one connection subscribed to, and the groups that brings it into."""

    def __init__(self, connection: Any):
        self.connection = connection
        self.event_types: set[str] = set()
        # Event types narrowed by `data.symbols` to some instruments; the rest get all symbols.
        self.symbols: dict[str, frozenset[str]] = {}
        # Event types being replayed, with the live events of the type held back meanwhile.
        self.replaying: dict[str, list[dict[str, Any]]] = {}

    def groups(self, event_type: str) -> list[str]:
        """Return the fan-out groups through which the connection gets an event type now."""
        narrowed = self.symbols.get(event_type)
        if narrowed is None:
            return [messages.event_group(event_type)]
        return [messages.symbol_group(event_type, symbol) for symbol in sorted(narrowed)]

    def all_groups(self) -> list[str]:
        """Return every group the subscriptions hold the connection in (to leave them at the close)."""
        return [group for event_type in self.event_types for group in self.groups(event_type)]

    def released(self) -> None:
        """Count the subscriptions of a closed connection as ended."""
        for event_type in self.event_types:
            metrics.unsubscribed(event_type)

    async def handle(self, message: ClientMessage) -> None:
        """Answer a `subscription` message: subscribe or unsubscribe each event type it names."""
        if message.event not in ("subscribe", "unsubscribe"):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                "A subscription message's 'event' is 'subscribe' or 'unsubscribe'.",
                correlation_id=message.correlation_id,
            )
        config = self.connection.config
        event_types = parse_event_types(message, limit=config["MAX_EVENT_TYPES_PER_MESSAGE"])
        since = parse_since(message, limit=config["MAX_EVENT_TYPES_PER_MESSAGE"])
        symbols = parse_symbols(message, limit=config["MAX_SYMBOLS_PER_SUBSCRIPTION"])
        changed = []
        for event_type in event_types:
            try:
                self._check_event_type(event_type, message)
                # `data.symbols` narrows the types whose events name an instrument; others get all.
                narrowed = symbols if EVENT_SCHEMAS[event_type].symbol_field else None
                if message.event == "subscribe":
                    await self._subscribe(event_type, message, since.get(event_type), narrowed)
                else:
                    await self._unsubscribe(event_type, message, narrowed)
                changed.append(event_type)
            except ProtocolError as error:
                self.connection.send_error(error)
        self.connection.activity.subscription(
            message.event, changed, symbols=symbols, correlation_id=message.correlation_id
        )

    async def revoke_unpermitted(self) -> list[str]:
        """Drop the subscriptions whose permission the connection no longer holds; return their types."""
        connection = self.connection
        revoked = []
        for event_type in sorted(self.event_types):
            if not connection.may(EVENT_SCHEMAS[event_type].permission):
                revoked.append(event_type)
                await self._drop(event_type)
                connection.send_frame(
                    envelope(
                        "system",
                        "subscription.removed",
                        {"event_type": event_type, "client_id": connection.client_id, "reason": "permission_revoked"},
                        source_service=connection.config["SERVICE_NAME"],
                        target_client=connection.client_id,
                    )
                )
        return revoked

    async def _drop(self, event_type: str) -> None:
        groups = self.groups(event_type)
        self.event_types.discard(event_type)
        metrics.unsubscribed(event_type)
        self.symbols.pop(event_type, None)
        await self.connection.fanout.leave_all(self.connection, groups)

    def _confirm(self, event: str, data: dict[str, Any], message: ClientMessage) -> None:
        connection = self.connection
        connection.send_frame(
            envelope(
                "system",
                event,
                {"event_type": data.pop("event_type"), "client_id": connection.client_id, **data},
                correlation_id=message.correlation_id,
                source_service=connection.config["SERVICE_NAME"],
                target_client=connection.client_id,
            )
        )

    def _check_event_type(self, event_type: str, message: ClientMessage) -> None:
        shown = event_type[:100]
        if not EVENT_NAME_RE.fullmatch(event_type):
            raise ProtocolError(
                ErrorCode.INVALID_EVENT_TYPE,
                f"{shown!r} is not an event type name (like 'market.price_update').",
                correlation_id=message.correlation_id,
                event_type=shown,
            )
        schema = EVENT_SCHEMAS.get(event_type)
        if schema is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_EVENT_TYPE,
                f"Unknown event type {shown!r}.",
                correlation_id=message.correlation_id,
                event_type=shown,
            )
        if message.event == "subscribe" and not self.connection.may(schema.permission):
            raise ProtocolError(
                ErrorCode.PERMISSION_DENIED,
                f"You may not subscribe to {event_type!r}.",
                correlation_id=message.correlation_id,
                event_type=event_type,
            )

    async def _regroup(self, event_type: str, symbols: frozenset[str] | None, message: ClientMessage) -> None:
        """Move an event type's memberships to `symbols` (None: all): join the new, then leave the old."""
        fanout, connection = self.connection.fanout, self.connection
        before = self.groups(event_type) if event_type in self.event_types else []
        if symbols is None:
            self.symbols.pop(event_type, None)
        else:
            self.symbols[event_type] = symbols
        after = self.groups(event_type)
        try:
            for group in after:
                if group not in before:
                    await fanout.join(group, connection)
        except Exception as exc:
            logger.error("subscribe to %s failed: channel layer unavailable: %s", event_type, exc)
            raise ProtocolError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "The event bus is unavailable; subscribe again in a moment.",
                correlation_id=message.correlation_id,
                event_type=event_type,
            ) from None
        await fanout.leave_all(connection, [group for group in before if group not in after])

    async def _subscribe(
        self, event_type: str, message: ClientMessage, since: dict[str, Any] | None, symbols: frozenset[str] | None
    ) -> None:
        if event_type in self.event_types:
            if self.symbols.get(event_type) != symbols:
                await self._regroup(event_type, symbols, message)
        else:
            limit = self.connection.config["MAX_SUBSCRIPTIONS_PER_CONNECTION"]
            if len(self.event_types) >= limit:
                raise ProtocolError(
                    ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                    f"At most {limit} subscriptions per connection.",
                    correlation_id=message.correlation_id,
                    event_type=event_type,
                    limit=limit,
                )
            try:
                await self._regroup(event_type, symbols, message)
            except ProtocolError:
                self.symbols.pop(event_type, None)
                raise
            self.event_types.add(event_type)
            metrics.subscribed(event_type)
        position, held = await self._replay(event_type, since)
        if symbols is not None:
            position["symbols"] = sorted(symbols)
        if "seq" in position:
            # Whether this connection gets every number of the type, so that a client may take
            # a skipped seq for a loss (docs/recovery.md).
            position["complete"] = symbols is None and not EVENT_SCHEMAS[event_type].personal
        self._confirm("subscription.confirmed", {"event_type": event_type, **position}, message)
        last = position.get("seq", 0)
        connection = self.connection
        for live in held:
            if live.get("seq", last + 1) > last:
                event = (event_type, live.get("emitted_at"))
                if connection.outbox.put(live["text"], conflate_key=live.get("conflate"), event=event):
                    connection.sent(live["text"], event)

    async def _replay(self, event_type: str, since: dict[str, Any] | None) -> tuple[dict[str, Any], list]:
        """Send what the client missed since `since` and return the stream position.

        Live events of the type that arrive meanwhile are held back and returned, so they follow
        the replay instead of overtaking it.
        """
        self.replaying[event_type] = []
        try:
            history = get_history()
            if since is None:
                seq, epoch = await history.position(event_type)
                return {"seq": seq, "epoch": epoch}, self.replaying[event_type]
            async with replay_turn(self.connection.user.pk):  # one replay of the user's at a time (limits.py)
                return await self._replay_since(event_type, since, history)
        except Exception as exc:
            logger.error("history of %s unavailable: %s", event_type, exc)
            return ({"recovered": False} if since is not None else {}), self.replaying[event_type]
        finally:
            self.replaying.pop(event_type, None)

    async def _replay_since(self, event_type: str, since: dict[str, Any], history: Any) -> tuple[dict[str, Any], list]:
        """Send the events after `since` within the replay budget; return the stream position."""
        connection = self.connection
        replay = await history.since(
            event_type, since["seq"], since["epoch"], limit=connection.replay_budget.allowance()
        )
        if replay.over_limit:
            # Replayed frames count against the connection's and the user's budget; past it
            # the client reloads its state instead, which costs the gateway one answer.
            metrics.replay_refused()
            logger.info(
                "replay of %s refused for client_id=%s: replay budget exhausted", event_type, connection.client_id
            )
            position = {"recovered": False, "seq": replay.seq, "epoch": replay.epoch, "reason": REPLAY_BUDGET_EXHAUSTED}
            return position, self.replaying[event_type]
        if replay.recovered:
            connection.replay_budget.spend(len(replay.entries))
            metrics.replayed(len(replay.entries))
            wanted = self._wants_symbol(event_type)
            user_id = connection.user.pk
            for n, entry in enumerate(replay.entries, 1):
                if (entry.audience is None or user_id in entry.audience) and wanted(entry.text):
                    connection.send_text(entry.text)
                if n % REPLAY_SLICE == 0:
                    # Live events of the type wait in `replaying` meanwhile, so the stream stays
                    # in order; other work of the process runs in between.
                    await asyncio.sleep(0)
        return {"recovered": replay.recovered, "seq": replay.seq, "epoch": replay.epoch}, self.replaying[event_type]

    def _wants_symbol(self, event_type: str):
        """Return a test whether a replayed frame is for one of the connection's symbols."""
        narrowed = self.symbols.get(event_type)
        if narrowed is None:
            return lambda text: True
        field = EVENT_SCHEMAS[event_type].symbol_field
        return lambda text: decode(text)["data"].get(field) in narrowed

    async def _unsubscribe(self, event_type: str, message: ClientMessage, symbols: frozenset[str] | None) -> None:
        narrowed = self.symbols.get(event_type)
        if event_type in self.event_types and symbols is not None:
            if narrowed is None:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE,
                    f"{event_type!r} is subscribed for all symbols; subscribe with 'data.symbols' to narrow it.",
                    correlation_id=message.correlation_id,
                    event_type=event_type,
                )
            if narrowed - symbols:
                await self._regroup(event_type, narrowed - symbols, message)
                self._confirm(
                    "subscription.confirmed", {"event_type": event_type, "symbols": sorted(narrowed - symbols)}, message
                )
                return
        if event_type in self.event_types:
            await self._drop(event_type)
        self._confirm("subscription.removed", {"event_type": event_type}, message)


def deliver(self: Any, message: dict[str, Any], delivery: Delivery | None = None) -> None:
    """Take a message from the process fan-out and send or queue what this connection may see.

    `self` is the connection (bound as `EventConsumer.deliver`). An event comes with its
    `Delivery`, in which the fan-out worked out once what every socket checks it against; this
    runs once per socket and event, so it does only that.
    """
    kind = message.get("type")
    if kind == messages.EVENT:
        alone = delivery is None  # not from the fan-out: count the frame here
        if delivery is None:
            delivery = Delivery(message)
        if delivery.audience is not None and self.user.pk not in delivery.audience:
            return
        if not delivery.known:
            return
        if delivery.permission is not None and not self.may(delivery.permission):
            return
        event_type = delivery.event_type
        if delivery.broadcast:
            if event_type not in self.subscriptions:
                return
            # Accept it only through the group this connection belongs to now, so a
            # connection changing from all symbols to some (or back) never gets it twice.
            narrowed = self.symbols.get(event_type)
            if narrowed is None:
                if not delivery.to_all_symbols:
                    return
            elif delivery.to_all_symbols or delivery.symbol not in narrowed:
                return
            if self.replaying:
                held = self.replaying.get(event_type)
                if held is not None:  # a replay is running: live events wait behind it
                    held.append(message)
                    return
        if delivery.debug:
            self.flow("delivered", message.get("correlation_id"), event_type, logging.DEBUG)
        outbox = self.outbox
        if outbox.put(delivery.text, wire=delivery.wire, conflate_key=delivery.conflate, event=delivery.event):
            if alone:
                self.sent(delivery.text, delivery.event)
                return
            delivery.written += 1  # counted by the fan-out, for all sockets at once
            outbox.fanned_out += 1  # this socket's share (`Connection.frames_out`)
            outbox.fanned_out_at = delivery.at
    elif kind == messages.DIRECT:
        self.send_text(message["text"])
    elif kind == messages.CLOSE:
        self.end(message.get("code", CloseCode.NORMAL), message.get("reason") or "closed on request")
    elif kind == messages.ACCESS:
        ended = message.get("ended_session")
        if ended is not None:
            if ended == session_fingerprint(self.session_key):
                self.end(CloseCode.SESSION_ENDED, "logged out")
            return
        get_permission_cache().forget(self.user.pk)  # the next handshake of the user loads them anew
        self.loop.create_task(self.recheck_access())
