"""The socket writer against Twisted's own write buffer and sockets that take all, part or nothing.

The transport here is Twisted's `FileDescriptor` (the base of its TCP connections), so its buffer
(`dataBuffer`, `offset`, `_tempDataLen`) and its flushing (`doWrite`) are Twisted's own; only the
socket under it is a stand-in whose behaviour each test sets. `wire` is what reached the socket,
in order: the byte order a client reads.
"""

from __future__ import annotations

import pytest
from twisted.internet import abstract

from realtime.wire.frames import text_frame
from realtime.server.transport import SocketWriter, held, write_now


class Socket:
    """A non-blocking socket that takes everything, nothing (EAGAIN), `budget` bytes, or is closed."""

    def __init__(self) -> None:
        self.wire = b""
        self.budget: int | None = None  # None: take everything
        self.error: OSError | None = None

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        taken = len(data) if self.budget is None else min(self.budget, len(data))
        if self.budget is not None:
            self.budget -= taken
        if not taken and data:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        self.wire += bytes(data[:taken])
        return taken


class Reactor:
    def addWriter(self, _descriptor) -> None:
        pass

    def removeWriter(self, _descriptor) -> None:
        pass


class Transport(abstract.FileDescriptor):
    """Twisted's buffered writer over `Socket`, connected."""

    def __init__(self) -> None:
        # `Reactor` has the IReactorFDSet methods FileDescriptor calls; mypy, without the zope
        # plugin, cannot see it provide that interface.
        super().__init__(reactor=Reactor())  # type: ignore[arg-type]
        self.socket = Socket()
        self.connected = 1

    def writeSomeData(self, data: bytes) -> int | BaseException:
        try:
            return self.socket.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            return exc

    def flush(self) -> None:
        """Let Twisted write what it holds, as the reactor would once the socket is writable."""
        self.socket.budget = None
        while held(self):
            assert self.doWrite() is None


class Protocol:
    STATE_OPEN = 3
    state = STATE_OPEN

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.send_queue: list[bytes] = []  # autobahn's frames waiting to be chopped or synced


@pytest.fixture
def transport() -> Transport:
    return Transport()


@pytest.fixture
def writer(transport) -> SocketWriter:
    return SocketWriter(Protocol(transport), transport)


def test_a_frame_goes_straight_to_the_socket_when_twisted_holds_nothing(transport, writer):
    assert writer.write(text_frame(b"one")) is True
    assert transport.socket.wire == text_frame(b"one") and held(transport) == 0 == writer.backlog()


def test_a_frame_queues_behind_bytes_twisted_still_holds(transport, writer):
    transport.socket.budget = 0
    transport.write(b"older bytes of a ping")  # written by autobahn or by us, not yet taken by the socket
    transport.socket.budget = None  # the socket would take the next write at once
    assert writer.backlog() == len(b"older bytes of a ping")

    writer.write(text_frame(b"newer"))
    transport.flush()

    assert transport.socket.wire == b"older bytes of a ping" + text_frame(b"newer")


def test_a_socket_that_refuses_leaves_the_whole_frame_to_twisted_in_order(transport, writer):
    transport.socket.budget = 0  # EAGAIN
    writer.write(text_frame(b"first"))
    assert transport.socket.wire == b"" and writer.backlog() == len(text_frame(b"first"))
    writer.write(text_frame(b"second"))  # behind the first, though the socket is never asked
    transport.flush()
    assert transport.socket.wire == text_frame(b"first") + text_frame(b"second")


def test_a_socket_that_takes_part_of_a_frame_gets_the_rest_before_the_next_frame(transport, writer):
    big = text_frame(b"x" * 1000)
    transport.socket.budget = 300
    writer.write(big)
    assert transport.socket.wire == big[:300] and writer.backlog() == len(big) - 300
    transport.socket.budget = None
    writer.write(text_frame(b"after"))
    transport.flush()
    assert transport.socket.wire == big + text_frame(b"after")


def test_a_frame_waits_behind_autobahns_own_queue(transport, writer):
    writer.protocol.send_queue.append(b"chopped frame")
    writer.write(text_frame(b"mine"))
    assert transport.socket.wire == b"" and held(transport) == len(text_frame(b"mine"))  # left to Twisted


def test_over_the_limit_nothing_is_written_and_the_caller_keeps_the_frame(transport, writer):
    transport.socket.budget = 0
    transport.write(b"y" * 100)
    transport.socket.budget = None
    assert writer.write(text_frame(b"tick"), unless_over=99) is False
    assert writer.write(text_frame(b"tick"), unless_over=100) is True
    transport.flush()
    assert transport.socket.wire == b"y" * 100 + text_frame(b"tick")


@pytest.mark.parametrize("state", ["disconnecting", "disconnected", "closing"])
def test_a_socket_that_is_closing_or_gone_refuses_the_frame(transport, writer, state):
    if state == "disconnecting":
        transport.disconnecting = True
    elif state == "disconnected":
        transport.connected = 0
    else:
        writer.protocol.state = 4  # autobahn's STATE_CLOSING
    with pytest.raises(ConnectionError):
        writer.write(text_frame(b"late"))
    assert transport.socket.wire == b"" and held(transport) == 0


def test_a_reset_socket_raises_and_writes_nothing(transport, writer):
    transport.socket.error = ConnectionResetError(104, "Connection reset by peer")
    with pytest.raises(OSError):
        writer.write(text_frame(b"lost"))
    assert held(transport) == 0


def test_autobahns_writes_keep_the_same_order(transport):
    transport.socket.budget = 5
    write_now(transport, b"0123456789")  # a close frame, say: part to the socket, the rest to Twisted
    transport.socket.budget = None  # the socket would take the next write at once
    write_now(transport, b"abc")
    transport.flush()
    assert transport.socket.wire == b"0123456789abc"
