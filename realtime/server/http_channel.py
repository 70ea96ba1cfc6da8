"""The HTTP side of the adapter: a connection that must complete its request headers in time.

Twisted's own timeout restarts with every byte received, so a client trickling a request line
would hold a socket indefinitely; `HeaderDeadlineChannel` closes it once the headers are late
(`REALTIME_HANDSHAKE_TIMEOUT_SECONDS`, docs/server-adapter.md). `LeanServer` builds it.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne import server
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

logger = logging.getLogger("realtime.server")


class HeaderDeadlineChannel(http.HTTPChannel):
    """Twisted's HTTP connection, closed when a request's headers are not complete in time."""

    headers_timeout: float = 10.0
    headers_due: Any = None  # the pending close, while headers are awaited

    def connectionMade(self) -> None:
        super().connectionMade()
        self._await_headers()

    def _await_headers(self) -> None:
        if self.headers_timeout > 0 and self.headers_due is None:
            self.headers_due = server.reactor.callLater(self.headers_timeout, self._headers_late)

    def _headers_received(self) -> None:
        if self.headers_due is not None:
            if self.headers_due.active():
                self.headers_due.cancel()
            self.headers_due = None

    def allHeadersReceived(self) -> None:
        self._headers_received()  # a WebSocket upgrade hands the socket on from here: stop watching it
        super().allHeadersReceived()

    def requestDone(self, request: Any) -> None:
        super().requestDone(request)
        if self.persistent and self.transport is not None and not self.transport.disconnecting:
            self._await_headers()  # the next request on the kept-alive connection

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._headers_received()
        super().connectionLost(reason)

    def _headers_late(self) -> None:
        self.headers_due = None
        transport = self.transport
        if transport is None or transport.disconnecting or getattr(transport, "protocol", self) is not self:
            return  # closing already, or no longer this channel's socket
        # Twisted declares `getPeer` on its zope interface, without `self`: mypy (no zope plugin)
        # reads it as taking none, though the transport's method is bound.
        peer = transport.getPeer()  # type: ignore[misc]
        logger.info("closed %s: request headers not complete within %ss", peer, self.headers_timeout)
        transport.abortConnection()
