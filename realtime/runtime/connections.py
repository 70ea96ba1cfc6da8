"""The live connections of this process and its traffic totals.

The consumer registers itself here on accept and removes itself on disconnect; monitoring
(`/monitoring/`, metrics) and `get_system_status` read from the same table, so every view of
"who is connected" agrees.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, ValuesView
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from realtime.runtime import metrics


@dataclass(slots=True)
class Connection:
    """What is known about one open socket (slots: one per socket, a few hundred bytes less each)."""

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
    # (user id, session key, session auth hash) as admitted: what access is judged by
    session: tuple[int, str | None, str | None] = (0, None, None)
    # The socket's outbox, which counts the fan-out's events itself (`frames_out`, `active_at`)
    outbox: Any = field(default=None, repr=False, compare=False)

    def touch_in(self) -> None:
        self.messages_in += 1
        self.last_activity = self.last_received = time.time()

    def touch_out(self) -> None:
        self.messages_out += 1
        self.last_activity = time.time()

    # The fan-out writes an event to a thousand sockets at once and counts each socket's share
    # on its outbox, which that write touches anyway, not here: one object less per socket and
    # event, which measurably slowed delivery. Readers add the two.

    @property
    def frames_out(self) -> int:
        """Frames sent to the client: those counted here and the fan-out's events."""
        return self.messages_out + (self.outbox.fanned_out if self.outbox is not None else 0)

    @property
    def active_at(self) -> float:
        """When a frame last came or went."""
        return max(self.last_activity, self.outbox.fanned_out_at if self.outbox is not None else 0.0)


class ClientIds(set[str]):
    """Client ids whose connections changed (a set, but one that can be referred to weakly)."""


class ConnectionTable:
    def __init__(self) -> None:
        self._connections: dict[int, Connection] = {}
        self._sessions: dict[tuple[int, str | None, str | None], dict[int, Connection]] = {}
        # client id -> its connections, oldest first
        self._clients: dict[str, dict[int, Connection]] = {}
        # Sets handed out by `watch`: each gets the client id of every add and remove. Held weakly,
        # so a watcher that ended without `unwatch` (its loop closed under it) stops collecting.
        self._watchers: weakref.WeakValueDictionary[int, ClientIds] = weakref.WeakValueDictionary()
        self.messages_received = 0
        self.messages_sent = 0

    def add(self, connection: Connection) -> None:
        key = id(connection.consumer)
        previous = self._connections.get(key)
        if previous is None:
            metrics.connection_opened()
        else:
            self._forget(key, previous)
            self._changed(previous.client_id)
        self._connections[key] = connection
        self._sessions.setdefault(connection.session, {})[key] = connection
        self._clients.setdefault(connection.client_id, {})[key] = connection
        self._changed(connection.client_id)

    def remove(self, consumer: Any) -> None:
        key = id(consumer)
        connection = self._connections.pop(key, None)
        if connection is not None:
            self._forget(key, connection)
            metrics.connection_closed()
            self._changed(connection.client_id)

    def _changed(self, client_id: str) -> None:
        for watcher in self._watchers.values():
            watcher.add(client_id)

    def _forget(self, key: int, connection: Connection) -> None:
        _discard(self._sessions, connection.session, key)
        _discard(self._clients, connection.client_id, key)

    def watch(self) -> ClientIds:
        """Return a set that collects the client id of every connection added or removed from now
        on (the caller empties it as it handles them), for as long as the caller holds it or
        until it is passed to `unwatch`."""
        changed = ClientIds()
        self._watchers[id(changed)] = changed
        return changed

    def unwatch(self, changed: ClientIds) -> None:
        self._watchers.pop(id(changed), None)

    def sessions(self) -> dict[tuple[int, str | None, str | None], ValuesView[Connection]]:
        """The open connections by session, without visiting each one.

        Each session's connections are a live view: copy it before iterating across an `await`.
        """
        return {session: group.values() for session, group in self._sessions.items()}

    def client_ids(self) -> list[str]:
        return list(self._clients)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))

    def __len__(self) -> int:
        return len(self._connections)

    def of_user(self, user_id: int) -> list[Connection]:
        return [c for c in self if c.user_id == user_id]

    def by_client_id(self, client_id: str) -> list[Connection]:
        """The connections that use `client_id`, oldest first."""
        return list(self._clients.get(client_id, {}).values())


def _discard(index: dict[Any, dict[int, Connection]], value: Any, key: int) -> None:
    group = index.get(value)
    if group is not None:
        group.pop(key, None)
        if not group:
            del index[value]


connections = ConnectionTable()
