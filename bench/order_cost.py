"""The database cost of placing an order: SQL statements and CPU per `order_place`.

All database work of a gateway process runs on one thread, so the CPU an order costs there
bounds the orders per second a process answers in time. This counts the statements of each kind
of order and times market orders with `time.process_time()`, on a PostgreSQL database of its own
(`bench_orders`, created afresh and dropped at the end), with production settings (DEBUG off, the
connection pool). Events are built and validated as in the gateway, then handed over unsent.

Two portfolios: "plain" as `make bench` has it (one member, no positions; market orders of 1 SAP
buying and selling in turn) and "rich" (two members, four positions, four resting limit orders).
Run: `.venv/bin/python bench/order_cost.py [orders per round] [rounds]`; BENCH_ORDERS_DATABASE_URL
names another database (its name must start with "bench").
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_ORDERS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_orders")
ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
D = Decimal


def recreate_database(*, drop_only: bool = False) -> None:
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    if not name.startswith("bench"):
        sys.exit(f"BENCH_ORDERS_DATABASE_URL must name a database of the benchmark's own (bench...), not {name!r}.")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    os.environ.update(
        DATABASE_URL=DATABASE_URL,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-orders-" + os.urandom(16).hex(),
        DJANGO_ALLOWED_HOSTS="localhost",
        DJANGO_SETTINGS_MODULE="aktienanalyse.settings",
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from realtime.delivery import dispatch

    # As in a gateway process, the database thread hands committed events to the loop's
    # publisher; here they are dropped there, so Redis costs nothing of what is measured.
    dispatch._publish_from_loop = lambda message: True


def portfolios():
    """Create the two portfolios; return them with SAP and the actor placing the orders."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from core.actor import Actor
    from portfolio.models import Instrument, Position
    from portfolio.services import portfolio_create
    from trading.services import order_place

    users = [get_user_model().objects.create_user(name, is_staff=True) for name in ("bench-1", "bench-2")]
    instruments = {
        symbol: Instrument.objects.create(
            symbol=symbol, isin=isin, name=symbol, last_price=D(price), last_price_at=timezone.now()
        )
        for symbol, isin, price in [
            ("SAP", "DE0007164600", "236.40"),
            ("SIE", "DE0007236101", "228.15"),
            ("ALV", "DE0008404005", "352.80"),
            ("BAS", "DE000BASF111", "43.62"),
        ]
    }
    actor = Actor(user=users[0], client_id="bench", correlation_id="bench-orders", remote_addr="127.0.0.1")
    plain = portfolio_create(name="plain", cash=D("100000.00"), members=users[:1])
    rich = portfolio_create(name="rich", cash=D("50000000.00"), members=users)
    for symbol, quantity in (("SIE", "100"), ("ALV", "100"), ("BAS", "100"), ("SAP", "100000")):
        Position.objects.create(portfolio=rich, instrument=instruments[symbol], quantity=D(quantity), avg_cost=D("40"))
    for side, price in (("buy", "200"), ("buy", "210"), ("sell", "300"), ("sell", "310")):
        order_place(
            portfolio_id=rich.pk,
            symbol="SAP",
            side=side,
            order_type="limit",
            quantity=D("5"),
            price=D(price),
            actor=actor,
        )
    return plain, rich, instruments["SAP"], actor


def place(portfolio, instrument, actor, **params):
    from trading.services import order_place

    params = {"side": "buy", "order_type": "market", "quantity": D("1"), **params}
    return order_place(
        portfolio_id=portfolio.pk,
        symbol=instrument.symbol,
        client_order_id=f"b-{time.time_ns()}",
        actor=actor,
        **params,
    )


def count(label: str, call) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    statements = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    print(f"{label:40s} {len(statements):3d} statements (and BEGIN, COMMIT)")


def timed(label: str, call) -> None:
    """Print the median and the lowest CPU and wall time per call over ROUNDS rounds of ORDERS calls."""
    for i in range(20):
        call(i)
    cpu, wall = [], []
    for _ in range(ROUNDS):
        started_cpu, started = time.process_time(), time.perf_counter()
        for i in range(ORDERS):
            call(i)
        cpu.append((time.process_time() - started_cpu) * 1000 / ORDERS)
        wall.append((time.perf_counter() - started) * 1000 / ORDERS)
    cpu.sort()
    wall.sort()
    print(
        f"{label:40s} CPU {cpu[len(cpu) // 2]:5.2f} ms (lowest {cpu[0]:5.2f}), "
        f"wall {wall[len(wall) // 2]:5.2f} ms (lowest {wall[0]:5.2f}) per order"
    )


def measure() -> None:
    from django.db import close_old_connections

    from realtime.connection.commands import CommandContext
    from trading.commands import _place

    plain, rich, sap, actor = portfolios()
    count("plain: market buy (opens the position)", lambda: place(plain, sap, actor))
    count("plain: market sell (closes it)", lambda: place(plain, sap, actor, side="sell"))
    count("rich: market buy", lambda: place(rich, sap, actor))
    count("rich: market sell", lambda: place(rich, sap, actor, side="sell"))
    count("rich: limit buy that rests", lambda: place(rich, sap, actor, order_type="limit", price=D("100")))
    count(
        "rich: limit sell that rests", lambda: place(rich, sap, actor, side="sell", order_type="limit", price=D("900"))
    )
    print(f"order_place, {ROUNDS} rounds of {ORDERS} market orders, buying and selling in turn:")
    timed("plain", lambda i: place(plain, sap, actor, side="sell" if i % 2 else "buy"))
    timed("rich", lambda i: place(rich, sap, actor, side="sell" if i % 2 else "buy"))

    context = CommandContext(
        user=actor.user,
        client_id="bench",
        correlation_id="bench-orders",
        remote_addr="127.0.0.1",
        permissions=frozenset({"trading.add_order"}),
    )

    def command(i):
        """The place_order command as the database thread runs it (connection from and back to the pool)."""
        data = {
            "symbol": "SAP",
            "side": "sell" if i % 2 else "buy",
            "quantity": 1,
            "order_type": "market",
            "client_order_id": f"c-{time.time_ns()}",
        }
        close_old_connections()
        try:
            return inspect.unwrap(_place)(context, data)
        finally:
            close_old_connections()

    count("command place_order (plain, buy)", lambda: command(0))
    timed("command place_order (plain)", command)


def main() -> None:
    recreate_database()
    setup_django()
    try:
        measure()
    finally:
        from django.db import connection

        connection.close()
        connection.close_pool()
        recreate_database(drop_only=True)


if __name__ == "__main__":
    main()
