"""The WebSocket consumer: the spec's protocol for one connection.

It authenticates and admits the connection, parses each frame (`protocol.py`), checks
permissions, and hands over: subscriptions to the process fan-out, commands to the registry.
All outgoing frames go through one bounded outbox, so responses and events keep their order and
a slow socket only ever holds itself up.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError

from core.exceptions import DomainError

from realtime.bus import bridge


from realtime.connection import drain

from realtime.runtime import metrics
from realtime.delivery import dispatch
from realtime.connection.activity import UserActivity
from realtime.announcements import announcements_attach
from realtime.connection.access import (
    Verdict,
    check_consumers,
    get_permission_cache,
    get_revalidator,
    session_auth_hash,
    session_fingerprint,
    token_session_key,
)
from realtime.bus.admission import get_leases
from realtime.connection.commands import Command, CommandContext, registry
from realtime.runtime.connections import Connection, connections
from realtime.wire.events import EVENT_SCHEMAS
from realtime.delivery.fanout import Delivery, Outbox, get_fanout
from realtime.connection.gate import header, refuse_handshake
from realtime.delivery.history import get_history
from realtime.connection.limits import ReplayBudget, TokenBucket, replay_turn
from realtime.runtime.logs import current_correlation_id, log_flow
from realtime.monitoring import monitor_attach
from realtime.wire.protocol import (
    COMMAND_NAME_RE,
    EVENT_NAME_RE,
    ClientMessage,
    CloseCode,
    ErrorCode,
    ProtocolError,
    command_response,
    decode,
    encode,
    envelope,
    error_message,
    parse_client_message,
    parse_event_types,
    parse_since,
    parse_symbols,
)
from core.times import utc_now, utc_now_iso
from realtime.services import client_identity_claim
from realtime.server.transport import socket_writer

logger = logging.getLogger(__name__)

# `reason` of a `subscription.confirmed` with `recovered: false` whose replay the budget refused.
REPLAY_BUDGET_EXHAUSTED = "replay_budget_exhausted"
# Replayed frames sent between two turns of the event loop: a replay of a thousand frames must not
# hold up other connections' commands and events for its whole length (bench/replay_abuse.py).
REPLAY_SLICE = 50


class EventConsumer(AsyncWebsocketConsumer):
    """One client connection speaking the spec's event protocol."""

    # Channel-layer traffic reaches consumers through the process fan-out, not a channel each.
    channel_layer_alias = None

    client_id: str | None = None
    lease: str | None = None  # this socket's place under the per-user cap (realtime/bus/admission.py)
    released = False
    draining = False  # the process drains (realtime/connection/drain.py): no command starts any more
    announced = False  # `user.action` "connected" went out, so "disconnected" follows

    async def connect(self) -> None:
        user = self.scope.get("user")
        client = self.scope.get("client") or (None, None)
        self.remote_addr = client[0]
        origin = header(self.scope, b"origin")
        if drain.draining():  # the adapter answers 503 before this; other servers refuse here
            refuse_handshake("draining", self.scope, "the process is draining", level=logging.INFO)
            await self.close()
            return
        if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
            refuse_handshake("not_staff", self.scope, "not an active staff user")
            await self.close()
            return
        self.user = user
        self.config = settings.REALTIME
        self.loop = asyncio.get_running_loop()
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        self.auth_hash = session_auth_hash(session)
        if self.scope.get("access_token_id") is not None:  # a tool's bearer token (realtime/connection/gate.py)
            self.session_key = token_session_key(self.scope["access_token_id"])
            self.auth_hash = user.get_session_auth_hash()
        self.permissions = await get_permission_cache().load(user)
        self.rate = TokenBucket(rate=self.config["RATE_LIMIT_PER_SECOND"], burst=self.config["RATE_LIMIT_BURST"])
        self.rate_strikes = 0
        self.replay_budget = ReplayBudget(
            user_id=user.pk,
            per_minute=self.config["REPLAY_BUDGET"],
            per_user_per_minute=self.config["REPLAY_BUDGET_PER_USER"],
        )
        self.rate_warned_at = 0.0
        self.replaying: dict[str, list[dict[str, Any]]] = {}
        self.ended = False
        self.client_id = self.scope.get("client_id")  # claimed by the gate (realtime/connection/gate.py)
        if self.client_id is None:  # a scope that did not pass the gate
            requested = self.scope["url_route"]["kwargs"].get("client_id") or None
            self.client_id = await database_sync_to_async(client_identity_claim)(user=user, requested=requested)
        self.activity = UserActivity(user_id=user.pk, username=user.get_username(), client_id=self.client_id)
        self.subscriptions: set[str] = set()
        # Event types narrowed by `data.symbols` to some instruments; the rest get all symbols.
        self.symbols: dict[str, frozenset[str]] = {}
        self.commands_in_flight: set[asyncio.Task] = set()
        self.outbox = Outbox(
            self._write,
            limit=self.config["SEND_QUEUE_LIMIT"],
            on_overflow=self._fell_behind,
            on_sent=self._sent,
            writer=socket_writer(self.base_send),
        )
        self.fanout = get_fanout()
        await self.accept()
        self.connection = Connection(
            client_id=self.client_id,
            user_id=user.pk,
            username=user.get_username(),
            remote_addr=self.remote_addr,
            origin=origin,
            connected_at=utc_now(),
            subscriptions=self.subscriptions,
            consumer=self,
            session=(user.pk, self.session_key, self.auth_hash),
            outbox=self.outbox,
        )
        self.lease = await get_leases().admit(user_id=user.pk, limit=self.config["MAX_CONNECTIONS_PER_USER"])
        over_cap = self.lease is None
        connections.add(self.connection)
        get_revalidator().ensure_running()
        logger.info(
            "websocket connected: user=%s client_id=%s address=%s origin=%s",
            user.get_username(),
            self.client_id,
            self.remote_addr,
            origin,
        )
        try:
            await self.fanout.join(dispatch.client_group(self.client_id), self)
            await self.fanout.join(dispatch.user_group(user.pk), self)
            await monitor_attach(self.fanout)
        except Exception as exc:
            logger.error("channel layer unavailable at connect of client_id=%s: %s", self.client_id, exc)
        if over_cap:
            metrics.handshake_refused("connection_cap")  # logged as the close below
            limit = self.config["MAX_CONNECTIONS_PER_USER"]
            self.send_error(
                ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, f"At most {limit} open connections per user.", limit=limit)
            )
            self.end(CloseCode.TOO_MANY_CONNECTIONS, "too many connections")
            return
        self.send_frame(
            envelope(
                "system",
                "connection.established",
                {"client_id": self.client_id, "server_time": utc_now_iso()},
                source_service=self.config["SERVICE_NAME"],
                target_client=self.client_id,
            )
        )
        self.announced = True
        self.activity.connection("connected")
        await self._join_announcements()

    async def _join_announcements(self) -> None:
        """Join every connection's group, and send the announcements still current.

        The board hears the group before this socket joins it, and nothing runs between the join
        and the reading of the board: an announcement comes either from the board or live, once.
        """
        try:
            board = await announcements_attach(self.fanout)
            await board.load(self.config["SERVICE_NAME"])
            await self.fanout.join(dispatch.ALL_GROUP, self)
        except Exception as exc:
            logger.error("announcements unavailable at connect of client_id=%s: %s", self.client_id, exc)
            return
        for text in board.active():
            self.send_text(text)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Hand an ASGI message to its handler, as Channels does, minus a database round trip.

        Channels closes stale database connections before every message it dispatches, which is
        a hop to the database thread for every heartbeat and every event a client sends. Every
        database call of ours goes through `database_sync_to_async`, which does that itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send) -> None:
        """Run the connection: Channels' consumer loop for a consumer without a channel.

        Channels receives through a task of its own per callable, so that it can wait on the
        channel layer too; with only the client to listen to, the loop awaits it directly, which
        saves a task per open socket.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":  # nearly every message: no handler lookup
                    await self.receive(text_data=message.get("text"), bytes_data=message.get("bytes"))
                else:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:  # also when the server cancels the connection without a disconnect message
            await self._release()

    async def disconnect(self, code: int) -> None:
        if self.client_id is None:
            return
        await self._release()
        logger.info(
            "websocket disconnected: user=%s client_id=%s address=%s code=%s",
            self.user.get_username(),
            self.client_id,
            self.remote_addr,
            code,
        )

    async def _release(self) -> None:
        """Leave the connection table and every group, once."""
        if self.client_id is None or self.released:
            return
        self.released = True
        if self.announced:
            self.activity.connection("disconnected")
        self.outbox.close()
        connections.remove(self)
        get_permission_cache().release(self.user.pk)
        if self.lease is not None:
            await get_leases().release(self.lease)
        groups = [group for event_type in self.subscriptions for group in self._groups(event_type)]
        groups += [dispatch.client_group(self.client_id), dispatch.user_group(self.user.pk), dispatch.ALL_GROUP]
        for event_type in self.subscriptions:
            metrics.unsubscribed(event_type)
        await self.fanout.leave_all(self, groups)

    # Outgoing

    async def _write(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    def _sent(self, text: str, event: tuple[str, float | None] | None = None) -> None:
        """Count one frame handed to the socket (the fan-out counts its own in bulk)."""
        self.connection.touch_out()
        connections.messages_sent += 1
        metrics.frame_sent(text)
        if event is not None:
            metrics.event_delivered(*event)

    def send_text(self, text: str, *, event: tuple[str, float | None] | None = None) -> None:
        if self.outbox.put(text, event=event):
            self._sent(text, event)

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.send_text(encode(frame))

    def _flow(self, stage: str, correlation_id: str | None, event_type: str | None, level: int = logging.INFO, **details: Any) -> None:
        log_flow(
            stage,
            correlation_id=correlation_id,
            client_id=self.client_id,
            user=self.connection.username,
            event_type=event_type,
            level=level,
            **details,
        )

    def send_error(self, error: ProtocolError) -> None:
        metrics.error_sent(
            str(error.code),
            client_id=self.client_id,
            correlation_id=error.correlation_id,
            message=error.message,
            params=error.details,
        )
        self._flow("refused", error.correlation_id, error.details.get("event_type"), code=str(error.code))
        self.send_frame(
            error_message(
                error.code,
                error.message,
                correlation_id=error.correlation_id,
                source_service=self.config["SERVICE_NAME"],
                target_client=self.client_id,
                **error.details,
            )
        )

    def _fell_behind(self) -> None:
        metrics.socket_fell_behind(self.outbox.dropped)
        self.end(CloseCode.SLOW_CONSUMER, "send queue overflow: the client stopped reading")

    def end(self, code: int, reason: str) -> None:
        """Close this socket from the server side, once, after what is already queued."""
        if self.ended:
            return
        self.ended = True
        logger.info("closing client_id=%s user=%s: %s (code %s)", self.client_id, self.user.get_username(), reason, code)
        self.loop.create_task(self._close_after_flush(code))

    async def _close_after_flush(self, code: int) -> None:
        try:
            async with asyncio.timeout(1):
                await self.outbox.flush()
        except (TimeoutError, Exception):
            pass
        self.outbox.close()
        # A plain int: daphne's autobahn refuses an IntEnum member and leaves the socket open.
        await self.close(code=int(code))

    async def apply_access(self, verdict: Verdict) -> None:
        """Close the socket if its access is gone; drop subscriptions whose permission is gone.

        The socket takes the account as the verdict read it, so commands act for the user as
        the database has them now (flags, and permissions Django would cache on the object).
        """
        if not verdict.changes(self.permissions, self.user):
            return
        if not verdict.allowed:
            self.end(verdict.close_code, verdict.reason)
            return
        if verdict.user is not None:
            self.user = verdict.user
        self.permissions = verdict.permissions
        get_permission_cache().refresh(self.user.pk, verdict.permissions)
        revoked = []
        for event_type in sorted(self.subscriptions):
            if not self.may(EVENT_SCHEMAS[event_type].permission):
                revoked.append(event_type)
                groups = self._groups(event_type)
                self.subscriptions.discard(event_type)
                metrics.unsubscribed(event_type)
                self.symbols.pop(event_type, None)
                await self.fanout.leave_all(self, groups)
                self.send_frame(
                    envelope(
                        "system",
                        "subscription.removed",
                        {"event_type": event_type, "client_id": self.client_id, "reason": "permission_revoked"},
                        source_service=self.config["SERVICE_NAME"],
                        target_client=self.client_id,
                    )
                )
        self.activity.subscription("revoked", revoked)

    async def _recheck_access(self) -> None:
        try:
            await check_consumers([self], with_permissions=True)
        except Exception:
            logger.exception("access check of client_id=%s failed; the periodic check will retry", self.client_id)

    def may(self, permission: str | None) -> bool:
        # The set decides alone: a superuser's holds every permission, and a demotion reloads it.
        return permission is None or permission in self.permissions

    def deliver(self, message: dict[str, Any], delivery: Delivery | None = None) -> None:
        """Take a message from the process fan-out and send or queue what this connection may see.

        An event comes with its `Delivery`, in which the fan-out worked out once what every
        socket checks it against; this runs once per socket and event, so it does only that.
        """
        kind = message.get("type")
        if kind == dispatch.EVENT:
            alone = delivery is None  # not from the fan-out: count the frame here
            if alone:
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
                self._flow("delivered", message.get("correlation_id"), event_type, logging.DEBUG)
            outbox = self.outbox
            if outbox.put(delivery.text, wire=delivery.wire, conflate_key=delivery.conflate, event=delivery.event):
                if alone:
                    self._sent(delivery.text, delivery.event)
                    return
                delivery.written += 1  # counted by the fan-out, for all sockets at once
                outbox.fanned_out += 1  # this socket's share (`Connection.frames_out`)
                outbox.fanned_out_at = delivery.at
        elif kind == dispatch.DIRECT:
            self.send_text(message["text"])
        elif kind == dispatch.CLOSE:
            self.end(message.get("code", CloseCode.NORMAL), message.get("reason") or "closed on request")
        elif kind == dispatch.ACCESS:
            ended = message.get("ended_session")
            if ended is not None:
                if ended == session_fingerprint(self.session_key):
                    self.end(CloseCode.SESSION_ENDED, "logged out")
                return
            get_permission_cache().forget(self.user.pk)  # the next handshake of the user loads them anew
            self.loop.create_task(self._recheck_access())

    # Incoming

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.connection.touch_in()
        connections.messages_received += 1
        if not self._within_rate():
            return
        if text_data is None:
            metrics.message_received("binary")
            self.send_error(ProtocolError(ErrorCode.BINARY_NOT_SUPPORTED, "Only text frames with JSON are accepted."))
            return
        limit = self.config["MAX_MESSAGE_BYTES"]
        if len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
            metrics.message_received("invalid")
            self.send_error(
                ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"Messages are limited to {limit} bytes.", limit=limit)
            )
            return
        try:
            message = parse_client_message(text_data)
        except ProtocolError as error:
            metrics.message_received("invalid")
            self.send_error(error)
            return
        metrics.message_received(message.type)
        self._flow("received", message.correlation_id, message.event, logging.DEBUG if message.type == "ping" else logging.INFO)
        try:
            if message.type == "ping":
                self._pong(message)
            elif message.type == "subscription":
                await self._subscription(message)
            else:
                self._command(message)
        except ProtocolError as error:
            self.send_error(error)

    def _within_rate(self) -> bool:
        """Apply the token bucket: answer the first refusal each second, close a flood that goes on."""
        if self.rate.take():
            if self.rate.rested:  # the flood is over: forget it
                self.rate_strikes = 0
            return True
        self.rate_strikes += 1
        if self.rate_strikes >= self.config["RATE_LIMIT_CLOSE_AFTER"]:
            self.end(CloseCode.RATE_LIMITED, "rate limit exceeded repeatedly")
            return False
        now = self.loop.time()
        if now - self.rate_warned_at >= 1:
            self.rate_warned_at = now
            rate = self.config["RATE_LIMIT_PER_SECOND"]
            self.send_error(
                ProtocolError(
                    ErrorCode.RATE_LIMITED,
                    f"Too many messages: at most {rate} a second; messages over the limit are dropped.",
                    limit=rate,
                )
            )
        return False

    def _pong(self, message: ClientMessage) -> None:
        now = utc_now_iso()
        self.send_frame(
            envelope(
                "system",
                "pong",
                {"timestamp": now},
                correlation_id=message.correlation_id,
                source_service=self.config["SERVICE_NAME"],
                target_client=self.client_id,
                timestamp=now,
            )
        )

    def _system(self, event: str, data: dict[str, Any], message: ClientMessage) -> None:
        self.send_frame(
            envelope(
                "system",
                event,
                data,
                correlation_id=message.correlation_id,
                source_service=self.config["SERVICE_NAME"],
                target_client=self.client_id,
            )
        )

    async def _subscription(self, message: ClientMessage) -> None:
        if message.event not in ("subscribe", "unsubscribe"):
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                "A subscription message's 'event' is 'subscribe' or 'unsubscribe'.",
                correlation_id=message.correlation_id,
            )
        event_types = parse_event_types(message, limit=self.config["MAX_EVENT_TYPES_PER_MESSAGE"])
        since = parse_since(message, limit=self.config["MAX_EVENT_TYPES_PER_MESSAGE"])
        symbols = parse_symbols(message, limit=self.config["MAX_SYMBOLS_PER_SUBSCRIPTION"])
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
                self.send_error(error)
        self.activity.subscription(message.event, changed, symbols=symbols, correlation_id=message.correlation_id)

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
        if message.event == "subscribe" and not self.may(schema.permission):
            raise ProtocolError(
                ErrorCode.PERMISSION_DENIED,
                f"You may not subscribe to {event_type!r}.",
                correlation_id=message.correlation_id,
                event_type=event_type,
            )

    def _groups(self, event_type: str) -> list[str]:
        """Return the fan-out groups through which this connection gets an event type now."""
        narrowed = self.symbols.get(event_type)
        if narrowed is None:
            return [dispatch.event_group(event_type)]
        return [dispatch.symbol_group(event_type, symbol) for symbol in sorted(narrowed)]

    async def _regroup(self, event_type: str, symbols: frozenset[str] | None, message: ClientMessage) -> None:
        """Move an event type's memberships to `symbols` (None: all): join the new, then leave the old."""
        before = self._groups(event_type) if event_type in self.subscriptions else []
        if symbols is None:
            self.symbols.pop(event_type, None)
        else:
            self.symbols[event_type] = symbols
        after = self._groups(event_type)
        try:
            for group in after:
                if group not in before:
                    await self.fanout.join(group, self)
        except Exception as exc:
            logger.error("subscribe to %s failed: channel layer unavailable: %s", event_type, exc)
            raise ProtocolError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "The event bus is unavailable; subscribe again in a moment.",
                correlation_id=message.correlation_id,
                event_type=event_type,
            ) from None
        await self.fanout.leave_all(self, [group for group in before if group not in after])

    async def _subscribe(
        self, event_type: str, message: ClientMessage, since: dict[str, Any] | None, symbols: frozenset[str] | None
    ) -> None:
        if event_type in self.subscriptions:
            if self.symbols.get(event_type) != symbols:
                await self._regroup(event_type, symbols, message)
        else:
            limit = self.config["MAX_SUBSCRIPTIONS_PER_CONNECTION"]
            if len(self.subscriptions) >= limit:
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
            self.subscriptions.add(event_type)
            metrics.subscribed(event_type)
        position, held = await self._replay(event_type, since)
        if symbols is not None:
            position["symbols"] = sorted(symbols)
        if "seq" in position:
            # Whether this connection gets every number of the type, so that a client may take
            # a skipped seq for a loss (docs/recovery.md).
            position["complete"] = symbols is None and not EVENT_SCHEMAS[event_type].personal
        self._system(
            "subscription.confirmed", {"event_type": event_type, "client_id": self.client_id, **position}, message
        )
        last = position.get("seq", 0)
        for live in held:
            if live.get("seq", last + 1) > last:
                event = (event_type, live.get("emitted_at"))
                if self.outbox.put(live["text"], conflate_key=live.get("conflate"), event=event):
                    self._sent(live["text"], event)

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
            async with replay_turn(self.user.pk):  # one replay of the user's at a time (limits.py)
                return await self._replay_since(event_type, since, history)
        except Exception as exc:
            logger.error("history of %s unavailable: %s", event_type, exc)
            return ({"recovered": False} if since is not None else {}), self.replaying[event_type]
        finally:
            self.replaying.pop(event_type, None)

    async def _replay_since(self, event_type: str, since: dict[str, Any], history: Any) -> tuple[dict[str, Any], list]:
        """Send the events after `since` within the replay budget; return the stream position."""
        replay = await history.since(event_type, since["seq"], since["epoch"], limit=self.replay_budget.allowance())
        if replay.over_limit:
            # Replayed frames count against the connection's and the user's budget; past it
            # the client reloads its state instead, which costs the gateway one answer.
            metrics.replay_refused()
            logger.info("replay of %s refused for client_id=%s: replay budget exhausted", event_type, self.client_id)
            position = {"recovered": False, "seq": replay.seq, "epoch": replay.epoch, "reason": REPLAY_BUDGET_EXHAUSTED}
            return position, self.replaying[event_type]
        if replay.recovered:
            self.replay_budget.spend(len(replay.entries))
            metrics.replayed(len(replay.entries))
            wanted = self._wants_symbol(event_type)
            for n, entry in enumerate(replay.entries, 1):
                if (entry.audience is None or self.user.pk in entry.audience) and wanted(entry.text):
                    self.send_text(entry.text)
                if n % REPLAY_SLICE == 0:
                    # Live events of the type wait in `self.replaying` meanwhile, so the
                    # stream stays in order; other work of the process runs in between.
                    await asyncio.sleep(0)
        return {"recovered": replay.recovered, "seq": replay.seq, "epoch": replay.epoch}, self.replaying[event_type]

    def _wants_symbol(self, event_type: str):
        """Return a test whether a replayed frame is for one of this connection's symbols."""
        narrowed = self.symbols.get(event_type)
        if narrowed is None:
            return lambda text: True
        field = EVENT_SCHEMAS[event_type].symbol_field
        return lambda text: decode(text)["data"].get(field) in narrowed

    async def _unsubscribe(self, event_type: str, message: ClientMessage, symbols: frozenset[str] | None) -> None:
        narrowed = self.symbols.get(event_type)
        if event_type in self.subscriptions and symbols is not None:
            if narrowed is None:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE,
                    f"{event_type!r} is subscribed for all symbols; subscribe with 'data.symbols' to narrow it.",
                    correlation_id=message.correlation_id,
                    event_type=event_type,
                )
            if narrowed - symbols:
                await self._regroup(event_type, narrowed - symbols, message)
                self._system(
                    "subscription.confirmed",
                    {"event_type": event_type, "client_id": self.client_id, "symbols": sorted(narrowed - symbols)},
                    message,
                )
                return
        if event_type in self.subscriptions:
            groups = self._groups(event_type)
            self.subscriptions.discard(event_type)
            metrics.unsubscribed(event_type)
            self.symbols.pop(event_type, None)
            await self.fanout.leave_all(self, groups)
        self._system("subscription.removed", {"event_type": event_type, "client_id": self.client_id}, message)

    # Commands

    def _command(self, message: ClientMessage) -> None:
        name = message.event
        if self.draining or self.ended:
            # The socket is being closed (with 1012 when draining): the client sends it again on
            # its next connection, where it is run once (orders by their client_order_id).
            self._flow("refused", message.correlation_id, name, code="closing")
            return
        if not COMMAND_NAME_RE.fullmatch(name):
            raise ProtocolError(
                ErrorCode.UNKNOWN_COMMAND,
                "A command name is lower-case letters, digits and underscores.",
                correlation_id=message.correlation_id,
            )
        command = registry.get(name)
        if command is None and bridge.forwards(name):
            task = asyncio.get_running_loop().create_task(self._forward(message))
            self.commands_in_flight.add(task)
            task.add_done_callback(self.commands_in_flight.discard)
            self.activity.command(name, "forwarded", correlation_id=message.correlation_id)
            return
        if command is None:
            self._refuse(name, message, ErrorCode.UNKNOWN_COMMAND, f"Unknown command: {name}")
            return
        if not self.may(command.permission):
            self._refuse(name, message, ErrorCode.PERMISSION_DENIED, f"You may not use {name!r}.")
            return
        if len(self.commands_in_flight) >= self.config["MAX_COMMANDS_IN_FLIGHT"]:
            self._refuse(
                name,
                message,
                ErrorCode.TOO_MANY_COMMANDS,
                "Too many commands of this connection are still running; wait for their responses.",
            )
            return
        self._flow("authorized", message.correlation_id, name)
        task = asyncio.get_running_loop().create_task(self._run_command(command, message))
        self.commands_in_flight.add(task)
        task.add_done_callback(self.commands_in_flight.discard)

    def _refuse(self, name: str, message: ClientMessage, code: str, text: str) -> None:
        """Answer a command that is not run with an error, and report it refused."""
        self._respond_error(name, message, code, text)
        self.activity.command(name, "refused", correlation_id=message.correlation_id, error_code=str(code))

    def _respond_error(self, name: str, message: ClientMessage, code: str, text: str, **details: Any) -> None:
        metrics.error_sent(
            str(code), client_id=self.client_id, correlation_id=message.correlation_id, message=text, params=details
        )
        self._flow("refused", message.correlation_id, name, code=str(code))
        self._respond(name, message, "error", {"error": text, "code": str(code), **details})

    def _respond(self, name: str, message: ClientMessage, status: str, result: Any) -> None:
        self.send_frame(
            command_response(
                name,
                status,
                result,
                correlation_id=message.correlation_id,
                target_client=self.client_id,
                source_service=self.config["SERVICE_NAME"],
            )
        )

    async def _run_command(self, command: Command, message: ClientMessage) -> None:
        context = CommandContext(
            user=self.user,
            client_id=self.client_id,
            correlation_id=message.correlation_id,
            remote_addr=self.remote_addr,
            permissions=self.permissions,
            subscriptions=frozenset(self.subscriptions),
        )
        current_correlation_id.set(message.correlation_id)  # events the handler publishes carry it
        started = time.perf_counter()
        try:
            result = await command.handler(context, message.data)
        except DomainError as error:
            self._handled(command.name, message, "error", started, error.code)
            self._respond_error(command.name, message, error.code, error.message, **error.details)
            return
        except (OperationalError, InterfaceError) as exc:
            self._handled(command.name, message, "error", started, ErrorCode.SERVICE_UNAVAILABLE)
            logger.error("command %s: database unavailable: %s", command.name, exc)
            self._respond_error(
                command.name,
                message,
                ErrorCode.SERVICE_UNAVAILABLE,
                "The database is unavailable; nothing was changed. Try again in a moment.",
            )
            return
        except Exception as exc:
            self._handled(command.name, message, "failure", started, ErrorCode.INTERNAL_ERROR)
            error_id = str(uuid.uuid4())
            logger.exception(
                "command %s failed: error_id=%s client_id=%s correlation_id=%s",
                command.name,
                error_id,
                self.client_id,
                message.correlation_id,
            )
            self._respond_error(
                command.name,
                message,
                ErrorCode.INTERNAL_ERROR,
                f"The command failed unexpectedly (error id {error_id}).",
                error_id=error_id,
            )
            await self._report_failure(error_id, command.name, exc)
            return
        self._handled(command.name, message, "success", started)
        self._respond(command.name, message, "success", result)

    async def _forward(self, message: ClientMessage) -> None:
        """Hand a command no handler claims to the services on the bus; they answer through it."""
        try:
            await bridge.forward_user_command(client_id=self.client_id, message=message)
        except DomainError as error:
            self._respond_error(message.event, message, error.code, error.message)

    def _handled(self, name: str, message: ClientMessage, status: str, started: float, error_code: str | None = None) -> None:
        seconds = time.perf_counter() - started
        metrics.command_finished(name, status, seconds)
        duration_ms = round(seconds * 1000, 2)
        self._flow("handled", message.correlation_id, name, status=status, duration_ms=duration_ms)
        self.activity.command(
            name,
            status,
            correlation_id=message.correlation_id,
            error_code=str(error_code) if error_code is not None else None,
            duration_ms=duration_ms,
        )

    async def _report_failure(self, error_id: str, command: str, exc: Exception) -> None:
        try:
            await dispatch.asend_event(
                "system.error",
                {
                    "error_id": error_id,
                    "service_name": self.config["SERVICE_NAME"],
                    "error_type": type(exc).__name__,
                    "error_message": f"command {command} failed",
                    "severity": "error",
                    "user_affected": True,
                    "timestamp": utc_now_iso(),
                },
            )
        except Exception:
            logger.exception("system.error for error_id=%s could not be published", error_id)
