"""The registry of user commands (`type: "user"`) that apps answer over the WebSocket.

An app declares its handlers in its own `commands.py` with `@command("place_order",
permission="trading.add_order")`; `realtime.apps` imports those modules at start-up. A handler
is an async function `(ctx, data) -> result` that returns the `result` of a success response
or raises a `DomainError` (or `CommandError`), which becomes an error response with its code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from core.exceptions import DomainError
from core.permissions import staff_may
from realtime.wire.protocol import ErrorCode
from core.times import utc_now_iso


class CommandError(DomainError):
    """A command the gateway itself refuses (unknown, not permitted, malformed)."""


@dataclass
class CommandContext:
    """What a handler knows about the request: who sent it, from where, under which ids."""

    user: AbstractBaseUser
    client_id: str
    correlation_id: str | None
    remote_addr: str | None
    permissions: frozenset[str]
    subscriptions: frozenset[str] = field(default_factory=frozenset)

    def has_perm(self, permission: str) -> bool:
        return staff_may(self.user, permission, held=self.permissions)

    def require(self, permission: str) -> None:
        if not self.has_perm(permission):
            raise CommandError(ErrorCode.PERMISSION_DENIED, f"You lack the permission {permission!r}.")


Handler = Callable[[CommandContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    permission: str | None
    description: str


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def register(self, name: str, *, permission: str | None = None) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            if name in self._commands and self._commands[name].handler is not handler:
                raise ValueError(f"command {name!r} is registered twice")
            self._commands[name] = Command(
                name=name,
                handler=handler,
                permission=permission,
                description=(handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else "",
            )
            return handler

        return decorator

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def names(self) -> list[str]:
        return sorted(self._commands)


registry = CommandRegistry()
command = registry.register


@command("get_connection_info")
async def get_connection_info(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Return who this connection is, what it is subscribed to, and the commands it may send."""
    return {
        "client_id": ctx.client_id,
        "user": ctx.user.get_username(),
        "subscriptions": sorted(ctx.subscriptions),
        "commands": [
            name
            for name in registry.names()
            if (cmd := registry.get(name)) and (not cmd.permission or ctx.has_perm(cmd.permission))
        ],
        "server_time": utc_now_iso(),
    }
