"""Every screen, every user, in a real browser: Debian's Chromium, driven by Playwright, against real daphne.

The scenarios live in tests/browser/layout.mjs, each in a browser context of its own: the chart's
stored history on load and after a reload, choosing a symbol, the watchlist, no sideways
scrolling and every table within its card at 390, 900 and 1440 px, dark mode, axe-core on desk, login and monitoring, the API docs, the
navigation and icon, and the monitoring panels. Screenshots of the desk in both languages, light
and dark, phone and wide, are written to test-artifacts/ (ignored by git), whose path is printed.
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
from tests.fixtures.servers import BASE_DIR, free_port, in_process_feed_env, start_daphne
from tests.fixtures.trading import TRADER_PERMISSIONS
from tests.fixtures.users import grant
from trading.models import Order

SCRIPT = BASE_DIR / "tests" / "browser" / "layout.mjs"
ARTIFACTS = BASE_DIR / "test-artifacts" / "layout"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def people(django_user_model, sap, siemens):
    """A trader who also monitors, with a position and a resting order to cancel; instruments with history."""
    price_history_seed(points=120, seed=7)
    trader = django_user_model.objects.create_user("anna", password="anna-pass-1234", is_staff=True)
    grant(trader, *TRADER_PERMISSIONS)
    portfolio = portfolio_create(name="Anna", cash=Decimal("100000.00"), members=[trader])
    # A held position, so the positions table has a row to fit into its card.
    Position.objects.create(portfolio=portfolio, instrument=sap, quantity=Decimal("10"), avg_cost=Decimal("100"))
    Order.objects.create(
        portfolio=portfolio,
        instrument=siemens,
        side="buy",
        order_type="limit",
        quantity=Decimal("2"),
        price=Decimal("1.00"),
        status="open",
        placed_by=trader,
    )
    # The one who may: monitoring and system events too.
    grant(trader, "realtime.monitor_gateway", "realtime.view_system_events")
    return trader


@pytest.mark.e2e
def test_every_screen_works_for_every_user_in_chromium(transactional_db, people, tmp_path, capsys):
    # given the tools and a running server with a live price feed
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (make test installs the node packages)"
    for package in ("playwright-core", "axe-core"):
        assert (BASE_DIR / "node_modules" / package).is_dir(), "run `npm ci` (make test does) first"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    server = start_daphne(tmp_path, env=in_process_feed_env(MARKET_FEED_INTERVAL="0.5"), port=free_port())
    script_env = {
        **os.environ,
        "DESK_URL": server.http_url,
        "DESK_USER": "anna",
        "DESK_PASSWORD": "anna-pass-1234",
        "MONITOR_USER": "anna",
        "MONITOR_PASSWORD": "anna-pass-1234",
        "ARTIFACTS": str(ARTIFACTS),
        "CHROMIUM": CHROMIUM,
    }
    try:
        # when the scenarios run
        run = subprocess.run(
            [node, str(SCRIPT)], cwd=BASE_DIR, env=script_env, capture_output=True, text=True, timeout=900
        )
    finally:
        server.stop()

    # then each passed
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, (
        f"the browser script gave no result (exit {run.returncode})\n{run.stderr[-3000:]}\n{server.log()[-3000:]}"
    )
    result = json.loads(lines[-1])["result"]
    failed = [entry for entry in result["scenarios"] if not entry["ok"]]
    report = json.dumps(failed, indent=1, ensure_ascii=False)
    assert not failed, f"browser scenarios failed:\n{report}\n{server.log()[-3000:]}"
    assert result["ok"] and run.returncode == 0
    assert len(result["scenarios"]) >= 20
    screenshots = sorted(ARTIFACTS.glob("desk-*.png"))
    assert len(screenshots) == 8 and all(path.stat().st_size > 10_000 for path in screenshots)
    with capsys.disabled():
        print(f"\nscreenshots of the desk: {ARTIFACTS}")
