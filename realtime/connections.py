"""The live connections of this process and its traffic totals.

The consumer registers itself here on accept and removes itself on disconnect; monitoring
(`/monitoring/`, metrics) and `get_system_status` read from the same table, so every view of
"who is connected" agrees.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import metrics


@dataclass
class Connection:
    """What is known about one open socket."""

    client_id: str
    user_id: int
    username: str
    remote_addr: str | None
    origin: str | None
    connected_at: datetime
    subscriptions: set[str]
    consumer: Any = field(repr=False, compare=False)
    messages_in: int = 0
    messages_out: int = 0
    last_activity: float = field(default_factory=time.time)
    last_received: float = field(default_factory=time.time)

    def touch_in(self) -> None:
        self.messages_in += 1
        self.last_activity = self.last_received = time.time()

    def touch_out(self) -> None:
        self.messages_out += 1
        self.last_activity = time.time()


class ConnectionTable:
    def __init__(self) -> None:
        self._connections: dict[int, Connection] = {}
        self.messages_received = 0
        self.messages_sent = 0
        self.version = 0  # changes with every add and remove, so watchers skip unchanged tables

    def add(self, connection: Connection) -> None:
        key = id(connection.consumer)
        if self._connections.get(key) is None:
            metrics.connection_opened()
        self._connections[key] = connection
        self.version += 1

    def remove(self, consumer: Any) -> None:
        if self._connections.pop(id(consumer), None) is not None:
            metrics.connection_closed()
            self.version += 1

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))

    def __len__(self) -> int:
        return len(self._connections)

    def of_user(self, user_id: int) -> list[Connection]:
        return [c for c in self if c.user_id == user_id]

    def by_client_id(self, client_id: str) -> list[Connection]:
        return [c for c in self if c.client_id == client_id]


connections = ConnectionTable()
