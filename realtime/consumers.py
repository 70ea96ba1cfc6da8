"""The WebSocket consumer: the ASGI lifecycle of one connection speaking the spec's protocol.

It admits the connection, parses each frame (`realtime/wire/protocol.py`) and hands over:
subscriptions to `Subscriptions`, commands to `CommandRunner`, events from the fan-out to the
delivery filter (`subscriptions.deliver`, bound here as a method so the fan-out calls it directly).
All outgoing frames go through one bounded outbox, so responses and events keep their order and
a slow socket only ever holds itself up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from core.times import utc_now_iso
from realtime.announcements import announcements_join
from realtime.bus.admission import get_leases
from realtime.connection import drain, subscriptions
from realtime.connection.access import get_permission_cache, get_revalidator
from realtime.connection.gate import header, refuse_handshake
from realtime.connection.socket import Socket
from realtime.delivery import messages
from realtime.monitoring import monitor_attach
from realtime.runtime import metrics
from realtime.runtime.connections import connections
from realtime.wire.protocol import CloseCode, ErrorCode, ProtocolError, parse_client_message

logger = logging.getLogger(__name__)


class EventConsumer(Socket, AsyncWebsocketConsumer):
    """One client connection speaking the spec's event protocol."""

    # Channel-layer traffic reaches consumers through the process fan-out, not a channel each.
    channel_layer_alias = None

    lease: str | None = None  # this socket's place under the per-user cap (realtime/bus/admission.py)
    released = False
    announced = False  # `user.action` "connected" went out, so "disconnected" follows

    deliver = subscriptions.deliver  # the per-socket delivery filter, called by the fan-out

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.remote_addr = (self.scope.get("client") or (None, None))[0]
        origin = header(self.scope, b"origin")
        if drain.draining():  # the adapter answers 503 before this; other servers refuse here
            refuse_handshake("draining", self.scope, "the process is draining", level=logging.INFO)
            return await self.close()
        if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
            refuse_handshake("not_staff", self.scope, "not an active staff user")
            return await self.close()
        await self.open_state(user)
        assert self.client_id is not None  # open_state takes the gate's or claims one
        await self.accept()
        self.connection = self.table_entry(user, origin)
        self.lease = await get_leases().admit(user_id=user.pk, limit=self.config["MAX_CONNECTIONS_PER_USER"])
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
            await self.fanout.join(messages.client_group(self.client_id), self)
            await self.fanout.join(messages.user_group(user.pk), self)
            await monitor_attach(self.fanout)
        except Exception as exc:
            logger.error("channel layer unavailable at connect of client_id=%s: %s", self.client_id, exc)
        if self.lease is None:  # over the per-user cap
            metrics.handshake_refused("connection_cap")  # logged as the close below
            limit = self.config["MAX_CONNECTIONS_PER_USER"]
            message = f"At most {limit} open connections per user."
            self.send_error(ProtocolError(ErrorCode.TOO_MANY_CONNECTIONS, message, limit=limit))
            return self.end(CloseCode.TOO_MANY_CONNECTIONS, "too many connections")
        welcome = {"client_id": self.client_id, "server_time": utc_now_iso()}
        self.send_system("connection.established", welcome)
        self.announced = True
        self.activity.connection("connected")
        await announcements_join(self)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Hand an ASGI message to its handler as Channels does, minus its database round trip per
        message (every database call of ours goes through `database_sync_to_async`, which does it)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send) -> None:
        """Run the connection: Channels' consumer loop for a consumer without a channel, awaiting the
        client directly instead of through a task of its own (a task less per open socket)."""
        self.scope, self.channel_layer, self.base_send = scope, None, send
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
        groups = self.subs.all_groups()
        groups += [messages.client_group(self.client_id), messages.user_group(self.user.pk), messages.ALL_GROUP]
        self.subs.released()
        # To the end even when the server cancels this socket's application meanwhile (daphne
        # kills one still releasing after its close timeout): a lease never given back counts
        # against the user's cap for good, a group never left keeps this socket in memory.
        await asyncio.shield(asyncio.ensure_future(self._give_back(groups)))

    async def _give_back(self, groups: list[str]) -> None:
        if self.lease is not None:
            await get_leases().release(self.lease)
        await self.fanout.leave_all(self, groups)

    # Incoming

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.connection.touch_in()
        connections.messages_received += 1
        if not self.rate.allows():
            return
        if text_data is None:
            metrics.message_received("binary")
            return self.send_error(
                ProtocolError(ErrorCode.BINARY_NOT_SUPPORTED, "Only text frames with JSON are accepted.")
            )
        limit = self.config["MAX_MESSAGE_BYTES"]
        if len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
            metrics.message_received("invalid")
            return self.send_error(
                ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"Messages are limited to {limit} bytes.", limit=limit)
            )
        try:
            message = parse_client_message(text_data)
        except ProtocolError as error:
            metrics.message_received("invalid")
            return self.send_error(error)
        metrics.message_received(message.type)
        self.flow(
            "received", message.correlation_id, message.event, logging.DEBUG if message.type == "ping" else logging.INFO
        )
        try:
            if message.type == "ping":
                now = utc_now_iso()
                self.send_system("pong", {"timestamp": now}, correlation_id=message.correlation_id, timestamp=now)
            elif message.type == "subscription":
                await self.subs.handle(message)
            else:
                self.commands.start(message)
        except ProtocolError as error:
            self.send_error(error)
