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
    def system(cls) -> Actor:
        """Return the actor for work nobody asked for directly (price ticks filling orders)."""
        return cls(user=None, channel="system")
