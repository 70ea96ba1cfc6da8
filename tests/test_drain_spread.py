"""The drain spreads its sockets' closes, so their clients' reconnects reach the other processes
as a stream: the turns, the bound on the spread, and sockets of the application closed in turn."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import pytest

from realtime.connection import drain
from realtime.runtime.connections import connections
from realtime.wire.protocol import CloseCode
from tests.fixtures.settings_process import load_settings
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("count", "spread", "expected"),
    [(0, 3.0, []), (1, 3.0, [0.0]), (2, 3.0, [0.0, 3.0]), (4, 3.0, [0.0, 1.0, 2.0, 3.0]), (3, 0.0, [0.0, 0.0, 0.0])],
)
def test_turns_are_spaced_evenly_from_at_once_to_the_spread(count, spread, expected):
    assert drain.turns(count, spread) == expected


@pytest.mark.parametrize(
    ("spread", "notice", "timeout", "expected"),
    [
        (3.0, 2.0, 20.0, 3.0),  # the defaults: well within
        (10.0, 2.0, 20.0, 9.0),  # at most half of what remains after the notice
        (3.0, 0.5, 2.0, 0.75),  # a short timeout shortens the spread rather than the commands' time
        (3.0, 0.0, 6.0, 3.0),  # exactly half
        (0.0, 2.0, 20.0, 0.0),  # all at once
    ],
)
def test_the_spread_is_at_most_half_of_the_time_after_the_notice(spread, notice, timeout, expected):
    assert drain.spread_within(spread, notice, timeout) == expected


def load_spread(spread: str) -> subprocess.CompletedProcess:
    return load_settings("settings.REALTIME['DRAIN_SPREAD_SECONDS']", REALTIME_DRAIN_SPREAD_SECONDS=spread)


@pytest.mark.parametrize("spread", ["-1", "nan", "inf", "three"])
def test_a_spread_that_is_no_finite_number_of_seconds_stops_the_process_with_its_name(spread):
    loaded = load_spread(spread)
    assert loaded.returncode != 0
    assert "REALTIME_DRAIN_SPREAD_SECONDS" in loaded.stderr


def test_a_spread_of_zero_closes_all_at_once_and_is_accepted():
    loaded = load_spread("0")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "0.0"


@pytest.fixture
def draining_process(monkeypatch):
    """The process's drain state, reset to not draining after the test (the drain marks it)."""
    monkeypatch.setattr(drain, "_draining_since", None)


async def test_open_sockets_are_closed_1012_across_the_spread(ws_connect, staff_user, draining_process):
    # given four open sockets of the application
    cookie = await login_cookie(staff_user)
    clients = [(await ws_connect(cookie=cookie))[0] for _ in range(4)]
    assert len(connections) == 4
    loop = asyncio.get_running_loop()

    # when the process drains with no notice and a spread of 0.6 s
    began = loop.time()
    drained = loop.create_task(drain.drain(notice=0, timeout=10, spread=0.6))
    codes = []
    for client in clients:
        codes.append(await client.closed_with(timeout=15))
        await client.close()  # the client's half of the closing handshake, which the drain awaits
    last_closed = loop.time()

    # then every socket is closed with 1012, the last no sooner than the spread after the drain
    # began (a sleep never ends early, so load cannot break this; without the spread all four
    # close at once)
    assert codes == [CloseCode.SERVICE_RESTART] * 4
    assert last_closed - began >= 0.6
    assert await drained is True
    assert len(connections) == 0


async def test_a_socket_serves_until_its_turn(ws_connect, staff_user, draining_process):
    # given two open sockets, the second's turn 6 s into the spread
    cookie = await login_cookie(staff_user)
    first, _ = await ws_connect(cookie=cookie)
    second, _ = await ws_connect(cookie=cookie)
    loop = asyncio.get_running_loop()
    drained = loop.create_task(drain.drain(notice=0, timeout=60, spread=6))

    # when the first has been closed
    assert await first.closed_with() == CloseCode.SERVICE_RESTART
    await first.close()

    # then the second still answers a command, and is closed at its turn like the first
    answer = await second.command("get_connection_info")
    assert answer["data"]["status"] == "success"
    assert await second.closed_with(timeout=30) == CloseCode.SERVICE_RESTART
    await second.close()
    assert await drained is True


async def test_a_socket_whose_client_leaves_before_its_turn_is_not_closed_again(
    ws_connect, staff_user, draining_process, caplog
):
    # given two open sockets, the second's turn 3 s into the spread
    cookie = await login_cookie(staff_user)
    first, _ = await ws_connect(cookie=cookie)
    second, _ = await ws_connect(cookie=cookie)
    second_consumer = list(connections)[1].consumer
    drained = asyncio.get_running_loop().create_task(drain.drain(notice=0, timeout=60, spread=3))
    assert await first.closed_with() == CloseCode.SERVICE_RESTART
    await first.close()

    # when the second's client leaves before its turn
    await second.close()

    # then the drain finishes without closing it again, and nothing went wrong on the way
    assert await drained is True
    assert second_consumer.released and not second_consumer.draining
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
