"""The graceful drain under real daphne: SIGTERM while a socket has a command in flight."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request

import psycopg
import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from portfolio.models import Portfolio
from realtime.wire.protocol import decode
from tests.fixtures.bus import live_connect, new_bus, shared_redis_url
from tests.fixtures.servers import database_url, start_daphne
from tests.fixtures.ws import session_cookie
from trading.models import Order

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="holds a row lock to keep a command in flight (PostgreSQL; CI runs it)",
    ),
]

NOTICE, TIMEOUT = 0.5, 8.0


def readyz(server) -> int:
    try:
        with urllib.request.urlopen(f"{server.http_url}/readyz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_until(predicate, timeout: float = 5, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.02)


class PortfolioLock:
    """The portfolio's row held FOR UPDATE by a connection of the test, as a concurrent writer would."""

    def __init__(self, portfolio_id: int):
        self.url = database_url(settings.DATABASES["default"])
        self.connection = psycopg.connect(self.url)
        table = Portfolio._meta.db_table
        self.connection.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", (portfolio_id,))

    def someone_waits(self) -> bool:
        """Tell whether another session of the database waits for a lock (the command, blocked)."""
        with psycopg.connect(self.url, autocommit=True) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
        assert row is not None  # count(*) answers one row
        return row[0] > 0

    def release(self) -> None:
        if not self.connection.closed:
            self.connection.rollback()
            self.connection.close()


@pytest.fixture
def gateways(transactional_db, tmp_path):
    """Start gateway processes on the test database and a Redis channel layer of the test's own."""
    bus = new_bus(shared_redis_url())
    started = []

    def start(**extra: str):
        drain = {"REALTIME_DRAIN_NOTICE_SECONDS": str(NOTICE), "REALTIME_DRAIN_TIMEOUT_SECONDS": str(TIMEOUT)}
        env = bus.gateway_env(**{**drain, **extra})
        server = start_daphne(tmp_path, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def order_frame(correlation_id: str, client_order_id: str) -> dict:
    return {
        "type": "user",
        "event": "place_order",
        "correlation_id": correlation_id,
        "data": {
            "symbol": "SAP",
            "side": "buy",
            "quantity": 2,
            "order_type": "market",
            "client_order_id": client_order_id,
        },
    }


def test_sigterm_answers_the_command_in_flight_then_closes_1012_refuses_newcomers_and_exits(
    gateways, trader, portfolio, sap
):
    # given two gateway processes, a desk on the first subscribed to its order events, and an
    # order of that desk blocked on the portfolio's row lock
    draining, other = gateways(), gateways()
    cookie = session_cookie(trader)
    lock = PortfolioLock(portfolio.pk)
    try:

        async def before_the_signal():
            client = await live_connect(draining, cookie)
            await client.send(
                {"type": "subscription", "event": "subscribe", "data": {"event_types": ["trading.order_created"]}}
            )
            position = (await client.receive_event("subscription.confirmed"))["data"]
            await client.send(order_frame("drain-1", "desk-order-1"))
            return client, position

        loop = asyncio.new_event_loop()
        client, position = loop.run_until_complete(before_the_signal())
        wait_until(lock.someone_waits, what="the order waiting for the row lock")

        # when the process gets SIGTERM
        signalled = time.monotonic()
        draining.process.send_signal(signal.SIGTERM)

        # then it turns unready and refuses handshakes while the command is still in flight
        wait_until(lambda: readyz(draining) == 503, what="/readyz 503")
        assert readyz(other) == 200

        async def handshake_status() -> int:
            try:
                async with connect(
                    f"{draining.ws_url}/", origin=draining.http_url, additional_headers=[("Cookie", cookie.decode())]
                ):
                    return 101
            except InvalidStatus as refused:
                return refused.response.status_code

        assert loop.run_until_complete(handshake_status()) == 503

        # and when the command can go on, its answer arrives before the close, which is 1012
        lock.release()

        async def until_closed():
            frames = []
            try:
                while True:
                    frames.append(decode(await asyncio.wait_for(client.ws.recv(), TIMEOUT + 2)))
            except ConnectionClosed:
                pass
            return frames, client.ws.close_code

        frames, close_code = loop.run_until_complete(until_closed())
        answers = [f for f in frames if f["event"] == "place_order.response"]
        assert [(a["correlation_id"], a["data"]["status"]) for a in answers] == [("drain-1", "success")]
        assert close_code == 1012
        order_id = answers[0]["data"]["result"]["order_id"]

        # and the process exits 0 within the drain's bound
        assert draining.process.wait(timeout=TIMEOUT + 2) == 0
        assert time.monotonic() - signalled < TIMEOUT + 1

        # and the order's event reached Redis: the desk, back on the other process with `since`, gets it
        async def reconnect_elsewhere():
            again = await live_connect(other, cookie, client.client_id)
            since = {"trading.order_created": {"seq": position["seq"], "epoch": position["epoch"]}}
            await again.send(
                {
                    "type": "subscription",
                    "event": "subscribe",
                    "data": {"event_types": ["trading.order_created"], "since": since},
                }
            )
            created = await again.receive_event("trading.order_created")
            confirmed = await again.receive_event("subscription.confirmed")
            await again.close()
            return created, confirmed

        created, confirmed = loop.run_until_complete(reconnect_elsewhere())
        assert created["data"]["order_id"] == order_id
        assert confirmed["data"]["recovered"] is True
        loop.close()
    finally:
        lock.release()
    assert Order.objects.filter(client_order_id="desk-order-1").count() == 1


def test_a_command_that_outlasts_the_drain_timeout_does_not_hold_the_exit(gateways, trader, portfolio, sap):
    # given a gateway with a short drain timeout and a desk whose order is blocked on a row lock
    server = gateways(REALTIME_DRAIN_TIMEOUT_SECONDS="2")
    cookie = session_cookie(trader)
    lock = PortfolioLock(portfolio.pk)
    loop = asyncio.new_event_loop()
    try:

        async def send_order():
            client = await live_connect(server, cookie)
            await client.send(order_frame("drain-2", "desk-order-2"))
            return client

        client = loop.run_until_complete(send_order())
        wait_until(lock.someone_waits, what="the order waiting for the row lock")

        # when the process gets SIGTERM and the lock is never released while it drains
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)

        # then the socket is closed with 1012 and the process exits 0 within the bound
        loop.run_until_complete(client.closed(timeout=5))
        assert client.ws.close_code == 1012
        assert server.process.wait(timeout=5) == 0
        assert time.monotonic() - signalled < 2 + 1.5
    finally:
        lock.release()
        loop.close()
    # and the unanswered order was not placed: its transaction ended with the process
    assert not Order.objects.filter(client_order_id="desk-order-2").exists()
