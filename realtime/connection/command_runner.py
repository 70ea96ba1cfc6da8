"""One connection's commands: check, run, answer, forward to the bus, report failures.

A `user` message names a command. One of the registry's (`realtime/connection/commands.py`) runs
as a task of its own, so a slow command holds up neither the socket's other messages nor its
events; one no handler claims goes to the services on the bus when a service declared it
(`realtime/bus/forwarding.py`). Every command gets exactly one answer, `success` or `error`, except
when the socket is closing: then the client sends it again on its next connection.

What a connection offers it (`realtime.consumers.EventConsumer` does): `client_id`, `user`,
`remote_addr`, `permissions`, `subscriptions`, `config`, `activity`, `draining`, `ended`,
`may(permission)`, `send_frame`, `flow`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from django.db import InterfaceError, OperationalError

from core.exceptions import DomainError
from core.times import utc_now_iso
from realtime.bus import forwarding
from realtime.connection.commands import Command, CommandContext, registry
from realtime.delivery import dispatch
from realtime.runtime import metrics
from realtime.runtime.logs import current_correlation_id
from realtime.runtime.threads import command_lane_set
from realtime.wire.protocol import COMMAND_NAME_RE, ClientMessage, ErrorCode, ProtocolError, command_response

logger = logging.getLogger(__name__)


class CommandRunner:
    """Runs the commands of one connection and answers each."""

    def __init__(self, connection: Any):
        self.connection = connection
        self.in_flight: set[asyncio.Task] = set()  # awaited by the drain (realtime/connection/drain.py)

    def start(self, message: ClientMessage) -> None:
        """Start the command `message` names, or answer why it is not run."""
        connection, name = self.connection, message.event
        if connection.draining or connection.ended:
            # The socket is being closed (with 1012 when draining): the client sends it again on
            # its next connection, where it is run once (orders by their client_order_id).
            connection.flow("refused", message.correlation_id, name, code="closing")
            return
        if not COMMAND_NAME_RE.fullmatch(name):
            raise ProtocolError(
                ErrorCode.UNKNOWN_COMMAND,
                "A command name is lower-case letters, digits and underscores.",
                correlation_id=message.correlation_id,
            )
        command = registry.get(name)
        if command is None and forwarding.forwards(name):
            self._track(self.forward(message))
            connection.activity.command(name, "forwarded", correlation_id=message.correlation_id)
            return
        if command is None:
            self.refuse(name, message, ErrorCode.UNKNOWN_COMMAND, f"Unknown command: {name}")
            return
        if not connection.may(command.permission):
            self.refuse(name, message, ErrorCode.PERMISSION_DENIED, f"You may not use {name!r}.")
            return
        if len(self.in_flight) >= connection.config["MAX_COMMANDS_IN_FLIGHT"]:
            self.refuse(
                name,
                message,
                ErrorCode.TOO_MANY_COMMANDS,
                "Too many commands of this connection are still running; wait for their responses.",
            )
            return
        connection.flow("authorized", message.correlation_id, name)
        self._track(self.run(command, message))

    def _track(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def refuse(self, name: str, message: ClientMessage, code: str, text: str) -> None:
        """Answer a command that is not run with an error, and report it refused."""
        self.respond_error(name, message, code, text)
        self.connection.activity.command(name, "refused", correlation_id=message.correlation_id, error_code=str(code))

    def respond_error(self, name: str, message: ClientMessage, code: str, text: str, **details: Any) -> None:
        connection = self.connection
        metrics.error_sent(
            str(code),
            client_id=connection.client_id,
            correlation_id=message.correlation_id,
            message=text,
            params=details,
        )
        connection.flow("refused", message.correlation_id, name, code=str(code))
        self.respond(name, message, "error", {"error": text, "code": str(code), **details})

    def respond(self, name: str, message: ClientMessage, status: str, result: Any) -> None:
        connection = self.connection
        connection.send_frame(
            command_response(
                name,
                status,
                result,
                correlation_id=message.correlation_id,
                target_client=connection.client_id,
                source_service=connection.config["SERVICE_NAME"],
            )
        )

    async def run(self, command: Command, message: ClientMessage) -> None:
        """Run a registered command's handler and answer with its result or its error."""
        connection = self.connection
        context = CommandContext(
            user=connection.user,
            client_id=connection.client_id,
            correlation_id=message.correlation_id,
            remote_addr=connection.remote_addr,
            permissions=connection.permissions,
            subscriptions=frozenset(connection.subscriptions),
        )
        current_correlation_id.set(message.correlation_id)  # events the handler publishes carry it
        command_lane_set(connection.client_id)  # this socket's commands run in the order they came
        started = time.perf_counter()
        try:
            result = await command.handler(context, message.data)
        except DomainError as error:
            self._handled(command.name, message, "error", started, error.code)
            self.respond_error(command.name, message, error.code, error.message, **error.details)
            return
        except (OperationalError, InterfaceError) as exc:
            self._handled(command.name, message, "error", started, ErrorCode.SERVICE_UNAVAILABLE)
            logger.error("command %s: database unavailable: %s", command.name, exc)
            self.respond_error(
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
                connection.client_id,
                message.correlation_id,
            )
            self.respond_error(
                command.name,
                message,
                ErrorCode.INTERNAL_ERROR,
                f"The command failed unexpectedly (error id {error_id}).",
                error_id=error_id,
            )
            await self.report_failure(error_id, command.name, exc)
            return
        self._handled(command.name, message, "success", started)
        self.respond(command.name, message, "success", result)

    async def forward(self, message: ClientMessage) -> None:
        """Hand a command no handler claims to the services on the bus; they answer through it."""
        try:
            await forwarding.forward_user_command(client_id=self.connection.client_id, message=message)
        except DomainError as error:
            self.respond_error(message.event, message, error.code, error.message)

    def _handled(
        self, name: str, message: ClientMessage, status: str, started: float, error_code: str | None = None
    ) -> None:
        seconds = time.perf_counter() - started
        metrics.command_finished(name, status, seconds)
        duration_ms = round(seconds * 1000, 2)
        self.connection.flow("handled", message.correlation_id, name, status=status, duration_ms=duration_ms)
        self.connection.activity.command(
            name,
            status,
            correlation_id=message.correlation_id,
            error_code=str(error_code) if error_code is not None else None,
            duration_ms=duration_ms,
        )

    async def report_failure(self, error_id: str, command: str, exc: Exception) -> None:
        """Publish a `system.error` for a command that failed unexpectedly (its `error_id` is in the answer)."""
        try:
            await dispatch.asend_event(
                "system.error",
                {
                    "error_id": error_id,
                    "service_name": self.connection.config["SERVICE_NAME"],
                    "error_type": type(exc).__name__,
                    "error_message": f"command {command} failed",
                    "severity": "error",
                    "user_affected": True,
                    "timestamp": utc_now_iso(),
                },
            )
        except Exception:
            logger.exception("system.error for error_id=%s could not be published", error_id)
