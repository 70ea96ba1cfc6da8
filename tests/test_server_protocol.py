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


def test_lean_server_checks_an_open_socket_only_when_its_ping_or_lifetime_can_be_due(monkeypatch):
    """Daphne's timeout and ping check, run on what is due: handshakes and HTTP on every pass, an
    open socket once it has been silent for the ping interval or lived its maximum lifetime."""
    from daphne import server as daphne_server

    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "time", lambda: clock["now"])  # daphne's and ours (both call time.time)
    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda *args: None)  # passes are run by hand
    lean = LeanServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"], ping_interval=35,
                      websocket_timeout=600, websocket_connect_timeout=600)
    lean.connections = {}
    checked: list[str] = []
    pinged: list[float] = []

    class Http:
        def check_timeouts(self) -> None:
            checked.append("http")

    def websocket(name: str, state: int) -> WebSocketProtocol:
        protocol = LeanWebSocketProtocol.__new__(LeanWebSocketProtocol)
        protocol.__dict__.update(state=state, socket_opened=clock["now"], last_ping=clock["now"],
                                 server=lean, transport=None)
        original = protocol.check_timeouts
        protocol.check_timeouts = lambda: (checked.append(name), original())
        protocol._sendAutoPing = lambda: pinged.append(clock["now"])
        protocol.serverClose = lambda: checked.append(f"{name} closed")
        protocol.serverReject = lambda: checked.append(f"{name} rejected")
        return protocol

    http, talking = Http(), websocket("talking", WebSocketProtocol.STATE_OPEN)
    connecting = websocket("connecting", WebSocketProtocol.STATE_CONNECTING)
    for protocol in (http, talking, connecting):
        lean.protocol_connected(protocol)

    def run_pass(at: float) -> list[str]:
        clock["now"] = at
        checked.clear()
        lean.timeout_checker()
        return sorted(checked)

    assert run_pass(1002) == ["connecting", "http", "talking"]  # a first look at everything
    assert run_pass(1004) == ["connecting", "http"]  # the open socket has nothing due for 35 s
    talking.last_ping = 1010  # a client message counts as a sign of life
    assert run_pass(1036) == ["connecting", "http", "talking"] and not pinged  # due as of 1035: not silent
    assert run_pass(1040) == ["connecting", "http"]
    assert run_pass(1046) == ["connecting", "http", "talking"] and pinged == [1046]  # silent 36 s: pinged
    assert run_pass(1048) == ["connecting", "http"]
    assert run_pass(1080) == ["connecting", "http"]  # the next ping is due at 1081
    assert run_pass(1082) == ["connecting", "http", "talking"] and pinged == [1046, 1082]
    assert {"talking closed", "connecting rejected"} <= set(run_pass(1602))  # the 600 s lifetime and connect timeout

    del lean.connections[talking], lean.connections[connecting]  # reaped
    assert run_pass(1604) == ["http"] and [entry[2] for entry in lean.due] == [http]


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
