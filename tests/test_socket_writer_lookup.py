"""Which connections get a socket writer: reaching daphne's protocol through `send`, plain TCP only."""

from __future__ import annotations

import functools
import logging

import pytest

from realtime.wire.frames import text_frame
from realtime.server import transport as transport_module
from realtime.server.checks import log_fallback
from realtime.server.transport import SocketWriter, _protocol_of, held, plain_tcp, socket_writer, write_now

from .test_socket_writer import Protocol, Transport


def handle_reply(protocol, message):
    """Stands in for daphne's `Server.handle_reply`, which `send` is a partial of."""


class Wrapper:
    """A middleware's send wrapper: channels keeps the next send as `real_send`."""

    def __init__(self, real_send) -> None:
        self.real_send = real_send

    async def send(self, message) -> None:
        await self.real_send(message)


def wrapped(send, times: int):
    for _ in range(times):
        send = Wrapper(send).send
    return send


@pytest.mark.parametrize("times", [0, 1, 7])
def test_the_protocol_is_found_through_up_to_seven_middleware_wrappers(times):
    protocol = object()

    assert _protocol_of(wrapped(functools.partial(handle_reply, protocol), times)) is protocol


def test_no_protocol_is_found_too_deep_without_a_partial_or_without_its_argument():
    assert _protocol_of(wrapped(functools.partial(handle_reply, object()), 8)) is None
    assert _protocol_of(functools.partial(handle_reply)) is None
    assert _protocol_of(lambda message: None) is None
    assert _protocol_of(Wrapper(None).send) is None


def test_only_twisteds_plain_tcp_transport_qualifies():
    transport = Transport()
    assert plain_tcp(transport) is True

    assert plain_tcp(None) is False
    assert plain_tcp(object()) is False
    transport.TLS = True
    assert plain_tcp(transport) is False
    transport = Transport()
    transport.socket = None
    assert plain_tcp(transport) is False
    for name in ("dataBuffer", "offset", "_tempDataLen", "disconnecting"):

        class Missing:
            socket = object()

        for other in {"dataBuffer", "offset", "_tempDataLen", "disconnecting"} - {name}:
            setattr(Missing, other, 0)
        assert plain_tcp(Missing()) is False


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(transport_module, "installed", True)


def connection():
    transport = Transport()
    protocol = Protocol(transport)
    return protocol, functools.partial(handle_reply, protocol)


def test_a_writer_is_made_for_daphnes_plain_tcp_connection(installed):
    protocol, send = connection()

    writer = socket_writer(wrapped(send, 2))

    assert isinstance(writer, SocketWriter)
    assert (writer.protocol, writer.transport, writer.open_state) == (protocol, protocol.transport, 3)


def test_without_the_adapter_installed_there_is_no_writer_and_that_is_logged(monkeypatch, caplog):
    monkeypatch.setattr(transport_module, "installed", False)
    log_fallback.cache_clear()  # logged once per process: forget an earlier test's fallback
    _, send = connection()

    with caplog.at_level(logging.WARNING, logger="realtime.server"):
        assert socket_writer(lambda message: None) is None  # no daphne connection: nothing to say
        assert caplog.records == []
        assert socket_writer(send) is None

    assert [record.getMessage() for record in caplog.records] == [
        "daphne adapter: writer part not in use (realtime.server.install() did not run); "
        "the slower public path serves instead"
    ]


def test_a_connection_that_is_not_plain_tcp_or_not_autobahns_gets_no_writer(installed):
    protocol, send = connection()
    protocol.transport.TLS = True
    assert socket_writer(send) is None

    protocol, send = connection()
    del protocol.send_queue
    assert socket_writer(send) is None

    class Bare:
        transport = Transport()
        send_queue: list = []

    assert socket_writer(functools.partial(handle_reply, Bare())) is None
    assert socket_writer(functools.partial(handle_reply, object())) is None


def test_write_now_queues_behind_what_twisted_holds_and_else_writes_at_once():
    transport = Transport()
    write_now(transport, b"first")
    assert transport.socket.wire == b"first" and held(transport) == 0

    transport.socket.budget = 2
    write_now(transport, b"second")
    assert transport.socket.wire == b"firstse" and held(transport) == 4
    write_now(transport, b"third")
    assert held(transport) == 9
    transport.flush()
    assert transport.socket.wire == b"firstsecondthird"


def test_a_writer_on_a_closed_or_disconnecting_transport_refuses(installed):
    protocol, send = connection()
    writer = socket_writer(send)
    protocol.transport.connected = 0
    with pytest.raises(ConnectionError, match="^the socket is no longer open$"):
        writer.write(text_frame(b"x"))
    protocol.transport.connected = 1
    protocol.transport.disconnecting = True
    with pytest.raises(ConnectionError):
        writer.write(text_frame(b"x"))
