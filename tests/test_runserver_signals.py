"""`manage.py runserver` (what `make run` starts) stops promptly on SIGTERM and Ctrl-C while its feed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.market import make_instrument
from tests.fixtures.servers import BASE_DIR, free_port, server_env, wait_for_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STOP_WITHIN = 5.0


def wait_for_log(path: Path, text: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert process.poll() is None, f"runserver exited early:\n{path.read_text(errors='replace')}"
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{path.read_text(errors='replace')}")


def restore_default_sigint() -> None:
    # A process started from a shell job may inherit SIGINT ignored; Ctrl-C must reach this one.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("options", "sig", "to_group"),
    [
        pytest.param((), signal.SIGTERM, False, id="reloader-sigterm"),
        pytest.param((), signal.SIGINT, True, id="reloader-ctrl-c"),
        pytest.param(("--noreload",), signal.SIGTERM, False, id="noreload-sigterm"),
        pytest.param(("--noreload",), signal.SIGINT, True, id="noreload-ctrl-c"),
    ],
)
def test_runserver_with_the_in_process_feed_stops_promptly(tmp_path, options, sig, to_group):
    # given runserver on a free port with its own feed recording rounds back to back, so that a
    # round is nearly always in flight on the database thread when the signal comes
    make_instrument()
    port = free_port()
    log_path = tmp_path / "runserver.log"
    env = server_env(
        MARKET_FEED_IN_PROCESS="1",
        MARKET_FEED_INTERVAL="0.01",
        MARKET_STATUS_INTERVAL="0.2",
        REALTIME_FLOW_LOG_LEVEL="INFO",
    )  # the test watches for the feed's flow lines
    env.pop("REDIS_URL", None)  # the in-process feed runs on the in-memory layer only
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", *options],
        cwd=BASE_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=restore_default_sigint,
    )
    try:
        wait_for_port(port, process)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()  # starts the feed
        wait_for_log(log_path, "event_type=market.price_update", process)

        # when it gets SIGTERM, or Ctrl-C (SIGINT to the terminal's whole process group)
        started = time.monotonic()
        if to_group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)

        # then every process of it has exited within a few seconds
        process.wait(timeout=STOP_WITHIN)
        assert time.monotonic() - started < STOP_WITHIN
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    deadline = time.monotonic() + STOP_WITHIN
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("a runserver child process outlived the signal")
    if "--noreload" in options:
        # the server itself took the signal: it stopped the feed before it stopped its loop
        assert "price feed stopped after" in log_path.read_text(errors="replace")
