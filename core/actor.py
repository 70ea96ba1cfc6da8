"""Who asks a service to act, and through which door, so writes can be audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The user behind a request, with the client, correlation id and address it came from."""

    user: Any
    client_id: str = ""
    correlation_id: str = ""
    remote_addr: str = ""
    channel: str = "websocket"  # websocket, admin, rest, system

    @classmethod
    def from_command(cls, ctx: Any) -> Actor:
        """Return the actor behind a WebSocket command (a `realtime.connection.commands.CommandContext`)."""
        return cls(
            user=ctx.user,
            client_id=ctx.client_id or "",
            correlation_id=ctx.correlation_id or "",
            remote_addr=ctx.remote_addr or "",
            channel="websocket",
        )

    @classmethod
    def system(cls) -> Actor:
        """Return the actor for work nobody asked for directly (price ticks filling orders)."""
        return cls(user=None, channel="system")
