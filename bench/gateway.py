"""The benchmarked gateway's set-up, shared by the scripts of bench/: its environment (database,
Redis prefix, production flags), its database with the demo users, its process, and the Node load
generator that drives the clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
PREFIX = f"bench-{uuid.uuid4().hex[:8]}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
SECRET_KEY = "bench-" + uuid.uuid4().hex


class LoadGen:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(BENCH / "loadgen.mjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.process.stdin is not None and self.process.stdout is not None  # both are pipes
        self.stdin, self.stdout = self.process.stdin, self.process.stdout

    def ask(self, **command) -> dict:
        self.stdin.write(json.dumps(command) + "\n")
        self.stdin.flush()
        return json.loads(self.stdout.readline())

    def stop(self) -> None:
        self.stdin.close()
        self.process.wait(10)


def env_for_server() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        CHANNEL_LAYER_PREFIX=PREFIX,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_LOG_LEVEL="WARNING",
        MARKET_FEED_IN_PROCESS="0",
        MARKET_STATUS_INTERVAL="0",
        REALTIME_MAX_CONNECTIONS_PER_USER="100000",
        REALTIME_RATE_LIMIT_PER_SECOND="1000",
        REALTIME_RATE_LIMIT_BURST="1000",
        PYTHONUNBUFFERED="1",
    )
    return env


def create_database() -> None:
    """Create the benchmark's PostgreSQL database afresh, so no run inherits another's orders."""
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    if not name.startswith("bench"):
        sys.exit(
            f"BENCH_DATABASE_URL must name a database of the benchmark's own (bench...), not {name!r}: it is dropped."
        )
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def export_server_env(env: dict[str, str]) -> None:
    """Give this process the database, Redis and Django settings of the server it benchmarks."""
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DATABASE_URL",
                "REDIS_URL",
                "CHANNEL_LAYER_PREFIX",
                "DJANGO_DEBUG",
                "DJANGO_SECRET_KEY",
                "DJANGO_ALLOWED_HOSTS",
                "DJANGO_LOG_LEVEL",
            )
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktienanalyse.settings")


def setup_django() -> tuple[str, str]:
    """Prepare the benchmark database; return session cookies of the desks' user and of the trader.

    The delivery clients are the desks of one staff user ("bench"); the orders come from another
    ("bench-trader", with a portfolio of its own), as on a trading floor where one trader's orders
    concern that trader's sockets and the other desks watch prices.
    """
    env = env_for_server()
    export_server_env(env)
    create_database()
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    for username in ("bench", "bench-trader"):
        subprocess.run(
            [PY, "manage.py", "demo_data", "--username", username],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from portfolio.models import Instrument, Portfolio, Position

    # The order flow alternates buys and sells of one SAP from ten sockets at once: the trader
    # holds enough that a sell which overtakes its buy (commands run side by side) is covered.
    trader_portfolio = Portfolio.objects.filter(members__username="bench-trader").first()
    if trader_portfolio is not None:
        Position.objects.update_or_create(
            portfolio=trader_portfolio,
            instrument=Instrument.objects.get(symbol="SAP"),
            defaults={"quantity": 1000, "avg_cost": 200},
        )

    cookies = []
    for username in ("bench", "bench-trader"):
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return cookies[0], cookies[1]


def start_ours(port: int, log, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [
        PY,
        "-m",
        "realtime.server",
        "-v",
        "0",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "--ping-interval",
        "35",
        "--ping-timeout",
        "30",
        "--websocket_connect_timeout",
        "30",
        "--websocket-max-message-size",
        str(64 * 1024),
        "aktienanalyse.asgi:application",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env or env_for_server(), stdout=log, stderr=subprocess.STDOUT)
