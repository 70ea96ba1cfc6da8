"""The desk's trading in Debian's Chromium, one independent scenario per file, each on its own server.

- desk-pnl.mjs: a held position's price, value and P&L move with each tick; a stray Enter sends nothing;
- desk-blotter.mjs: the preview, the open orders with cancel and "cancel all", executions, filters;
- desk-rejection.mjs: a rejection worded in German, then in English;
- desk-offline.mjs: while the server is down an order is refused at once; back within about 2 s, one refresh.

Each script asks for the server to stop or start with an {"action": ...} line and gets "ok".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from decimal import Decimal

import pytest

from market.demo import price_history_seed
from portfolio.models import Position
from portfolio.services import portfolio_create
from tests.fixtures.servers import BASE_DIR, ServerProcess, free_port, in_process_feed_env, start_daphne
from tests.fixtures.trading import TRADER_PERMISSIONS
from tests.fixtures.users import grant
from tests.test_desk_browser import CHROMIUM

SCENARIOS = {
    "desk-pnl.mjs": [
        "the position row shows the portfolio's SAP holding",
        "a tick moves the row's price, value and P&L, and the totals, to the board's price",
        "Enter in a ticket field sends no order; B starts a buy",
    ],
    "desk-blotter.mjs": [
        "a limit buy far below the market is previewed with cost, fees and a warning",
        "Enter confirms: the order is sent, confirmed and rests in the open orders",
        "the open order is modified from the blotter: quantity and price in German notation",
        "the open order is cancelled from the blotter and the history gives the reason",
        "a market buy is listed among the executions with its price and fees",
        "the history filters by symbol and status",
        "'cancel all' cancels every open order",
    ],
    "desk-rejection.mjs": [
        "German: the rejection names the missing cash in German, in the ticket and the history",
        "English: the same rejection in English with English numbers",
    ],
    "desk-offline.mjs": [
        "when the server stops: greyed figures, actions off with the reason, a countdown",
        "an order while disconnected is refused at once",
        "when the server answers again the desk is back within about 2 s, before its backoff would retry",
        "after the reconnect the portfolio is refreshed once, not once per subscription",
    ],
}


@pytest.fixture
def desk_holder(django_user_model, sap, siemens):
    """A trader with 100 000 EUR cash and 10 SAP bought at 100 EUR, and a price history."""
    price_history_seed(points=30, seed=11)
    user = django_user_model.objects.create_user("anna", password="anna-pass-1234", is_staff=True)
    grant(user, *TRADER_PERMISSIONS)
    portfolio = portfolio_create(name="Anna", cash=Decimal("100000.00"), members=[user])
    Position.objects.create(portfolio=portfolio, instrument=sap, quantity=Decimal("10"), avg_cost=Decimal("100"))
    return user


@pytest.mark.e2e
@pytest.mark.parametrize("script", list(SCENARIOS))
def test_desk_trading_scenario_in_chromium(transactional_db, desk_holder, tmp_path, script):
    # given the tools and a running server with a live price feed
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (make test installs the node packages)"
    assert (BASE_DIR / "node_modules" / "playwright-core").is_dir(), "run `npm ci` (make test does) first"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    env = in_process_feed_env(MARKET_FEED_INTERVAL="0.3")
    port = free_port()
    for run in range(2):
        (tmp_path / f"run-{run}").mkdir()
    servers: list[ServerProcess] = [start_daphne(tmp_path / "run-0", env=env, port=port)]
    browser = subprocess.Popen(
        [node, str(BASE_DIR / "tests" / "browser" / script)],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DESK_URL": servers[0].http_url,
            "DESK_USER": "anna",
            "DESK_PASSWORD": "anna-pass-1234",
            "CHROMIUM": CHROMIUM,
        },
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "browser.log").open("w"),
        text=True,
        bufsize=1,
    )
    result = None
    try:
        # when the scenario runs, stopping and starting the server when it asks
        for line in browser.stdout:
            message = json.loads(line)
            if "result" in message:
                result = message["result"]
            elif message.get("action") == "stop-server":
                servers[-1].stop()
                browser.stdin.write("ok\n")
            elif message.get("action") == "start-server":
                servers.append(start_daphne(tmp_path / f"run-{len(servers)}", env=env, port=port))
                browser.stdin.write("ok\n")
            browser.stdin.flush()
        browser.wait(timeout=30)
    finally:
        if browser.poll() is None:
            browser.kill()
            browser.wait()
        servers[-1].stop()

    # then every step passed, in order, without JavaScript errors
    logs = "\n".join(s.log()[-2000:] for s in servers) + (tmp_path / "browser.log").read_text()[-2000:]
    assert result is not None, f"no result from {script} (exit {browser.returncode})\n{logs}"
    assert result["ok"], json.dumps(result, indent=1, ensure_ascii=False) + logs
    assert [step["name"] for step in result["steps"] if step["ok"]] == [
        "login opens the desk and it connects",
        *SCENARIOS[script],
        "no JavaScript errors on the console",
    ]
