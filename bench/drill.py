"""Rolling-restart drill: the local deployment under load, every gateway process restarted in turn.

    python bench/drill.py [--desks 500] [--rounds 2] [--daphnes 3] ...      (or `make drill`)

It starts `deploy/run-local.sh` (nginx, DAPHNES daphne processes, two market_feed processes) on a
database of its own (dropped and created) and a channel-layer prefix and bus channels of its own,
creates DESKS traders, each with a portfolio, and connects one desk client per trader through
nginx. A desk (`desk.py`) behaves like the TypeScript client (static/ts/event-client.ts): it subscribes to
the price ticks and its order events, resubscribes with `since` after every reconnect (at once
after a 1012 close, else after a jittered backoff), pings every 25 s, and places market orders
with a `client_order_id`, sending an unanswered one again on its next connection.

After a warm-up it runs deploy/rolling-restart.sh ROUNDS times while the load goes on, lets the
last orders answer, and reports (docs/benchmarks.md):

- events lost: gaps in each desk's `seq` stream of `market.price_update` after replay, replays the
  server refused, and fills in the database whose `trading.order_filled` a desk never saw;
- orders lost (sent, never answered and not in the database) and duplicated (two orders for one
  `client_order_id`, or answers naming different orders), orders answered with an error;
- the time each desk was without a connection, per disconnection (p50, p99, max);
- each portfolio's cash and positions in the database against its fills.

Exit status 0 when orders lost, orders duplicated, events lost and cash/position mismatches are
all 0 and every desk came back within 2 s at p99; else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from desk import Desk
from books import database_view

ROOT = Path(__file__).resolve().parent.parent
STARTING_CASH = Decimal("1000000.00")
BACK_WITHIN_SECONDS = 2.0  # the goal for p99 of the time without a connection


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--desks", type=int, default=500, help="desk clients, each a trader with a portfolio (default 500)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="times every gateway process is restarted (default 2)")
    parser.add_argument("--daphnes", type=int, default=3, help="gateway processes (default 3)")
    parser.add_argument(
        "--orders-per-second", type=float, default=10.0, help="orders of all desks together (default 10)"
    )
    parser.add_argument("--feed-interval", type=float, default=1.0, help="seconds between price rounds (default 1)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the first restart")
    parser.add_argument("--cooldown", type=float, default=5.0, help="seconds of load after the last restart")
    parser.add_argument("--drain-notice", type=float, default=1.0, help="REALTIME_DRAIN_NOTICE_SECONDS (default 1)")
    parser.add_argument("--database", default="drill_aktienanalyse", help="PostgreSQL database, dropped and created")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/13", help="Redis URL (a prefix of the drill's own is used)"
    )
    parser.add_argument("--listen", default="127.0.0.1:18080", help="nginx address")
    parser.add_argument("--first-port", type=int, default=18101, help="port of the first daphne")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.desks < 1 or args.rounds < 0 or args.daphnes < 2 or not args.orders_per_second > 0:
        parser.error("--desks >= 1, --rounds >= 0, --daphnes >= 2 and --orders-per-second > 0")
    return args


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


# The deployment


class Deployment:
    """deploy/run-local.sh on the drill's own database, Redis prefix and ports."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        tag = uuid.uuid4().hex[:8]
        self.run_dir = ROOT / "var" / f"drill-{tag}"
        self.env = {
            **os.environ,
            "PY": sys.executable,
            "DATABASE_URL": f"{args.postgres}/{args.database}",
            "REDIS_URL": args.redis,
            "CHANNEL_LAYER_PREFIX": f"drill-{tag}",
            "BUS_EVENTS_CHANNEL": f"drill-{tag}:events:websocket",
            "BUS_COMMANDS_CHANNEL": f"drill-{tag}:events:user_commands",
            "DAPHNES": str(args.daphnes),
            "FEEDS": "2",
            "FIRST_PORT": str(args.first_port),
            "LISTEN": args.listen,
            "RUN_DIR": str(self.run_dir),
            "MARKET_FEED_INTERVAL": str(args.feed_interval),
            "REALTIME_DRAIN_NOTICE_SECONDS": str(args.drain_notice),
            "REALTIME_MAX_CONNECTIONS_PER_USER": "5",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen | None = None
        self.ports = [args.first_port + i for i in range(args.daphnes)]

    def recreate_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{self.args.postgres}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.database}"')

    def drop_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{self.args.postgres}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = (self.run_dir / "run-local.out").open("w")
        self.process = subprocess.Popen(
            ["bash", str(ROOT / "deploy" / "run-local.sh")],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        urls = [f"http://127.0.0.1:{port}/readyz" for port in self.ports] + [f"http://{self.args.listen}/readyz"]
        while not all(self._ready(url) for url in urls):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the deployment did not come up; see {self.run_dir}/")
            time.sleep(0.5)

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    async def rolling_restart(self) -> float:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(ROOT / "deploy" / "rolling-restart.sh"),
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        (self.run_dir / "rolling-restart.out").open("ab").write(output)
        if process.returncode != 0:
            raise RuntimeError(f"rolling-restart.sh failed:\n{output.decode()}")
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def setup_django(env: dict[str, str]) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CHANNEL_LAYER_PREFIX"):
        os.environ[name] = env[name]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktienanalyse.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_desks(count: int) -> list[tuple[int, str]]:
    """Create `count` traders, each with a portfolio; return (user id, session cookie) per trader."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    from aktienanalyse.roles import TRADER
    from portfolio.services import portfolio_create

    permissions = [
        Permission.objects.get(content_type__app_label=label, codename=codename)
        for label, codename in (name.split(".", 1) for name in TRADER.permissions)
    ]
    desks = []
    for number in range(count):
        user = get_user_model().objects.create_user(f"drill-desk-{number:04d}", is_staff=True)
        user.user_permissions.add(*permissions)
        portfolio_create(name=f"Drill {number:04d}", cash=STARTING_CASH, members=[user])
        client = Client()
        client.force_login(user)
        desks.append((user.pk, f"sessionid={client.cookies['sessionid'].value}"))
    return desks


async def order_flow(desks: list[Desk], rate: float, stop: asyncio.Event) -> int:
    serial = 0
    while not stop.is_set():
        await asyncio.sleep(random.expovariate(rate))
        serial += 1
        await random.choice(desks).place(serial)
    return serial


async def drill(args: argparse.Namespace, deployment: Deployment, desks: list[Desk]) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    tasks = [asyncio.create_task(desk.run()) for desk in desks]
    await asyncio.wait_for(asyncio.gather(*(desk.connected.wait() for desk in desks)), 120)
    stop_orders = asyncio.Event()
    flow = asyncio.create_task(order_flow(desks, args.orders_per_second, stop_orders))
    await asyncio.sleep(args.warmup)  # load before the first restart: a duration by design
    restarts = []
    for _ in range(args.rounds):
        restarts.append(round(await deployment.rolling_restart(), 2))
    await asyncio.sleep(args.cooldown)
    stop_orders.set()
    placed = await flow
    # Every desk connected again, then every order answered (or 30 s).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        all(d.connected.is_set() for d in desks) and all(o.answer is not None for d in desks for o in d.orders.values())
    ):
        await asyncio.sleep(0.2)
    await asyncio.sleep(2 * args.feed_interval)  # the last fills' events and ticks
    for desk in desks:
        desk.stopping = True
    await asyncio.gather(*(desk.ws.close() for desk in desks if desk.ws is not None), return_exceptions=True)
    _, stuck = await asyncio.wait(tasks, timeout=15)
    for task in stuck:  # a desk still in a handshake or a send: its numbers are complete already
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    outages = [back - lost for desk in desks for lost, back, _ in desk.disconnections if back is not None]
    never_back = sum(1 for desk in desks for _, back, _ in desk.disconnections if back is None)
    codes: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for desk in desks:
        codes.update(desk.close_codes)
        errors.update(desk.errors)
    view = await sync_to_async(database_view)(desks, STARTING_CASH)
    report = {
        "desks": len(desks),
        "gateway_processes": args.daphnes,
        "rounds": args.rounds,
        "rolling_restart_seconds": restarts,
        "orders_placed": placed,
        "orders_sent_again": sum(o.sends - 1 for d in desks for o in d.orders.values() if o.sends > 1),
        "orders_answered_with_error": sum(errors.values()),
        "errors_by_code": dict(errors),
        "ticks_received": sum(d.ticks for d in desks),
        "events_lost_seq_gaps": sum(d.gaps for d in desks),
        "epoch_changes": sum(d.epoch_changes for d in desks),
        "replays_refused": sum(d.replays_refused for d in desks),
        "disconnections": len(outages) + never_back,
        "close_codes": {str(code): count for code, count in codes.items()},
        "without_connection_seconds": {
            "p50": percentile(outages, 0.5),
            "p99": percentile(outages, 0.99),
            "max": max(outages) if outages else None,
        },
        **view,
    }
    report["events_lost"] = report["events_lost_seq_gaps"] + report["replays_refused"] + report["fill_events_not_seen"]
    p99 = report["without_connection_seconds"]["p99"]
    report["passed"] = (
        report["orders_lost"] == 0
        and report["orders_duplicated"] == 0
        and report["events_lost"] == 0
        and report["cash_mismatches"] == 0
        and report["position_mismatches"] == 0
        and never_back == 0
        and (p99 is None or p99 <= BACK_WITHIN_SECONDS)
    )
    return report


def main() -> int:
    args = parse_args()
    deployment = Deployment(args)
    print(
        f"drill: {args.desks} desks, {args.daphnes} gateway processes, {args.rounds} restart rounds; "
        f"database {args.database}, logs in {deployment.run_dir}/",
        flush=True,
    )
    deployment.recreate_database()
    try:
        deployment.start()
        setup_django(deployment.env)
        from portfolio.models import Instrument

        symbols = list(Instrument.objects.exclude(last_price=None).values_list("symbol", flat=True))
        desks = [
            Desk(n, user_id, cookie, args.listen, symbols)
            for n, (user_id, cookie) in enumerate(create_desks(args.desks))
        ]
        report = asyncio.run(drill(args, deployment, desks))
    finally:
        deployment.stop()
        if not args.keep:
            if "django" in sys.modules and sys.modules["django"].apps.apps.ready:
                from django.db import connections

                connections.close_all()
            deployment.drop_database()
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
