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
"""

from __future__ import annotations

from typing import Any

from daphne import ws_protocol

_SETTINGS = frozenset(ws_protocol.WebSocketProtocol.CONFIG_ATTRS)


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


def install() -> None:
    """Have daphne's WebSocket factory build `LeanWebSocketProtocol` connections."""
    if ws_protocol.WebSocketFactory.protocol is ws_protocol.WebSocketProtocol:
        ws_protocol.WebSocketFactory.protocol = LeanWebSocketProtocol
