"""The desk's analysis panel in a real browser explains a fundamental and a sentiment result.

The scenario lives in tests/browser/analysis.mjs; this test starts daphne on the test database
with the demo figures and headlines, and keeps a screenshot in test-artifacts/desk-analysis.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from market.demo import demo_market_data_seed
from market.demo import price_history_seed
from tests.fixtures.servers import BASE_DIR, server_env, start_daphne
from tests.fixtures.trading import TRADER_PERMISSIONS
from tests.fixtures.users import grant
from tests.test_desk_browser import CHROMIUM

SCRIPT = BASE_DIR / "tests" / "browser" / "analysis.mjs"
SCREENSHOT = BASE_DIR / "test-artifacts" / "desk-analysis.png"


@pytest.mark.e2e
def test_the_analysis_panel_shows_the_metrics_table_and_the_headlines(transactional_db, django_user_model, tmp_path):
    # given the tools, a trader and the demo instruments with figures and headlines
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (make test installs the node packages)"
    assert (BASE_DIR / "node_modules" / "playwright-core").is_dir(), "run `npm ci` (make test does) first"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    price_history_seed(points=60, seed=3)
    demo_market_data_seed()
    grant(django_user_model.objects.create_user("anna", password="anna-pass-1234", is_staff=True), *TRADER_PERMISSIONS)
    server = start_daphne(tmp_path, env=server_env())
    try:
        # when the browser asks for a fundamental, then a sentiment analysis of SAP
        finished = subprocess.run(
            [node, str(SCRIPT)],
            cwd=BASE_DIR,
            env={
                **os.environ,
                "DESK_URL": server.http_url,
                "DESK_USER": "anna",
                "DESK_PASSWORD": "anna-pass-1234",
                "DESK_SCREENSHOT": str(SCREENSHOT),
                "CHROMIUM": CHROMIUM,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()

    # then each result is explained on the page, without JavaScript errors
    lines = finished.stdout.strip().splitlines()
    assert lines, f"no result from the browser script (exit {finished.returncode}): {finished.stderr[-2000:]}"
    result = json.loads(lines[-1])["result"]
    assert result["ok"], json.dumps(result, indent=1, ensure_ascii=False) + server.log()[-3000:]
    assert [step["name"] for step in result["steps"] if step["ok"]] == [
        "login opens the desk and it connects",
        "a fundamental analysis shows the metrics table, marked as demo data",
        "a sentiment analysis shows the headlines with their scores",
        "German: a technical and a fundamental result give their findings in German words and numbers",
        "English: the same results in English words and numbers after switching the language",
        "no JavaScript errors on the console",
    ]
    assert SCREENSHOT.stat().st_size > 5_000
    assert SCREENSHOT.with_name("desk-analysis-en.png").stat().st_size > 5_000
