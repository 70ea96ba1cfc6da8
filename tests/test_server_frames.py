"""Daphne under the project on real sockets: pings for silent sockets only, however a message is
framed, the one-step unmasking of a plain text frame, and the handshake deadline."""

from __future__ import annotations

import json
import socket
import time

import pytest

from realtime.server.daphne import unmasked_text
from tests.fixtures.servers import server_env, start_daphne
from tests.fixtures.frames import client_frame, open_socket, opcodes, server_frames


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_daphne_pings_only_sockets_that_stay_silent(tmp_path, staff_user):
    """A client that sends its heartbeat is not pinged; one that goes quiet is, after the interval.

    Daphne counts a client's message as a sign of life; the run targets' `--ping-interval 35`
    relies on it, so that desks sending the spec's 30 s heartbeat cost no pings at all.
    """
    server = start_daphne(tmp_path, options=("--ping-interval", "1", "--ping-timeout", "5"))
    try:
        sock = open_socket(server, staff_user)
        heartbeat = client_frame(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}).encode())

        talking: list[int] = []
        for _ in range(10):  # 4 s, a heartbeat every 0.4 s: daphne checks every 2 s
            sock.sendall(heartbeat)
            talking += opcodes(sock, 0.4)
        silent = opcodes(sock, 4)

        assert 0x1 in talking  # the pongs of the protocol came back as text frames
        assert 0x9 not in talking
        assert 0x9 in silent
        sock.close()
    finally:
        server.stop()


def test_a_read_of_exactly_one_plain_text_frame_is_unmasked_in_one_step_and_anything_else_is_left_to_autobahn():
    text = '{"type":"ping","event":"heartbeat","data":{"note":"Grüße"}}'
    long_text = json.dumps({"type": "ping", "event": "heartbeat", "data": {"pad": "x" * 300}})
    frame = client_frame(text.encode())

    assert unmasked_text(frame, 65535) == text
    assert unmasked_text(client_frame(long_text.encode()), 65535) == long_text  # 16-bit length
    assert unmasked_text(client_frame(b""), 65535) == ""
    # left to autobahn: partial, coalesced, over the limit, binary, fragmented, compressed,
    # unmasked, 64-bit or non-minimal lengths, and invalid UTF-8
    assert unmasked_text(frame[:-1], 65535) is None
    assert unmasked_text(frame + frame, 65535) is None
    assert unmasked_text(frame, len(text) - 1) is None
    assert unmasked_text(client_frame(text.encode(), opcode=0x2), 65535) is None
    assert unmasked_text(client_frame(text.encode(), fin=False), 65535) is None
    assert unmasked_text(client_frame(text.encode(), rsv=4), 65535) is None
    assert unmasked_text(bytes([0x81, len(text)]) + text.encode(), 65535) is None
    assert unmasked_text(client_frame(b"x" * 70000), 1 << 20) is None
    assert unmasked_text(bytes([0x81, 0x80 | 126, 0, 5]) + frame[2:], 65535) is None
    assert unmasked_text(client_frame(b'{"a":"\xff"}'), 65535) is None


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_daphne_answers_messages_however_they_are_framed_and_drops_invalid_utf8(tmp_path, staff_user):
    """One frame per read takes the short way, everything else autobahn's: the answers are the same."""
    heartbeat = json.dumps({"type": "ping", "event": "heartbeat", "data": {}, "correlation_id": "hb-1"}).encode()
    server = start_daphne(tmp_path)
    try:
        sock = open_socket(server, staff_user)
        server_frames(sock, 20, until_payload=b"connection.established")
        markers = iter(range(1000))

        def pongs() -> int:
            """Count the answers to `heartbeat` before the answer to a marker ping sent after it (answered in order)."""
            marker = f'"mark-{next(markers)}"'.encode()
            sock.sendall(
                client_frame(b'{"type":"ping","event":"heartbeat","data":{},"correlation_id":' + marker + b"}")
            )
            frames = server_frames(sock, 20, until_payload=marker)
            assert frames and marker in frames[-1][1], f"no answer to the marker: {frames}"
            return sum(b'"pong"' in payload and b'"hb-1"' in payload for opcode, payload in frames[:-1])

        sock.sendall(client_frame(heartbeat))  # one whole frame in one read
        assert pongs() == 1
        sock.sendall(client_frame(heartbeat) * 2)  # two frames in one read
        assert pongs() == 2
        frame = client_frame(heartbeat)
        sock.sendall(frame[:5])  # one frame over two reads
        time.sleep(
            0.2
        )  # a chance for the server to read the first part alone (no state to wait for: either way one answer)
        sock.sendall(frame[5:])
        assert pongs() == 1
        sock.sendall(client_frame(heartbeat[:10], fin=False) + client_frame(heartbeat[10:], opcode=0x0))  # fragmented
        assert pongs() == 1
        sock.sendall(
            client_frame(
                json.dumps(
                    {"type": "ping", "event": "heartbeat", "data": {"pad": "x" * 300}, "correlation_id": "hb-1"}
                ).encode()
            )
        )  # a 16-bit length
        assert pongs() == 1

        sock.sendall(client_frame(b'{"type":"ping","event":"\xff"}'))  # not UTF-8: autobahn drops the connection
        assert server_frames(sock, 20) == []  # no answer until the socket is gone (reading stops at its end)
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
        ready = open_socket(server, staff_user)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"GET /ws/ HT")  # a partial request line
        opened = time.monotonic()

        assert _closed_within(slow, 10, b"TP/1.1")  # the deadline, with room for a loaded machine
        assert time.monotonic() - opened >= 0.9

        ready.sendall(client_frame(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}).encode()))
        assert 0x1 in opcodes(ready, 1)  # older than the deadline and still served
        ready.close()
    finally:
        server.stop()
