"""The deployment of deploy/: nginx in front of two gateway processes, one of which dies."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy.render_nginx import render
from tests.fixtures.bus import live_connect, new_bus, shared_redis_url, spec_price_update
from tests.fixtures.servers import ServerProcess, free_port, wait_for_port


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    assert found, "nginx is missing: `make system-tools` (or apt-get install nginx) installs it"
    return found


@pytest.fixture
def nginx(tmp_path):
    """Start nginx with the config of deploy/ in front of the given ports."""
    started: list[subprocess.Popen] = []

    def start(ports: list[int]) -> ServerProcess:
        port = free_port()
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        config = prefix / "nginx.conf"
        config.write_text(render(ports=ports, listen=f"127.0.0.1:{port}", prefix=prefix, static_root=tmp_path))
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(prefix), "-c", str(config), "-g", "daemon off;"],
            stdout=(prefix / "out.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        wait_for_port(port, process)
        return ServerProcess(port=port, process=process, log_path=prefix / "nginx-error.log")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_clients_of_a_dying_gateway_reconnect_through_the_proxy_to_the_other_and_carry_on(
    gateways, nginx, staff_user, other_staff_user
):
    # given two named gateway processes behind nginx, and clients through it until both have one
    from tests.fixtures.ws import login_cookie

    bus = new_bus(shared_redis_url())
    (process_a,) = gateways(bus, count=1, SERVICE_NAME="gateway-a")
    (process_b,) = gateways(bus, count=1, SERVICE_NAME="gateway-b")
    proxy = nginx([process_a.port, process_b.port])
    cookie = await login_cookie(staff_user)
    clients = {}
    for _ in range(6):
        client = await live_connect(proxy, cookie)
        clients.setdefault(client.received_welcome["source_service"], []).append(client)
    assert set(clients) == {"gateway-a", "gateway-b"}, "nginx should spread connections over both processes"
    survivor = clients["gateway-b"][0]
    await survivor.subscribe("market.price_update")

    # when process A dies
    process_a.process.kill()
    process_a.process.wait()
    victim = clients["gateway-a"][0]

    # then its client's socket ends, it reconnects through the proxy with its client id, lands
    # on B, and receives events; the client on B carries on undisturbed
    await victim.closed(timeout=5)
    started = time.monotonic()
    again = await live_connect(proxy, cookie, victim.client_id)
    assert time.monotonic() - started < 5
    assert again.client_id == victim.client_id
    assert again.received_welcome["source_service"] == "gateway-b"
    await again.subscribe("market.price_update")
    bus.publish(spec_price_update("PROXY", 9.5))
    for client in (again, survivor):
        assert (await client.receive_event("market.price_update"))["data"]["symbol"] == "PROXY"
    assert await survivor.ping("still-here")
    for group in clients.values():
        for client in group:
            await client.close()
    await again.close()


def test_the_proxy_never_marks_a_gateway_process_unavailable(tmp_path):
    # A draining process answers handshakes 503 and a restarting one refuses them; nginx passes
    # each on to the next process (proxy_next_upstream). Marking such a process failed
    # (max_fails > 0) kept every process out after a rolling restart: nginx counts a proxied
    # WebSocket's success only when it ends, so the marks outlived the restart and the desks got
    # 502 "no live upstreams" for a minute (bench/drill.py at 500 desks, docs/benchmarks.md).
    config = render(ports=[8101, 8102, 8103], listen="127.0.0.1:8080", prefix=tmp_path, static_root=tmp_path)
    servers = [line.strip() for line in config.splitlines() if line.strip().startswith("server 127.0.0.1:")]
    assert servers == [f"server 127.0.0.1:{port} max_fails=0;" for port in (8101, 8102, 8103)]
    assert "proxy_next_upstream error timeout http_503;" in config
