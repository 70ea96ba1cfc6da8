"""How far a socket is behind: the bytes its server still holds for a client that reads slowly.

Daphne's `send` never waits: it hands each frame to Twisted, whose transport keeps whatever the
kernel does not take, without limit. So a client that stops reading would let the server's memory
grow while the outbox (`fanout.Outbox`) always looks empty. ASGI has no way to ask for this, so
this module reaches through the `send` callable daphne gives the application (a partial of
`Server.handle_reply` bound to the connection's protocol) to the Twisted transport, and reads its
write buffer. Under any other server (or the test communicator) there is no probe, and the
outbox behaves as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def _transport_of(send: Any) -> Any | None:
    for _ in range(8):  # unwrap middleware (channels' session wrapper keeps the next send as real_send)
        if isinstance(send, functools.partial):
            protocol = send.args[0] if send.args else None
            return getattr(protocol, "transport", None)
        owner = getattr(send, "__self__", None)
        inner = getattr(owner, "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


def backlog_probe(send: Any) -> Callable[[], int] | None:
    """Return a function giving the bytes waiting in the socket's server-side buffer, if knowable."""
    transport = _transport_of(send)
    if transport is None or not hasattr(transport, "_tempDataLen") or not hasattr(transport, "dataBuffer"):
        return None

    def backlog() -> int:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return backlog
