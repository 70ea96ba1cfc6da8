"""Why a handshake was refused: counted per reason, logged with the reason, never a log flood."""

import logging

import pytest
from prometheus_client import REGISTRY

from realtime.connection import gate
from realtime.runtime.logs import Throttle
from realtime.wire.protocol import CloseCode
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("realtime_handshakes_refused_total", {"reason": reason}) or 0.0


@pytest.fixture
def fresh_throttle(monkeypatch):
    """A throttle of the test's own, so lines logged by earlier tests do not hold these back."""
    throttle = Throttle()
    monkeypatch.setattr(gate, "_refusals", throttle)
    return throttle


def refusal_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "realtime.connection.gate" and "websocket refused" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("reason", "connect"),
    [
        ("origin", {"origin": b"http://evil.example"}),
        ("no_route", {"path": "/not-a-socket/"}),
        ("not_staff", {"cookie": None}),
    ],
)
async def test_each_refusal_is_counted_and_logged_with_its_reason(ws_connect, fresh_throttle, caplog, reason, connect):
    before = refused(reason)
    with caplog.at_level(logging.INFO, logger="realtime.connection.gate"):
        _, connected = await ws_connect(**connect)
    assert connected is False
    assert refused(reason) == before + 1
    lines = refusal_lines(caplog)
    assert len(lines) == 1 and f"reason={reason}" in lines[0]


async def test_a_flood_of_refused_handshakes_is_counted_in_full_and_logged_once(ws_connect, fresh_throttle, caplog):
    before = refused("origin")
    with caplog.at_level(logging.INFO, logger="realtime.connection.gate"):
        for _ in range(30):
            _, connected = await ws_connect(origin=b"http://evil.example")
            assert connected is False
    assert refused("origin") == before + 30
    assert len(refusal_lines(caplog)) == 1


async def test_the_clients_header_values_are_logged_quoted_and_cut_short(ws_connect, fresh_throttle, caplog):
    origin = b"http://evil.example/\x1b[31m" + b"x" * 5000
    with caplog.at_level(logging.INFO, logger="realtime.connection.gate"):
        await ws_connect(origin=origin)
    [line] = refusal_lines(caplog)
    assert "\x1b" not in line and "\\x1b" in line
    assert len(line) < 1000


async def test_a_socket_over_the_users_cap_is_counted_as_refused(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 1}
    cookie = await login_cookie(staff_user)
    await ws_connect(cookie=cookie)
    before = refused("connection_cap")
    second, connected = await ws_connect(cookie=cookie, expect_welcome=False)
    assert connected and (await second.receive())["event"] == "too_many_connections"
    assert await second.closed_with() == CloseCode.TOO_MANY_CONNECTIONS
    assert refused("connection_cap") == before + 1


def test_the_throttle_logs_a_reason_again_after_its_interval_with_the_count_held_back():
    now = [100.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    assert throttle.admit("origin") == 0
    assert [throttle.admit("origin") for _ in range(3)] == [None, None, None]
    assert throttle.admit("no_route") == 0  # reasons are throttled apart
    now[0] += 9.9
    assert throttle.admit("origin") is None
    now[0] += 0.1
    assert throttle.admit("origin") == 4
    assert throttle.admit("origin") is None
