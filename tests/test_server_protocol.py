"""Daphne's connections under the project: settings read from the factory, nothing copied per socket."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

import pytest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

import aktienanalyse.asgi  # noqa: F401  (installs the protocol, as every daphne process of ours does)
from realtime.server import GC_THRESHOLDS, LeanServer, LeanWebSocketProtocol
from tests.fixtures.servers import start_daphne
from tests.fixtures.ws import session_cookie


def test_daphne_builds_lean_connections_that_read_each_setting_from_their_factory():
    assert WebSocketFactory.protocol is LeanWebSocketProtocol
    factory = WebSocketFactory(None, server="Daphne")
    factory.setProtocolOptions(autoPingInterval=7, maxMessagePayloadSize=1234, openHandshakeTimeout=3)
    protocol = factory.buildProtocol(None)

    assert (protocol.autoPingInterval, protocol.maxMessagePayloadSize, protocol.openHandshakeTimeout) == (7, 1234, 3)
    assert not set(WebSocketProtocol.CONFIG_ATTRS) & set(vars(protocol))
    factory.setProtocolOptions(maxMessagePayloadSize=99)  # one place holds the value
    assert protocol.maxMessagePayloadSize == 99
    with pytest.raises(AttributeError):
        protocol.no_such_attribute  # noqa: B018


def test_lean_server_reaps_ended_connections_and_keeps_the_others(monkeypatch):
    """Daphne's reaping, applied to what has ended: a closed connection whose application is done
    leaves the table; an open one and a closed one whose application still runs stay."""
    from daphne import server as daphne_server
    from daphne.cli import CommandLineInterface

    assert CommandLineInterface.server_class is LeanServer
    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda *args: None)  # no next pass

    async def scenario() -> None:
        finish = {name: asyncio.Event() for name in ("gone", "open", "closing")}

        def application(name):
            async def run(scope, receive, send):
                await finish[name].wait()

            return run

        lean = LeanServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])  # never run
        lean.connections = {}  # as run() starts it
        protocols = {name: type("Protocol", (), {"name": name})() for name in finish}
        for name, protocol in protocols.items():
            lean.application = application(name)
            lean.protocol_connected(protocol)
            lean.create_application(protocol, {"type": "websocket"})
        finish["gone"].set()
        lean.protocol_disconnected(protocols["gone"])
        lean.protocol_disconnected(protocols["closing"])
        await asyncio.sleep(0)  # the finished application's callback
        await asyncio.sleep(0)

        lean.application_checker()

        assert set(lean.connections) == {protocols["open"], protocols["closing"]}
        assert lean.ended == {protocols["closing"]}  # still waited for; the open one is not visited
        finish["closing"].set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        lean.application_checker()
        assert set(lean.connections) == {protocols["open"]} and not lean.ended
        finish["open"].set()

    asyncio.run(scenario())


def test_the_server_process_collects_cyclic_garbage_less_often():
    import gc

    assert gc.get_threshold() == GC_THRESHOLDS


def _frame(payload: bytes) -> bytes:
    """A masked client text frame (RFC 6455 5.2), payload under 126 bytes."""
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _opcodes(sock: socket.socket, seconds: float) -> list[int]:
    """Read server frames (unmasked) for `seconds`; return their opcodes."""
    sock.settimeout(0.1)
    buffer, opcodes, deadline = b"", [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        buffer += chunk
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                length, start = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                length, start = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < start + length:
                break
            opcodes.append(buffer[0] & 0x0F)
            buffer = buffer[start + length :]
    return opcodes


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_daphne_pings_only_sockets_that_stay_silent(tmp_path, staff_user):
    """A client that sends its heartbeat is not pinged; one that goes quiet is, after the interval.

    Daphne counts a client's message as a sign of life; the run targets' `--ping-interval 35`
    relies on it, so that desks sending the spec's 30 s heartbeat cost no pings at all.
    """
    server = start_daphne(tmp_path, options=("--ping-interval", "1", "--ping-timeout", "5"))
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {server.http_url}\r\n"
                f"Cookie: {session_cookie(staff_user).decode()}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 101")
        heartbeat = _frame(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}).encode())

        talking: list[int] = []
        for _ in range(10):  # 4 s, a heartbeat every 0.4 s: daphne checks every 2 s
            sock.sendall(heartbeat)
            talking += _opcodes(sock, 0.4)
        silent = _opcodes(sock, 4)

        assert 0x1 in talking  # the pongs of the protocol came back as text frames
        assert 0x9 not in talking
        assert 0x9 in silent
        sock.close()
    finally:
        server.stop()
