"""The desk in a real browser: Debian's Chromium, driven by Playwright, against real daphne.

The scenario lives in tests/browser/desk.mjs; this test owns the processes. It starts daphne
(and, on Redis, the market feed as its own process) on the test database, runs the script,
stops and restarts daphne when the script asks, and asserts the script's result. A screenshot
of the desk is kept in test-artifacts/desk.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from market.demo import price_history_seed
from portfolio.services import portfolio_create
from tests.fixtures.servers import BASE_DIR, ServerProcess, free_port, server_env, start_daphne
from tests.fixtures.trading import TRADER_PERMISSIONS
from tests.fixtures.users import grant
from trading.models import Order

SCRIPT = BASE_DIR / "tests" / "browser" / "desk.mjs"
SCREENSHOT = BASE_DIR / "test-artifacts" / "desk.png"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def redis_layer() -> bool:
    return not settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")


@pytest.fixture
def desk_trader(django_user_model, sap, siemens):
    """A staff member with a password, the trading permissions and a portfolio with cash.

    The instruments get a price history long enough for the default technical analysis.
    """
    price_history_seed(points=80, seed=5)
    user = django_user_model.objects.create_user("anna", password="anna-pass-1234", is_staff=True)
    grant(user, *TRADER_PERMISSIONS, "realtime.announce")  # the scenario announces from the page
    portfolio = portfolio_create(name="Anna", cash=Decimal("100000.00"), members=[user])
    # A page and a bit of earlier, cancelled orders, so the history has a second page.
    Order.objects.bulk_create(
        Order(
            portfolio=portfolio,
            instrument=siemens,
            side="buy",
            order_type="limit",
            quantity=Decimal("1"),
            price=Decimal("100.00"),
            status="cancelled",
            placed_by=user,
        )
        for _ in range(30)
    )
    return user


def start_feed(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """Run the market feed as its own process (as in production with Redis)."""
    log = (tmp_path / "feed.log").open("w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "market_feed", "--interval", "0.3"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.e2e
def test_desk_in_chromium_trades_live_and_survives_a_server_restart(transactional_db, desk_trader, tmp_path):
    # given the tools, a trader, and a running server with a live price feed
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (make test installs the node packages)"
    assert (BASE_DIR / "node_modules" / "playwright-core").is_dir(), "run `npm ci` (make test does) first"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    env = server_env(MARKET_FEED_INTERVAL="0.3", MARKET_FEED_IN_PROCESS="1")
    port = free_port()
    runs = [tmp_path / "first", tmp_path / "second"]
    for run in runs:
        run.mkdir()
    server: ServerProcess | None = start_daphne(runs[0], env=env, port=port)
    feed = start_feed(tmp_path, env) if redis_layer() else None
    servers = [server]
    script_env = {
        **os.environ,
        "DESK_URL": server.http_url,
        "DESK_USER": "anna",
        "DESK_PASSWORD": "anna-pass-1234",
        "DESK_SCREENSHOT": str(SCREENSHOT),
        "CHROMIUM": CHROMIUM,
    }
    script_log = (tmp_path / "browser.log").open("w")
    browser = subprocess.Popen(
        [node, str(SCRIPT)],
        cwd=BASE_DIR,
        env=script_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=script_log,
        text=True,
        bufsize=1,
    )
    result = None
    try:
        # when the scenario runs, stopping and restarting the server when it asks
        for line in browser.stdout:
            message = json.loads(line)
            if "result" in message:
                result = message["result"]
            elif message.get("action") == "stop-server":
                server.stop()
                browser.stdin.write("ok\n")
            elif message.get("action") == "start-server":
                server = start_daphne(runs[1], env=env, port=port)
                servers.append(server)
                browser.stdin.write("ok\n")
            browser.stdin.flush()
        browser.wait(timeout=30)
    finally:
        if browser.poll() is None:
            browser.kill()
            browser.wait()
        server.stop()
        if feed is not None:
            feed.terminate()
            feed.wait(timeout=10)

    # then every step passed, with no JavaScript errors, and the screenshot was taken
    logs = "\n".join(s.log()[-3000:] for s in servers) + (tmp_path / "browser.log").read_text()[-3000:]
    assert result is not None, f"the browser script gave no result (exit {browser.returncode})\n{logs}"
    report = json.dumps(result, indent=1, ensure_ascii=False)
    assert result["ok"], f"browser scenario failed:\n{report}\n{logs}"
    assert browser.returncode == 0
    passed = [step["name"] for step in result["steps"] if step["ok"]]
    assert "prices change live and flash" in passed
    assert "an operator's announcement shows on the desk as a notification" in passed
    assert "when it is back the desk reconnects with its subscriptions" in passed
    assert "while disconnected the order controls are off with the reason and an order is refused at once" in passed
    assert "no JavaScript errors on the console" in passed
    assert "every page runs under the Content-Security-Policy without violations" in passed
    assert SCREENSHOT.stat().st_size > 10_000
