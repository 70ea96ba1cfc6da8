"""Writing frames to a daphne WebSocket connection without the per-frame ASGI and Twisted path.

Daphne's `send` hands each text frame to autobahn, which checks it, encodes it, frames it and
gives it to Twisted, whose transport buffers it and asks the event loop to tell it when the socket
is writable, writes it then, and withdraws the request again: two `epoll_ctl` calls, a loop
callback and several layers of Python per frame. For one event going to a thousand sockets that is
most of the cost of delivering it. So when the connection is daphne's over plain TCP, this module
reaches through the `send` callable daphne gives the application (a partial of
`Server.handle_reply` bound to the connection's protocol) to the protocol and its transport, and:

- writes ready-made frames (`frames.text_frame`) straight to the socket when Twisted holds nothing for it, and leaves only
  what the kernel does not take (or everything, while Twisted still holds older bytes) to
  Twisted's buffer, so the byte order on the wire is always the order of the writes;
- tells how many bytes Twisted still holds for a client that reads slowly (`backlog`), which ASGI
  has no way to ask, so the outbox (`outbox.Outbox`) can hold frames back, conflate and count them
  instead of letting the server's memory grow;
- stands in Twisted's producer slot of the transport (`watch`), so Twisted itself says when the
  client's buffer passes the outbox's mark and when it has emptied, and the outbox waits for that
  instead of measuring the buffer on a timer.

Under any other server, over TLS, with the test communicator, or where `install()` did not run or
a name it needs is missing (`checks.py`; logged once) there is no such writer, and the outbox
sends through ASGI.
"""

from __future__ import annotations

import functools
from typing import Any

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from .checks import log_fallback, part_usable

installed = False  # set by `realtime.server.install()`: only the adapter's entry point writes frames itself


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


@implementer(IPushProducer)
class SocketWriter:
    """The `frames.WatchedWriter` of one daphne connection, in order with everything else it sends.

    Once watching, it is the transport's streaming producer. Twisted asks a streaming producer to
    pause on every write that leaves more than the transport's `bufferSize` (64 KiB) in its
    buffer, and to resume when the buffer has emptied. `full` turns True on the first of those
    pauses that finds more than `mark` bytes held, so the mark is exact although Twisted's own
    test counts bytes it has already sent; `bufferSize` is left alone because Twisted also reads
    the socket in chunks of that size (docs/server-adapter.md). Nothing can make the buffer grow
    except a write, and every write past 64 KiB asks, so while `full` is False at most `mark`
    bytes wait.

    Whatever producer held the slot before (daphne leaves the HTTP channel that upgraded the
    connection there) gets every call Twisted makes, as it did before: the writer only adds itself.
    """

    __slots__ = ("protocol", "transport", "open_state", "full", "listener", "mark", "previous")

    def __init__(self, protocol: Any, transport: Any):
        self.protocol = protocol
        self.transport = transport
        self.open_state = protocol.STATE_OPEN
        self.full = False
        self.listener: Any = None
        self.mark = 0
        self.previous: Any = None  # the streaming producer that held the transport's slot before

    def watch(self, listener: Any, *, mark: int) -> bool:
        """Register as the transport's streaming producer and tell `listener` (a `frames.FlowListener`)
        when the client's buffer empties after passing `mark` and when the connection ends.

        Returns False, and tells nothing, where the flow part of the adapter is not usable or a
        pull producer holds the slot (its pacing is not the writer's to take over)."""
        if not part_usable("flow"):
            log_fallback(
                "flow", "names it needs are missing, see manage.py check; the outbox measures the buffer every 20 ms"
            )
            return False
        transport = self.transport
        previous = transport.producer
        if previous is not None and not transport.streamingProducer:
            return False
        self.listener, self.mark, self.previous = listener, mark, previous
        if previous is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)  # a transport already gone calls stopProducing at once
        return True

    # IPushProducer, called by Twisted on the reactor's thread, which under daphne is the asyncio
    # loop the consumers run on.

    def pauseProducing(self) -> None:
        if self.previous is not None:
            self.previous.pauseProducing()
        if not self.full and held(self.transport) > self.mark:
            self.full = True

    def resumeProducing(self) -> None:
        if self.previous is not None:
            self.previous.resumeProducing()
        if self.full:
            self.full = False
            self.listener.writable()

    def stopProducing(self) -> None:
        if self.previous is not None:
            self.previous.stopProducing()
        if self.listener is not None:
            self.listener.close()

    def backlog(self) -> int:
        """Bytes Twisted still holds for this client (written by us or by autobahn, e.g. pings)."""
        return held(self.transport)

    def write(self, frame: bytes, *, unless_over: int | None = None) -> bool:
        """Write one complete frame and return True; raise ConnectionError when the socket is
        closing or gone. With `unless_over`, write nothing and return False while Twisted holds
        more than that many bytes for the client."""
        protocol = self.protocol
        transport = self.transport
        if protocol.state != self.open_state or transport.disconnecting or not transport.connected:
            raise ConnectionError("the socket is no longer open")
        waiting = held(transport)
        if unless_over is not None and waiting > unless_over:
            return False
        if waiting or protocol.send_queue:
            transport.write(frame)  # older bytes (Twisted's or autobahn's queue) go first: queue behind them
            return True
        _send(transport, frame)
        return True


def held(transport: Any) -> int:
    """Bytes a plain TCP transport of Twisted still holds, unwritten, for its client."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def write_now(transport: Any, data: bytes) -> None:
    """Write `data` to a plain TCP transport of Twisted: to the socket at once when Twisted holds
    nothing for it, else (and for what the kernel does not take) behind Twisted's buffer.

    Raises the socket's `OSError` (a reset, a broken pipe) other than "would block".
    """
    if held(transport):
        transport.write(data)  # older bytes wait in Twisted: queue behind them
        return
    _send(transport, data)


def _send(transport: Any, data: bytes) -> None:
    """Hand `data` to the socket of a transport that holds nothing; Twisted keeps what it does not take."""
    try:
        sent = transport.socket.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])  # Twisted writes the rest once the socket takes more


def plain_tcp(transport: Any) -> bool:
    """Whether `transport` is Twisted's TCP connection without TLS, which `write_now` may write to."""
    return (
        transport is not None
        and getattr(transport, "socket", None) is not None
        and not getattr(transport, "TLS", False)
        and all(hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen", "disconnecting"))
    )


def socket_writer(send: Any) -> SocketWriter | None:
    """Return a writer for the connection behind daphne's `send`, or None where there is none.

    Only a plain TCP transport of Twisted qualifies: over TLS the bytes must go through the TLS
    layer. Our frames are never compressed, which is valid even where a client negotiated
    per-message compression (RFC 7692, section 6: uncompressed messages leave RSV1 clear).
    """
    if not installed or not part_usable("writer"):
        if _protocol_of(send) is not None:
            log_fallback(
                "writer",
                "names it needs are missing, see manage.py check"
                if installed
                else "realtime.server.install() did not run",
            )
        return None
    protocol = _protocol_of(send)
    transport = getattr(protocol, "transport", None)
    if not plain_tcp(transport) or not hasattr(protocol, "send_queue") or not hasattr(protocol, "STATE_OPEN"):
        return None
    return SocketWriter(protocol, transport)
