"""The monitoring page's JavaScript in a real browser (Debian's chromium over the DevTools protocol)."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from websockets.typing import Origin

from realtime.models import ConnectionTermination
from tests.fixtures.users import grant
from tests.fixtures.ws import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Browser:
    """A headless chromium page driven over the DevTools protocol."""

    def __init__(self, socket):
        self.socket = socket
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        call_id = next(self.ids)
        await self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.socket.recv())
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply.get("result", {})

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{expression!r} stayed false for {timeout}s")
            await asyncio.sleep(0.2)


@pytest.fixture
def chromium(tmp_path):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is needed for the browser tests (scripts/ensure-system-tools.sh installs it)")
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = Path(profile) / "DevToolsActivePort"
    for _ in range(300):
        if port_file.exists() and port_file.read_text().strip():
            break
        if process.poll() is not None:
            pytest.fail("chromium exited at start")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    yield port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def page_socket_url(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        targets = json.load(response)
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def test_monitoring_page_shows_a_connection_opened_after_it_loaded_and_disconnects_it(
    daphne_server, chromium, django_user_model, staff_user
):
    monitor = django_user_model.objects.create_user("mona", password="mona-pass-1234", is_staff=True)
    grant(monitor, "realtime.monitor_gateway")
    monitor_session = session_cookie(monitor).decode().split("=", 1)[1]
    staff_cookie = session_cookie(staff_user).decode()

    async def scenario() -> int | None:
        async with websockets.connect(page_socket_url(chromium), max_size=None) as devtools:
            browser = Browser(devtools)
            await browser.call("Network.enable")
            await browser.call(
                "Network.setCookie", name="sessionid", value=monitor_session, domain="127.0.0.1", path="/"
            )
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=f"{daphne_server.http_url}/monitoring/")
            await browser.wait_for("document.querySelector('#connection-status')?.classList.contains('success')")
            assert await browser.evaluate("document.querySelector('tr[data-client-id=\"late-1\"]') === null")

            async with websockets.connect(
                f"{daphne_server.ws_url}/late-1",
                additional_headers={"Cookie": staff_cookie},
                origin=Origin(f"http://127.0.0.1:{daphne_server.port}"),
            ) as watched:
                await watched.recv()
                await watched.send(
                    '{"type":"subscription","event":"subscribe","data":{"event_types":["market.alert"]}}'
                )
                await watched.recv()
                row = "document.querySelector('tr[data-client-id=\"late-1\"]')"
                cells = await browser.wait_for(
                    f"{row} && {row}.cells[4].textContent === 'market.alert' && [...{row}.cells].map(c => c.textContent)"
                )
                assert cells[0] == "anna" and cells[1] == "late-1"

                # The operator presses "Trennen" and gives a reason in the prompt.
                await browser.evaluate("window.prompt = () => 'browser drill'")
                await browser.evaluate(f"{row}.querySelector('button').click()")
                try:
                    while True:  # until the server closes the socket
                        await asyncio.wait_for(watched.recv(), timeout=15)
                except websockets.ConnectionClosed:
                    pass
                await browser.wait_for("document.querySelector('#notice').textContent.includes('late-1')")
                return watched.close_code

    close_code = asyncio.run(scenario())
    assert close_code == 4009
    record = ConnectionTermination.objects.get()
    assert (record.operator_id, record.client_id, record.reason) == (monitor.pk, "late-1", "browser drill")


ALERT = (
    '{"alert_type":"price","symbol":"SAP","message":"drill","severity":"warning","trigger_value":1.50,'
    '"current_value":2.25,"threshold":1.75,"timestamp":"2026-11-23T10:00:00.000Z"}'
)


def emit_alert(server, correlation_id: str) -> None:
    import sys

    from tests.fixtures.servers import BASE_DIR

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "emit_event",
            "market.alert",
            "--data",
            ALERT,
            "--correlation-id",
            correlation_id,
        ],
        cwd=BASE_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_inspector_streams_filters_pauses_and_exports_json_lines(ops_server, chromium, django_user_model):
    monitor = django_user_model.objects.create_user("mona", password="mona-pass-1234", is_staff=True)
    grant(monitor, "realtime.monitor_gateway")
    monitor_session = session_cookie(monitor).decode().split("=", 1)[1]

    async def scenario():
        async with websockets.connect(page_socket_url(chromium), max_size=None) as devtools:
            browser = Browser(devtools)
            await browser.call(
                "Network.setCookie", name="sessionid", value=monitor_session, domain="127.0.0.1", path="/"
            )
            # German, whatever the browser's own language (the English page is tested below)
            await browser.call("Network.setCookie", name="django_language", value="de", domain="127.0.0.1", path="/")
            await browser.call("Page.navigate", url=f"{ops_server.http_url}/monitoring/inspector/")
            await browser.wait_for("document.querySelector('#connection-status')?.classList.contains('success')")
            # A first visit opens with every type but the price ticks chosen.
            assert await browser.evaluate("document.querySelector('input[value=\"market.alert\"]').checked")
            assert not await browser.evaluate("document.querySelector('input[value=\"market.price_update\"]').checked")
            items = "document.querySelectorAll('#stream li').length"
            for attempt in range(20):  # until the subscription is in place
                await asyncio.to_thread(emit_alert, ops_server, f"first-{attempt}")
                try:
                    await browser.wait_for(f"{items} > 0", timeout=3)
                    break
                except AssertionError:
                    continue
            await asyncio.to_thread(emit_alert, ops_server, "second-1")
            await browser.wait_for("document.querySelector('#stream li summary').textContent.includes('second-1')")

            await browser.evaluate(
                "const f = document.querySelector('#filter-correlation'); f.value = 'second'; f.dispatchEvent(new Event('input'))"
            )
            assert await browser.evaluate(items) == 1

            await browser.evaluate("document.querySelector('#pause').click()")
            await asyncio.to_thread(emit_alert, ops_server, "second-2")
            await browser.wait_for(
                "document.querySelector('#stream-count').textContent.includes('1 während der Pause')"
            )
            assert await browser.evaluate(items) == 1  # paused: nothing new shown
            await browser.evaluate("document.querySelector('#pause').click()")
            assert await browser.evaluate(items) == 2  # resumed: the held event appears

            await browser.evaluate(
                "window.__exported = []; URL.createObjectURL = (blob) => { window.__exported.push(blob); return 'blob:none'; }"
            )
            await browser.evaluate("document.querySelector('#export').click()")
            result = await browser.call(
                "Runtime.evaluate", expression="window.__exported[0].text()", awaitPromise=True, returnByValue=True
            )
            return result["result"]["value"]

    exported = asyncio.run(scenario())
    lines = exported.strip().split("\n")
    assert [json.loads(line)["correlation_id"] for line in lines] == ["second-1", "second-2"]
    assert all('"trigger_value":1.50' in line for line in lines)  # the frames exactly as sent


@pytest.mark.parametrize(
    "language, texts",
    [
        (
            "de",
            {
                "status": "Verbunden",
                "database": "Datenbank",
                "trend": "Events pro Sekunde",
                "button": "Trennen",
                "refusal": "Dafür fehlt Ihnen die Berechtigung.",
                "heading": "Fachliche Ablehnungen",
            },
        ),
        (
            "en",
            {
                "status": "Connected",
                "database": "Database",
                "trend": "Events per second",
                "button": "Disconnect",
                "refusal": "You do not have permission for this.",
                "heading": "Business refusals",
            },
        ),
    ],
)
def test_monitoring_page_speaks_the_chosen_language_in_its_live_texts_and_the_servers_refusals(
    daphne_server, chromium, django_user_model, staff_user, language, texts
):
    monitor = django_user_model.objects.create_user("mona", password="mona-pass-1234", is_staff=True)
    grant(monitor, "realtime.monitor_gateway", "realtime.view_system_events")  # the health panel needs the latter
    monitor_session = session_cookie(monitor).decode().split("=", 1)[1]
    staff_cookie = session_cookie(staff_user).decode()

    async def scenario() -> dict:
        async with websockets.connect(page_socket_url(chromium), max_size=None) as devtools:
            browser = Browser(devtools)
            for name, value in (("sessionid", monitor_session), ("django_language", language)):
                await browser.call("Network.setCookie", name=name, value=value, domain="127.0.0.1", path="/")
            await browser.call("Page.navigate", url=f"{daphne_server.http_url}/monitoring/")
            await browser.wait_for("document.querySelector('#connection-status')?.classList.contains('success')")
            async with websockets.connect(
                f"{daphne_server.ws_url}/refused-1",
                additional_headers={"Cookie": staff_cookie},
                origin=Origin(f"http://127.0.0.1:{daphne_server.port}"),
            ) as watched:
                await watched.recv()
                # a staff member without the monitoring permission tries to disconnect someone: a refusal
                await watched.send(
                    '{"type":"user","event":"disconnect_client","data":{"client_id":"x"},"correlation_id":"refused-cmd"}'
                )
                await watched.recv()
                await browser.wait_for("document.querySelector('#refusals tr') !== null")
                await browser.wait_for("document.querySelector('#health li[data-service=\"database\"]') !== null")
                await browser.wait_for("document.querySelector('tr[data-client-id=\"refused-1\"] button') !== null")
                return await browser.evaluate(
                    """({
                      status: document.querySelector('#connection-status').textContent,
                      database: document.querySelector('#health li[data-service="database"] .name').textContent,
                      trend: document.querySelector('#sparklines figcaption span').textContent,
                      button: document.querySelector('tr[data-client-id="refused-1"] button').textContent,
                      refusal: [...document.querySelectorAll('#refusals tr')]
                        .find((row) => row.cells[3].textContent === 'refused-cmd').cells[4].textContent,
                      heading: [...document.querySelectorAll('h2')].map((h) => h.textContent.trim())
                        .find((text) => text === 'Fachliche Ablehnungen' || text === 'Business refusals'),
                      lang: document.documentElement.lang,
                    })"""
                )

    shown = asyncio.run(scenario())
    assert shown.pop("lang") == language
    assert shown == texts
