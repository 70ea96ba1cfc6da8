"""Daphne's WebSocket protocol, lighter per open socket.

Autobahn's protocol copies its roughly thirty settings (frame limits, ping interval, masking
rules...) from the factory into every connection's `__dict__` when the connection is made, and
formats the whole list with `pprint` for a debug log line, whether or not debug logging is on.
With ten thousand idle desks that is the largest part of the protocol object, and `pprint` alone
was an eighth of the server CPU of a handshake. `LeanWebSocketProtocol` is daphne's protocol with
an empty copy list: a connection reads each setting from its factory, which holds the very values
the copy would have had (daphne sets them once at start, and neither daphne nor we set them per
connection). Once the socket is open it also lets go of the handshake's raw request and response,
which nothing reads again.

`install()` makes daphne build its connections with it; `aktienanalyse/asgi.py` calls it, so every
daphne process that serves the project uses it.

Daphne's server also visits every connection once a second to reap the ones that are over: with
10,000 open sockets that sweep was more than half of the process's idle CPU. `LeanServer` runs
daphne's own reaping pass over just the connections that have ended (disconnected, or whose
application finished), which it learns of as it happens. Daphne also visits every connection every
two seconds to enforce its timeouts and send pings, though an open socket has nothing due before
its ping interval (35 s in our run targets) or its maximum lifetime has passed. `LeanServer` keeps
the connections in a queue ordered by when each is next due, and its pass (still every two
seconds, still daphne's own `check_timeouts`) visits only those.

`install()` also makes the cyclic garbage collector run less often. Every socket leaves a few
thousand long-lived objects, and with Python's default thresholds a full collection, which visits
all of them, ran every few seconds while desks connected: 15 full passes while 10,000 connected,
the last ones taking 0.6 s each and landing in what should have been idle time. Reference counting
frees almost everything a message or handshake allocates anyway; the collector is only needed for
reference cycles, such as a closed connection's objects, which can wait a little longer.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import time
from typing import Any

from daphne import cli, server, ws_protocol

_SETTINGS = frozenset(ws_protocol.WebSocketProtocol.CONFIG_ATTRS)
# Allocations before a young collection (default 700), and young and middle collections before
# the next older one. Measured on 10,000 connecting sockets: 1 full collection instead of 15, and
# the handshakes 20% faster.
GC_THRESHOLDS = (50_000, 20, 10)


class LeanWebSocketProtocol(ws_protocol.WebSocketProtocol):
    CONFIG_ATTRS: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: for a setting, that is always (none is copied).
        if name in _SETTINGS:
            return getattr(self.factory, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def onOpen(self) -> None:
        super().onOpen()
        self.http_request_data = self.http_response_data = None


class LeanServer(server.Server):
    """Daphne's server, reaping only connections that have ended instead of sweeping all of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: set[Any] = set()  # protocols disconnected or with a finished application
        self.due: list[tuple[float, int, Any]] = []  # (when, arrival, protocol): when to check it next
        self._arrivals = itertools.count()  # orders equal times, so protocols are never compared

    def protocol_connected(self, protocol: Any) -> None:
        super().protocol_connected(protocol)
        self._check_at(time.time(), protocol)  # on the next pass, as daphne would

    def _check_at(self, when: float, protocol: Any) -> None:
        heapq.heappush(self.due, (when, next(self._arrivals), protocol))

    def next_check(self, protocol: Any, now: float) -> float:
        """When `protocol` can next have a timeout or a ping due: now for anything but an open socket.

        An open WebSocket is due when it has been silent for the ping interval (a client message
        or a ping moves `last_ping`) or has lived for the maximum lifetime; daphne's checks compare
        exactly these. Handshakes, closing sockets and HTTP requests are checked on every pass.
        """
        if not isinstance(protocol, ws_protocol.WebSocketProtocol) or protocol.state != protocol.STATE_OPEN:
            return now
        when = protocol.last_ping + self.ping_interval
        if self.websocket_timeout >= 0:
            when = min(when, protocol.socket_opened + self.websocket_timeout)
        return when

    def timeout_checker(self) -> None:
        """Run daphne's timeout and ping check on the connections that are due, then schedule them again."""
        now = time.time()
        due = []
        while self.due and self.due[0][0] <= now:
            due.append(heapq.heappop(self.due)[2])
        for protocol in due:
            if protocol in self.connections:  # else reaped: forget it
                protocol.check_timeouts()
                self._check_at(self.next_check(protocol, now), protocol)
        server.reactor.callLater(2, self.timeout_checker)

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.ended.add(protocol)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        queue = super().create_application(protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda _instance: self.ended.add(protocol))
        return queue

    def application_checker(self) -> None:
        """Run daphne's pass over the ended connections only; keep watching those it still waits for."""
        everyone = self.connections
        watched = {protocol: everyone[protocol] for protocol in self.ended if protocol in everyone}
        self.ended = set(watched)
        self.connections = watched  # daphne's pass deletes the entries it reaps from this table
        try:
            super().application_checker()  # also schedules the next pass
        finally:
            self.connections = everyone
        for protocol in list(self.ended):
            details = watched.get(protocol)
            if details is None:  # reaped
                del everyone[protocol]
                self.ended.discard(protocol)
            elif "disconnected" not in details:  # its application finished; its disconnect brings it back
                self.ended.discard(protocol)


def install() -> None:
    """Have daphne run `LeanServer` with `LeanWebSocketProtocol` connections; collect garbage less often."""
    if ws_protocol.WebSocketFactory.protocol is ws_protocol.WebSocketProtocol:
        ws_protocol.WebSocketFactory.protocol = LeanWebSocketProtocol
    if cli.CommandLineInterface.server_class is server.Server:
        cli.CommandLineInterface.server_class = LeanServer
    gc.set_threshold(*GC_THRESHOLDS)
