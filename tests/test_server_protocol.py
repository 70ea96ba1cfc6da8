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

from realtime.server import install
from realtime.server.daphne import GC_THRESHOLDS, LeanServer, LeanWebSocketProtocol, unmasked_text
from tests.fixtures.servers import server_env, start_daphne
from tests.fixtures.ws import session_cookie


@pytest.fixture
def adapter(monkeypatch):
    """The adapter installed in this process as `python -m realtime.server` installs it; undone after."""
    import gc

    from daphne import cli, server

    from realtime.server import transport

    monkeypatch.setattr(WebSocketFactory, "protocol", WebSocketProtocol)
    monkeypatch.setattr(cli.CommandLineInterface, "server_class", server.Server)
    monkeypatch.setattr(transport, "installed", False)
    thresholds = gc.get_threshold()
    yield install()
    gc.set_threshold(*thresholds)


def test_daphne_builds_lean_connections_that_read_each_setting_from_their_factory(adapter):
    assert WebSocketFactory.protocol is LeanWebSocketProtocol
    factory = WebSocketFactory(None, server="Daphne")
    factory.setProtocolOptions(autoPingInterval=7, maxMessagePayloadSize=1234, openHandshakeTimeout=3)
    protocol = factory.buildProtocol(None)

    assert (protocol.autoPingInterval, protocol.maxMessagePayloadSize, protocol.openHandshakeTimeout) == (7, 1234, 3)
    assert not set(WebSocketProtocol.CONFIG_ATTRS) & set(vars(protocol))
    factory.setProtocolOptions(maxMessagePayloadSize=99)  # one place holds the value
    assert protocol.maxMessagePayloadSize == 99
    protocol.openHandshakeTimeout = 9  # a value set on one connection is that connection's alone
    assert (protocol.openHandshakeTimeout, factory.buildProtocol(None).openHandshakeTimeout) == (9, 3)
    with pytest.raises(AttributeError):
        protocol.no_such_attribute  # noqa: B018


def test_lean_server_reaps_ended_connections_and_keeps_the_others(adapter, monkeypatch):
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

        def check_timeouts() -> None:
            checked.append(name)
            original()

        protocol.__dict__.update(
            check_timeouts=check_timeouts,
            _sendAutoPing=lambda: pinged.append(clock["now"]),
            serverClose=lambda: checked.append(f"{name} closed"),
            serverReject=lambda: checked.append(f"{name} rejected"),
        )
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


def test_lean_server_lets_go_of_reaped_connections_when_many_leave_at_once(monkeypatch):
    """After a mass disconnect the timeout queue drops the reaped protocols at the next reaping
    pass, rather than holding each until its ping interval comes round."""
    from daphne import server as daphne_server

    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda *args: None)  # passes are run by hand

    class Http:
        def check_timeouts(self) -> None:
            pass

    lean = LeanServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    lean.connections = {}
    protocols = [Http() for _ in range(300)]
    for protocol in protocols:
        lean.protocol_connected(protocol)
    leaving, staying = protocols[:20], protocols[20:]
    for protocol in leaving:
        lean.protocol_disconnected(protocol)
    lean.application_checker()
    assert len(lean.connections) == 280 and len(lean.due) == 300  # a few gone: forgotten when due

    leaving, staying = staying[:250], staying[250:]
    for protocol in leaving:
        lean.protocol_disconnected(protocol)
    lean.application_checker()

    assert set(lean.connections) == set(staying)
    assert sorted(map(id, (entry[2] for entry in lean.due))) == sorted(map(id, staying))
    lean.timeout_checker()  # the rebuilt queue still works as a heap
    assert len(lean.due) == len(staying)


def test_the_server_process_collects_cyclic_garbage_less_often(adapter):
    import gc

    assert adapter == []  # every name the adapter uses is there, at the versions it was checked against
    assert gc.get_threshold() == GC_THRESHOLDS


def _frame(payload: bytes, *, opcode: int = 0x1, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame (RFC 6455 5.2); text and final unless told otherwise."""
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    if len(payload) < 126:
        header = bytes([first, 0x80 | len(payload)])
    elif len(payload) < 1 << 16:
        header = bytes([first, 0x80 | 126]) + struct.pack("!H", len(payload))
    else:
        header = bytes([first, 0x80 | 127]) + struct.pack("!Q", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _opcodes(sock: socket.socket, seconds: float) -> list[int]:
    """Read server frames (unmasked) for `seconds`; return their opcodes."""
    return [opcode for opcode, _ in _server_frames(sock, seconds)]


def _server_frames(
    sock: socket.socket, seconds: float, until: int | None = None, until_payload: bytes | None = None
) -> list[tuple[int, bytes]]:
    """Read server frames (unmasked) for `seconds`, until the socket's end, or until a frame with
    opcode `until` or with `until_payload` in its payload; return (opcode, payload) of each."""
    return _read_frames(sock, seconds, until, until_payload)[0]


def _read_frames(
    sock: socket.socket, seconds: float, until: int | None = None, until_payload: bytes | None = None
) -> tuple[list[tuple[int, bytes]], bool]:
    """`_server_frames`, also telling whether the connection ended (EOF or a reset) meanwhile."""
    sock.settimeout(0.1)
    buffer, deadline = b"", time.monotonic() + seconds
    opcodes: list[tuple[int, bytes]] = []
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return opcodes, True
        if not chunk:
            return opcodes, True
        buffer += chunk
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                length, start = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                length, start = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < start + length:
                break
            opcodes.append((buffer[0] & 0x0F, buffer[start : start + length]))
            buffer = buffer[start + length :]
            if opcodes[-1][0] == until or (until_payload is not None and until_payload in opcodes[-1][1]):
                return opcodes, False
    return opcodes, False


def _open_socket(server, user, *, receive_buffer: int | None = None) -> socket.socket:
    """Open a WebSocket to the served gateway by hand, signed in as `user`; return the raw socket."""
    sock = socket.socket()
    if receive_buffer is not None:  # before connecting, so the window the server sees is this small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {server.http_url}\r\n"
            f"Cookie: {session_cookie(user).decode()}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101")
    return sock


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_daphne_pings_only_sockets_that_stay_silent(tmp_path, staff_user):
    """A client that sends its heartbeat is not pinged; one that goes quiet is, after the interval.

    Daphne counts a client's message as a sign of life; the run targets' `--ping-interval 35`
    relies on it, so that desks sending the spec's 30 s heartbeat cost no pings at all.
    """
    server = start_daphne(tmp_path, options=("--ping-interval", "1", "--ping-timeout", "5"))
    try:
        sock = _open_socket(server, staff_user)
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


def test_a_read_of_exactly_one_plain_text_frame_is_unmasked_in_one_step_and_anything_else_is_left_to_autobahn():
    text = '{"type":"ping","event":"heartbeat","data":{"note":"Grüße"}}'
    long_text = json.dumps({"type": "ping", "event": "heartbeat", "data": {"pad": "x" * 300}})
    frame = _frame(text.encode())

    assert unmasked_text(frame, 65535) == text
    assert unmasked_text(_frame(long_text.encode()), 65535) == long_text  # 16-bit length
    assert unmasked_text(_frame(b""), 65535) == ""
    # left to autobahn: partial, coalesced, over the limit, binary, fragmented, compressed,
    # unmasked, 64-bit or non-minimal lengths, and invalid UTF-8
    assert unmasked_text(frame[:-1], 65535) is None
    assert unmasked_text(frame + frame, 65535) is None
    assert unmasked_text(frame, len(text) - 1) is None
    assert unmasked_text(_frame(text.encode(), opcode=0x2), 65535) is None
    assert unmasked_text(_frame(text.encode(), fin=False), 65535) is None
    assert unmasked_text(_frame(text.encode(), rsv=4), 65535) is None
    assert unmasked_text(bytes([0x81, len(text)]) + text.encode(), 65535) is None
    assert unmasked_text(_frame(b"x" * 70000), 1 << 20) is None
    assert unmasked_text(bytes([0x81, 0x80 | 126, 0, 5]) + frame[2:], 65535) is None
    assert unmasked_text(_frame(b'{"a":"\xff"}'), 65535) is None


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_daphne_answers_messages_however_they_are_framed_and_drops_invalid_utf8(tmp_path, staff_user):
    """One frame per read takes the short way, everything else autobahn's: the answers are the same."""
    heartbeat = json.dumps({"type": "ping", "event": "heartbeat", "data": {}, "correlation_id": "hb-1"}).encode()
    server = start_daphne(tmp_path)
    try:
        sock = _open_socket(server, staff_user)
        _server_frames(sock, 20, until_payload=b"connection.established")
        markers = iter(range(1000))

        def pongs() -> int:
            """Count the answers to `heartbeat` before the answer to a marker ping sent after it (answered in order)."""
            marker = f'"mark-{next(markers)}"'.encode()
            sock.sendall(_frame(b'{"type":"ping","event":"heartbeat","data":{},"correlation_id":' + marker + b"}"))
            frames = _server_frames(sock, 20, until_payload=marker)
            assert frames and marker in frames[-1][1], f"no answer to the marker: {frames}"
            return sum(b'"pong"' in payload and b'"hb-1"' in payload for opcode, payload in frames[:-1])

        sock.sendall(_frame(heartbeat))  # one whole frame in one read
        assert pongs() == 1
        sock.sendall(_frame(heartbeat) * 2)  # two frames in one read
        assert pongs() == 2
        frame = _frame(heartbeat)
        sock.sendall(frame[:5])  # one frame over two reads
        time.sleep(0.2)  # a chance for the server to read the first part alone (no state to wait for: either way one answer)
        sock.sendall(frame[5:])
        assert pongs() == 1
        sock.sendall(_frame(heartbeat[:10], fin=False) + _frame(heartbeat[10:], opcode=0x0))  # fragmented
        assert pongs() == 1
        sock.sendall(_frame(json.dumps({"type": "ping", "event": "heartbeat", "data": {"pad": "x" * 300},
                                        "correlation_id": "hb-1"}).encode()))  # a 16-bit length
        assert pongs() == 1

        sock.sendall(_frame(b'{"type":"ping","event":"\xff"}'))  # not UTF-8: autobahn drops the connection
        assert _server_frames(sock, 20) == []  # no answer until the socket is gone (reading stops at its end)
        sock.settimeout(5)
        try:
            rest = sock.recv(1)  # times out if the socket were still open
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        sock.close()
    finally:
        server.stop()


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes) -> bool:
    """Send `trickle` a byte at a time while waiting for the server to close `sock`; whether it did in time."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    for byte in trickle * 1000:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(bytes([byte]))  # each byte restarts Twisted's own idle timeout
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_connection_that_trickles_its_request_headers_is_closed_at_the_handshake_deadline(tmp_path, staff_user):
    """Headers not complete within REALTIME_HANDSHAKE_TIMEOUT_SECONDS: closed, however busy the client keeps it.

    A WebSocket that finished its handshake in time is not touched by the deadline.
    """
    server = start_daphne(tmp_path, env=server_env(REALTIME_HANDSHAKE_TIMEOUT_SECONDS="1"))
    try:
        ready = _open_socket(server, staff_user)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"GET /ws/ HT")  # a partial request line
        opened = time.monotonic()

        assert _closed_within(slow, 10, b"TP/1.1")  # the deadline, with room for a loaded machine
        assert time.monotonic() - opened >= 0.9

        ready.sendall(_frame(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}).encode()))
        assert 0x1 in _opcodes(ready, 1)  # older than the deadline and still served
        ready.close()
    finally:
        server.stop()
