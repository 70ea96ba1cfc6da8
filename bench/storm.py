"""A reconnect storm: N clients of one gateway process (re)connecting at once, against the reference.

Runs the gateway as `make serve` does (`python -m realtime.server`, PostgreSQL, Redis channel
layer with a prefix of its own) and bench/reference_server.py side by side. In each round the
Node load generator (bench/loadgen.mjs, `storm`) opens N clients to one server with `--window`
handshakes in flight, each subscribing to the desk's event types as soon as it is welcomed, and
reports the wall time until the last one is confirmed; then it drops them all and waits for the
server to go quiet. The two servers take turns, the order swapped every round, so both see the
machine at nearly the same time. Round 0 (a small storm on each) warms both up and is not counted.

    .venv/bin/python bench/storm.py --clients 10000 --rounds 3

The database named in STORM_DATABASE_URL (default .../storm) is dropped and created.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

os.environ.setdefault("BENCH_REDIS_URL", os.environ.get("STORM_REDIS_URL", "redis://127.0.0.1:6379/15"))
import gateway  # noqa: E402  (the benchmarked gateway's set-up)
import run  # noqa: E402  (the benchmark's helpers: servers, load generator, CPU figures)

DATABASE_URL = os.environ.get("STORM_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/storm")
EVENT_TYPES = ["market.price_update", "trading.order_filled", "portfolio.update"]


def env_for_server() -> dict[str, str]:
    env = run.env_for_server()
    # Pub/sub channels are not per Redis database: the bus's are the run's own as well.
    env.update(
        DATABASE_URL=DATABASE_URL,
        BUS_KEY_PREFIX=run.PREFIX,
        BUS_EVENTS_CHANNEL=f"{run.PREFIX}:events",
        BUS_COMMANDS_CHANNEL=f"{run.PREFIX}:commands",
    )
    return env


def setup() -> str:
    """Create the storm's database afresh, with the demo data; return a staff session cookie."""
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    env = env_for_server()
    subprocess.run([run.PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [run.PY, "manage.py", "demo_data", "--username", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    gateway.export_server_env(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    return f"sessionid={client.cookies['sessionid'].value}"


def start(kind: str) -> run.Server:
    server = run.Server.__new__(run.Server)
    server.port = run.free_port()
    server.log = open(BENCH / f"storm-{kind}.log", "w")
    if kind == "gateway":
        server.process = run.start_ours(server.port, server.log, env_for_server())
    else:
        command = [
            run.PY,
            str(BENCH / "reference_server.py"),
            "--port",
            str(server.port),
            "--redis",
            run.REDIS_URL,
            "--channel",
            f"{run.PREFIX}-reference",
        ]
        server.process = subprocess.Popen(
            command, cwd=ROOT, env=env_for_server(), stdout=server.log, stderr=subprocess.STDOUT
        )
    server.url, server.origin = f"ws://127.0.0.1:{server.port}/ws/", f"http://127.0.0.1:{server.port}"
    return server


def settle(pid: int, *, below: float = 5.0, timeout: float = 60) -> None:
    """Wait until the server's CPU over half a second is below `below` percent of a core."""
    deadline = time.time() + timeout
    while time.time() < deadline and run.cpu_percent(pid, 0.5) >= below:
        pass


def storm(gen: run.LoadGen, server: run.Server, cookie: str, n: int, window: int) -> dict:
    cpu = run.cpu_seconds(server.pid)
    answer = gen.ask(
        cmd="storm", url=server.url, cookie=cookie, origin=server.origin, n=n, window=window, event_types=EVENT_TYPES
    )
    answer["cpu_seconds"] = run.cpu_seconds(server.pid) - cpu
    gen.ask(cmd="close")
    settle(server.pid)
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=500, help="handshakes in flight at a time")
    parser.add_argument("--only", choices=("gateway", "reference"), help="storm one server only (e.g. to profile)")
    parser.add_argument("--out", type=Path, default=BENCH / "storm.json")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    cookie = setup()
    kinds = [args.only] if args.only else ["gateway", "reference"]
    servers = {kind: start(kind) for kind in kinds}
    gen = run.LoadGen()
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    try:
        for server in servers.values():
            run.wait_port(server.port, server.process)
            print(f"{server.url} pid {server.pid}", file=sys.stderr, flush=True)
        for kind in kinds:  # warm-up: the first socket's one-off work (board, groups, imports)
            storm(gen, servers[kind], cookie, min(200, args.clients), args.window)
        for number in range(args.rounds):
            for kind in kinds if number % 2 == 0 else kinds[::-1]:
                answer = storm(gen, servers[kind], cookie, args.clients, args.window)
                print(f"  round {number + 1} {kind}: {answer}", file=sys.stderr, flush=True)
                results[kind].append(answer)
    finally:
        gen.stop()
        for server in servers.values():
            server.stop()
    print(
        f"\n{args.clients} clients, window {args.window}, event types {', '.join(EVENT_TYPES)}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    for kind, rounds in results.items():
        seconds = [r["seconds"] for r in rounds]
        listed = ", ".join(f"{s:.2f}" for s in seconds)
        cpu = ", ".join(f"{r['cpu_seconds']:.1f}" for r in rounds)
        print(
            f"{kind}: subscribed {[r['subscribed'] for r in rounds]}, seconds {listed}"
            f" (median {statistics.median(seconds):.2f}), server CPU s {cpu}"
        )
    if len(results) == 2:
        ratios = [g["seconds"] / r["seconds"] for g, r in zip(results["gateway"], results["reference"])]
        medians = {kind: statistics.median(r["seconds"] for r in rounds) for kind, rounds in results.items()}
        listed = ", ".join(f"{x:.2f}×" for x in ratios)
        print(f"ratio per round: {listed}; of the medians: {medians['gateway'] / medians['reference']:.2f}×")
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
