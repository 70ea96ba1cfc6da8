"""WebSocket text frames made once, and the writer an outbox hands them to.

A server's frames are unmasked, so one event framed once serves every socket it goes to. Where
the server lets the gateway write frames itself (daphne with the adapter of `realtime/server/`),
the outbox (`outbox.Outbox`) talks to a `FrameWriter`; elsewhere it sends through ASGI. A writer
whose server says when a client's buffer fills and empties (`WatchedWriter`) lets the outbox wait
for that instead of asking `backlog()` again and again.
"""

from __future__ import annotations

import struct
from typing import Protocol

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_FIN_TEXT = 0x81  # FIN bit and opcode 1 (text), RFC 6455 section 5.2


def text_frame(payload: bytes) -> bytes:
    """Return `payload` (UTF-8) as one complete, unmasked WebSocket text frame."""
    length = len(payload)
    if length < 126:
        return _SHORT.pack(_FIN_TEXT, length) + payload
    if length < 1 << 16:
        return _MEDIUM.pack(_FIN_TEXT, 126, length) + payload
    return _LONG.pack(_FIN_TEXT, 127, length) + payload


class FrameWriter(Protocol):
    """Writes complete frames to one client's socket, in order with everything else sent to it."""

    def write(self, frame: bytes, *, unless_over: int | None = None) -> bool:
        """Write `frame` and return True; raise ConnectionError when the socket is closing or gone.

        With `unless_over`, write nothing and return False while more than that many bytes
        already wait in the server for this client.
        """
        ...

    def backlog(self) -> int:
        """Return the bytes the server still holds, unwritten, for this client."""
        ...


class FlowListener(Protocol):
    """What a `WatchedWriter` tells: the client's buffer emptied, or the connection ended."""

    def writable(self) -> None:
        """The server holds nothing more for the client: frames may be written again."""
        ...

    def close(self) -> None:
        """The connection is gone: nothing more will be written."""
        ...


class WatchedWriter(FrameWriter, Protocol):
    """A `FrameWriter` that is told by its server when the client's buffer is full.

    `full` turns True during a `write` after which the server holds more than the mark given to
    `watch`, and stays True until the server has handed everything it held to the client, when
    the listener's `writable()` is called. While `full` is False the server holds at most the
    mark, so a frame may be written without asking `backlog()`.
    """

    full: bool

    def watch(self, listener: FlowListener, *, mark: int) -> bool:
        """Start telling `listener`; return False where the server cannot (then nothing is told)."""
        ...
