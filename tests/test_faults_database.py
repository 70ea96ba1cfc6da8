"""PostgreSQL going away under a running gateway: commands answer errors, sockets live on, service resumes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.fixtures.servers import BASE_DIR, free_port, start_daphne

pytestmark = pytest.mark.e2e

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


class OwnPostgres:
    """A PostgreSQL server of the test's own, which it may stop and start."""

    def __init__(self, root: Path, bin_dir: Path):
        self.bin = bin_dir
        self.dir = root / "pgdata"
        self.port = free_port()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root; its directory belongs to postgres
            shutil.chown(root, "postgres", "postgres")
        subprocess.run(
            as_postgres(str(self.bin / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
        )
        self.start()
        subprocess.run(
            as_postgres(
                str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "gateway"
            ),
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/gateway"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            as_postgres(
                str(self.bin / "pg_ctl"), "-D", str(self.dir), "-o", options, "-w", "-l", str(self.dir / "log"), "start"
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop"),
            check=True,
            capture_output=True,
        )


@pytest.fixture
def own_postgres():
    if PG_BIN is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.fail("PostgreSQL server binaries are needed for the database fault test")
    root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))  # outside pytest's private tmp: postgres must reach it
    server = OwnPostgres(root, PG_BIN)
    yield server
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(root, ignore_errors=True)


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


LOGIN = (
    "from django.contrib.auth import get_user_model; from django.test import Client; "
    "get_user_model().objects.create_user('pia', password='pia-pass-12345', is_staff=True, is_superuser=True); "
    "c = Client(); c.force_login(get_user_model().objects.get(username='pia')); print(c.cookies['sessionid'].value)"
)


def test_commands_answer_errors_while_the_database_is_down_and_work_again_after(own_postgres, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=own_postgres.url, DJANGO_DEBUG="1", REALTIME_IDLE_TIMEOUT_SECONDS="600")
    manage(env, "migrate", "--noinput")
    session = manage(env, "shell", "-c", LOGIN).strip().splitlines()[-1]
    manage(env, "demo_data")
    server = start_daphne(tmp_path, env=env)
    headers = {"Cookie": f"sessionid={session}"}

    async def command(ws, name: str, data: dict, correlation_id: str) -> dict:
        await ws.send(json.dumps({"type": "user", "event": name, "data": data, "correlation_id": correlation_id}))
        async with asyncio.timeout(20):
            while True:
                message = json.loads(await ws.recv(), parse_float=Decimal)
                if message.get("correlation_id") == correlation_id:
                    return message

    async def scenario() -> None:
        async with connect(server.ws_url + "/", additional_headers=headers, origin=server.http_url) as ws:
            await ws.recv()
            before = await command(ws, "refresh_portfolio", {}, "before")
            assert before["data"]["status"] == "success", before

            await asyncio.to_thread(own_postgres.stop)
            during = await command(
                ws,
                "place_order",
                {"symbol": "SAP", "side": "buy", "quantity": 1, "order_type": "market", "price": None},
                "during",
            )
            assert during["data"]["status"] == "error"
            assert during["data"]["result"]["code"] == "service_unavailable"
            assert "Traceback" not in json.dumps(during)
            pong = await command(ws, "get_connection_info", {}, "alive")  # the socket and the process live on
            assert pong["data"]["status"] == "success"

            await asyncio.to_thread(own_postgres.start)
            after = await command(ws, "refresh_portfolio", {}, "after")
            assert after["data"]["status"] == "success", after

    try:
        asyncio.run(scenario())
        assert server.process.poll() is None
    finally:
        server.stop()
    assert "Traceback" not in "".join(line for line in server.log().splitlines(True) if "service_unavailable" in line)
