"""The server side of one socket, as the connection's delegates see it: its state, the frames it
sends (all through one bounded outbox, so responses and events keep their order and a slow socket
only ever holds itself up), its close, and the permissions it holds.

`realtime.consumers.EventConsumer` is a `Socket`; `Subscriptions`, `CommandRunner`, the access
checks (`access.py`) and the drain (`drain.py`) talk to a connection only through what this class
defines, so each of them can be tested with a `Socket` that has no server behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from core.times import utc_now

from realtime.connection.access import (
    Verdict,
    check_consumers,
    get_permission_cache,
    session_auth_hash,
    token_session_key,
)
from realtime.connection.activity import UserActivity
from realtime.connection.command_runner import CommandRunner
from realtime.connection.limits import MessageRate, ReplayBudget
from realtime.connection.subscriptions import Subscriptions
from realtime.delivery.fanout import get_fanout
from realtime.delivery.outbox import Outbox
from realtime.runtime import metrics
from realtime.runtime.connections import Connection, connections
from realtime.runtime.logs import log_flow
from realtime.server.transport import socket_writer
from realtime.services import client_identity_claim
from realtime.wire.protocol import CloseCode, ProtocolError, encode, envelope, error_message
from realtime.runtime.threads import on_database_thread

logger = logging.getLogger("realtime.consumers")


class Socket:
    """One connection's state and its way out; the ASGI lifecycle is the consumer's."""

    # Provided by the ASGI consumer (channels' AsyncWebsocketConsumer) or a test's stand-in; only
    # declared here, so that no value of this class hides the consumer's.
    scope: dict[str, Any]
    base_send: Callable[[dict[str, Any]], Awaitable[None]]
    close: Callable[..., Awaitable[None]]
    # Set by the consumer once the handshake is accepted; absent before (`check_consumers` skips those).
    connection: Connection
    remote_addr: str | None  # the peer address the server reports, set at connect

    client_id: str | None = None
    draining = False  # the process drains (realtime/connection/drain.py): no command starts any more
    ended = False

    async def open_state(self, user: Any) -> None:
        """Set up the state of an admitted user's connection (before the handshake is accepted)."""
        self.user, self.config, self.loop = user, settings.REALTIME, asyncio.get_running_loop()
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        self.auth_hash = session_auth_hash(session)
        if self.scope.get("access_token_id") is not None:  # a tool's bearer token (realtime/connection/gate.py)
            self.session_key = token_session_key(self.scope["access_token_id"])
            self.auth_hash = user.get_session_auth_hash()
        self.permissions = await get_permission_cache().load(user)
        self.rate = MessageRate(self, self.config)
        self.replay_budget = ReplayBudget(
            user_id=user.pk,
            per_minute=self.config["REPLAY_BUDGET"],
            per_user_per_minute=self.config["REPLAY_BUDGET_PER_USER"],
        )
        self.client_id = self.scope.get("client_id")  # claimed by the gate (realtime/connection/gate.py)
        if self.client_id is None:  # a scope that did not pass the gate
            requested = self.scope["url_route"]["kwargs"].get("client_id") or None
            self.client_id = await on_database_thread(client_identity_claim)(user=user, requested=requested)
        self.activity = UserActivity(user_id=user.pk, username=user.get_username(), client_id=self.client_id)
        self.subs = Subscriptions(self)
        # The delivery filter reads these for every event: the containers themselves, no hop.
        self.subscriptions, self.symbols, self.replaying = self.subs.event_types, self.subs.symbols, self.subs.replaying
        self.commands = CommandRunner(self)
        self.commands_in_flight = self.commands.in_flight  # awaited by the drain
        limit = self.config["SEND_QUEUE_LIMIT"]
        writer = socket_writer(self.base_send)
        self.outbox = Outbox(self._write, limit=limit, on_overflow=self._fell_behind, on_sent=self.sent, writer=writer)
        self.fanout = get_fanout()

    async def _write(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    def sent(self, text: str, event: tuple[str, float | None] | None = None) -> None:
        """Count one frame handed to the socket (the fan-out counts its own in bulk)."""
        self.connection.touch_out()
        connections.messages_sent += 1
        metrics.frame_sent(text)
        if event is not None:
            metrics.event_delivered(*event)

    def send_text(self, text: str, *, event: tuple[str, float | None] | None = None) -> None:
        if self.outbox.put(text, event=event):
            self.sent(text, event)

    def send_frame(self, frame: dict[str, Any]) -> None:
        self.send_text(encode(frame))

    def send_system(self, event: str, data: dict[str, Any], **options: Any) -> None:
        service, client = self.config["SERVICE_NAME"], self.client_id
        self.send_frame(envelope("system", event, data, source_service=service, target_client=client, **options))

    def flow(
        self, stage: str, correlation_id: str | None, event_type: str | None, level: int = logging.INFO, **details: Any
    ) -> None:
        user = self.connection.username
        log_flow(
            stage,
            correlation_id=correlation_id,
            client_id=self.client_id,
            user=user,
            event_type=event_type,
            level=level,
            **details,
        )

    def send_error(self, error: ProtocolError) -> None:
        code, client, correlation_id = error.code, self.client_id, error.correlation_id
        metrics.error_sent(
            str(code), client_id=client, correlation_id=correlation_id, message=error.message, params=error.details
        )
        self.flow("refused", correlation_id, error.details.get("event_type"), code=str(code))
        service = self.config["SERVICE_NAME"]
        text = error_message(
            code,
            error.message,
            correlation_id=correlation_id,
            source_service=service,
            target_client=client,
            **error.details,
        )
        self.send_frame(text)

    def _fell_behind(self) -> None:
        metrics.socket_fell_behind(self.outbox.dropped)
        self.end(CloseCode.SLOW_CONSUMER, "send queue overflow: the client stopped reading")

    def end(self, code: int, reason: str) -> None:
        """Close this socket from the server side, once, after what is already queued."""
        if self.ended:
            return
        self.ended = True
        logger.info(
            "closing client_id=%s user=%s: %s (code %s)", self.client_id, self.user.get_username(), reason, code
        )
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

    # Access

    async def apply_access(self, verdict: Verdict) -> None:
        """Close the socket if its access is gone; drop subscriptions whose permission is gone.

        The socket takes the account as the verdict read it, so commands act for the user as
        the database has them now (flags, and permissions Django would cache on the object).
        """
        if not verdict.changes(self.permissions, self.user):
            return
        if not verdict.allowed:
            return self.end(verdict.close_code, verdict.reason)
        if verdict.user is not None:
            self.user = verdict.user
        # An allowed verdict without permissions changes nothing, so it has returned above.
        assert verdict.permissions is not None
        self.permissions = verdict.permissions
        get_permission_cache().refresh(self.user.pk, verdict.permissions)
        self.activity.subscription("revoked", await self.subs.revoke_unpermitted())

    async def recheck_access(self) -> None:
        try:
            await check_consumers([self], with_permissions=True)
        except Exception:
            logger.exception("access check of client_id=%s failed; the periodic check will retry", self.client_id)

    def may(self, permission: str | None) -> bool:
        # The set decides alone: a superuser's holds every permission, and a demotion reloads it.
        return permission is None or permission in self.permissions

    def table_entry(self, user: Any, origin: str | None) -> Connection:
        """This open connection's entry in the process's connection table (`runtime.connections`)."""
        assert self.client_id is not None  # open_state took the gate's or claimed one
        return Connection(
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
