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


def _protocol_of(send: Any) -> Any | None:
    for _ in range(8):  # unwrap middleware (channels' session wrapper keeps the next send as real_send)
        if isinstance(send, functools.partial):
            return send.args[0] if send.args else None
        owner = getattr(send, "__self__", None)
        inner = getattr(owner, "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


def backlog_probe(send: Any) -> Callable[[], int] | None:
    """Return a function giving the bytes waiting in the socket's server-side buffer, if knowable."""
    transport = getattr(_protocol_of(send), "transport", None)
    if transport is None or not hasattr(transport, "_tempDataLen") or not hasattr(transport, "dataBuffer"):
        return None

    def backlog() -> int:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return backlog


def direct_sender(send: Any) -> Callable[[str], None] | None:
    """Return a function writing a text frame straight to daphne's protocol, if `send` is daphne's.

    The ASGI path (session wrapper, `Server.handle_reply`, each a coroutine, awaited from a task
    per burst) costs more per frame than framing and writing it; daphne itself does nothing but
    call `protocol.handle_reply` once it finds the connection open, which this does directly.
    """
    protocol = _protocol_of(send)
    if protocol is None or not hasattr(protocol, "serverSend") or not hasattr(protocol, "STATE_OPEN"):
        return None

    def write(text: str) -> None:
        if protocol.state != protocol.STATE_OPEN:
            raise ConnectionError("the socket is no longer open")
        protocol.sendMessage(text.encode("utf-8"), False)

    return write
