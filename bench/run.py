"""`make bench`: the gateway under daphne against a bare `websockets` reference, side by side.

Starts the project under daphne (production flags, Redis channel layer with a prefix of its own,
PostgreSQL) and bench/reference_server.py side by side; opens clients from the Node load generator
(bench/loadgen.mjs); publishes price ticks; prints deliveries/s, latency, loss, server CPU per
delivery and RSS per connection, and our figures as ratios to the reference. The idle scenario
runs on one server at a time; burst and steady run in rounds that alternate between the two.
Loopback only; each scenario is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

from gateway import BENCH, PREFIX, PY, REDIS_URL, ROOT, LoadGen, env_for_server, setup_django, start_ours
from processes import cpu_percent, cpu_seconds, free_port, rss_bytes, stop, wait_port
from publishers import OurPublisher, ReferencePublisher, publish
from report import table, targets

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
BURST = int(os.environ.get("BENCH_BURST_EVENTS", "200"))
IDLE_CONNECT_SECONDS = int(os.environ.get("BENCH_IDLE_CONNECT_SECONDS", "150"))  # bound on opening them
STEADY_RATE = 10
STEADY_SECONDS = int(os.environ.get("BENCH_STEADY_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # of burst and steady, the servers taking turns
LOOP = asyncio.new_event_loop()


def settle(gen: LoadGen, expected: int, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        report = gen.ask(cmd="report")
        if report["received"] >= expected or time.time() > deadline:
            return report
        time.sleep(0.2)


def run_events(name: str, gen: LoadGen, pid: int, publisher, count: int, rate: float | None, clients: int) -> dict:
    gen.ask(cmd="reset")
    cpu = cpu_seconds(pid)
    started = time.time()
    LOOP.run_until_complete(publish(publisher, count, rate))
    report = settle(gen, count * clients, timeout=30 if rate is None else 15)
    elapsed = time.time() - started
    used = cpu_seconds(pid) - cpu
    print(f"  {name}: {report}", file=sys.stderr, flush=True)
    expected = count * clients  # the clients of this server that read (the loadgen also holds the other's)
    return {
        "scenario": name,
        "deliveries": report["received"],
        "expected": expected,
        "lost": expected - report["received"],
        "deliveries_per_s": report["received"] / elapsed,
        "p50_ms": report["p50_ms"],
        "p99_ms": report["p99_ms"],
        "max_ms": report["max_ms"],
        "cpu_seconds": used,
        "cpu_us_per_delivery": used * 1e6 / max(report["received"], 1),
        "rss_mb": rss_bytes(pid) / 2**20,
        "closes": report["closes"],
        "paused_received": report["paused_received"],
    }


def combine(rounds: list[dict]) -> dict:
    """One scenario's rounds as one figure: totals, CPU over all deliveries, the worst round's p99
    and maximum, the median round's p50 and p99 (`p99_ms_median`), and each round's CPU."""
    deliveries = sum(r["deliveries"] for r in rounds)
    expected = sum(r["expected"] for r in rounds)
    cpu = sum(r["cpu_seconds"] for r in rounds)

    def worst(key):
        values = [r[key] for r in rounds if r[key] is not None]
        return max(values) if values else None

    return {
        "scenario": rounds[0]["scenario"],
        "rounds": len(rounds),
        "deliveries": deliveries,
        "expected": expected,
        "lost": expected - deliveries,
        "deliveries_per_s": statistics.median(r["deliveries_per_s"] for r in rounds),
        "p50_ms": statistics.median(r["p50_ms"] or 0 for r in rounds),
        "p99_ms": worst("p99_ms"),
        "p99_ms_median": statistics.median(r["p99_ms"] or 0 for r in rounds),
        "max_ms": worst("max_ms"),
        "cpu_seconds": cpu,
        "cpu_us_per_delivery": cpu * 1e6 / max(deliveries, 1),
        "cpu_us_per_round": [r["cpu_us_per_delivery"] for r in rounds],
        "rss_mb": rounds[-1]["rss_mb"],
        "closes": rounds[-1]["closes"],
        "paused_received": rounds[-1]["paused_received"],
    }


class Server:
    """One server under test: its process, address, publisher and log."""

    def __init__(self, kind: str) -> None:
        self.port = free_port()
        self.log = open(BENCH / f"{kind}.log", "w")
        self.publisher: OurPublisher | ReferencePublisher
        if kind == "ours":
            self.publisher = OurPublisher()
            self.process = start_ours(self.port, self.log)
        else:
            channel = f"{PREFIX}-reference"
            self.publisher = ReferencePublisher(channel, REDIS_URL)
            command = [
                PY,
                str(BENCH / "reference_server.py"),
                "--port",
                str(self.port),
                "--redis",
                REDIS_URL,
                "--channel",
                channel,
            ]
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env_for_server(), stdout=self.log, stderr=subprocess.STDOUT
            )
        self.url, self.origin = f"ws://127.0.0.1:{self.port}/ws/", f"http://127.0.0.1:{self.port}"
        self.first = 0  # the loadgen index of this server's first delivery client

    @property
    def pid(self) -> int:
        return self.process.pid

    def connect(self, gen: LoadGen, cookie: str, n: int, **options) -> dict:
        return gen.ask(
            cmd="connect", url=self.url, cookie=cookie, origin=self.origin, n=n, subscribe=True, batch=50, **options
        )

    def stop(self) -> None:
        stop(self.process, self.log)


def run_idle(gen: LoadGen, server: Server, cookie: str) -> dict:
    """Idle capacity: IDLE connections that only hold a subscription, then all closed again."""
    base = rss_bytes(server.pid)
    begun = time.time()
    answer = server.connect(gen, cookie, IDLE, deadline_s=IDLE_CONNECT_SECONDS)
    connect_seconds = time.time() - begun
    time.sleep(2)
    rss = rss_bytes(server.pid)
    # First with the spec client's heartbeat (every 30 s, staggered), then with the clients
    # sending nothing at all: what holding the sockets costs, apart from answering them.
    heartbeat_cpu = cpu_percent(server.pid, 10)
    gen.ask(cmd="quiet")
    time.sleep(2)
    idle = {
        "connections": answer["connected"],
        "rss_kb_per_connection": (rss - base) / 1024 / max(answer["connected"], 1),
        "idle_cpu_percent": cpu_percent(server.pid, 5),
        "heartbeat_cpu_percent": heartbeat_cpu,
    }
    gen.ask(cmd="close")
    time.sleep(2)
    return {"idle": idle, "connect_seconds": connect_seconds}


def run_delivery(gen: LoadGen, servers: dict[str, Server]) -> dict[str, dict]:
    """Burst and steady, in ROUNDS rounds that take the two servers in turns, the order swapped
    every round: both see the same machine at nearly the same time, so the ratio does not follow
    whatever else the machine was doing in the minute one of them ran alone."""
    rounds: dict[str, dict[str, list[dict]]] = {kind: {"burst": [], "steady": []} for kind in servers}
    kinds = list(servers)
    for number in range(ROUNDS):
        order = kinds if number % 2 == 0 else kinds[::-1]
        for scenario, count, rate in (("burst", BURST, None), ("steady", STEADY_RATE * STEADY_SECONDS, STEADY_RATE)):
            for kind in order:
                server = servers[kind]
                result = run_events(
                    f"{scenario} {kind} {number + 1}", gen, server.pid, server.publisher, count, rate, CLIENTS
                )
                rounds[kind][scenario].append(result)
    return {
        kind: {scenario: combine(runs) for scenario, runs in by_scenario.items()}
        for kind, by_scenario in rounds.items()
    }


def run_slow(gen: LoadGen, server: Server) -> dict:
    """One of the server's clients stops reading while the others take twice the steady rate."""
    gen.ask(cmd="pause", clients=[server.first])
    rss_before = rss_bytes(server.pid)
    slow = run_events(
        "slow", gen, server.pid, server.publisher, STEADY_RATE * STEADY_SECONDS * 2, STEADY_RATE * 2, CLIENTS - 1
    )
    slow["rss_growth_mb"] = (rss_bytes(server.pid) - rss_before) / 2**20
    return slow


def run_all(gen: LoadGen, cookie: str, trader: str) -> tuple[dict, dict]:
    """Every scenario on both servers, which run side by side for the whole benchmark."""
    servers: dict[str, Server] = {}
    results: dict[str, dict] = {"ours": {}, "reference": {}}
    try:
        for kind in results:
            servers[kind] = Server(kind)
        for server in servers.values():
            wait_port(server.port, server.process)
        for kind in ("reference", "ours"):  # one at a time: the other server holds no clients meanwhile
            results[kind].update(run_idle(gen, servers[kind], cookie))
        for server in servers.values():  # ours first: indices 0 .. CLIENTS-1
            server.first = server.connect(gen, cookie, CLIENTS)["total"] - CLIENTS
        time.sleep(1)
        for kind, figures in run_delivery(gen, servers).items():
            results[kind].update(figures)
        for kind in ("reference", "ours"):
            results[kind]["slow"] = run_slow(gen, servers[kind])
        commands = int(os.environ.get("BENCH_COMMANDS", "1000"))
        ours = servers["ours"]
        total = ours.connect(gen, trader, 10)["total"]
        senders = list(range(total - 10, total))  # the trader's sockets on ours
        results["ours"]["commands"] = run_orders_beside_prices(gen, ours, senders, commands)
        results["ours"]["commands_two"] = run_commands_on_two(gen, trader, commands, first=ours)
        gen.ask(cmd="close")
    finally:
        for server in servers.values():
            server.stop()
    return results["ours"], results["reference"]


def run_orders_beside_prices(gen: LoadGen, ours: Server, senders: list[int], commands: int, rate: int = 100) -> dict:
    """`place_order` at `rate`/s from the trader's sockets while the desks take ticks at STEADY_RATE.

    The ticks run twice for as long as the orders take: alone, then beside the orders, so the
    desks' price latency while orders flow compares with its value on the same server a moment
    before. Every reading client of ours takes each tick: the desks but the paused reader, and
    the trader's sockets.
    """
    seconds = commands / rate
    ticks = int(STEADY_RATE * seconds)
    readers = CLIENTS - 1 + len(senders)
    alone = run_events("prices alone", gen, ours.pid, ours.publisher, ticks, STEADY_RATE, readers)
    gen.ask(cmd="reset")
    publishing = threading.Thread(
        target=lambda: LOOP.run_until_complete(publish(ours.publisher, ticks, STEADY_RATE)), name="bench-ticks"
    )
    cpu = cpu_seconds(ours.pid)
    publishing.start()
    answers = gen.ask(cmd="commands", n=commands, rate=rate, clients=senders, symbol="SAP")
    publishing.join()
    beside = settle(gen, ticks * readers, timeout=15)
    used = cpu_seconds(ours.pid) - cpu
    print(f"  prices beside orders: {beside}", file=sys.stderr, flush=True)
    return {
        **answers,
        # The gateway's CPU over the orders and the ticks beside them, less the ticks' share as
        # measured alone: what one order costs the process, all of it (command, transaction,
        # events, deliveries).
        "cpu_ms_per_order": round((used - alone["cpu_seconds"]) * 1000 / commands, 2),
        "prices_alone": {key: alone[key] for key in ("deliveries", "expected", "p50_ms", "p99_ms", "max_ms")},
        "prices_beside": {
            "deliveries": beside["received"],
            "expected": ticks * readers,
            "p50_ms": beside["p50_ms"],
            "p99_ms": beside["p99_ms"],
            "max_ms": beside["max_ms"],
        },
    }


def run_commands_on_two(gen: LoadGen, trader: str, commands: int, *, first: Server) -> dict:
    """The command round trips again with a second gateway process beside the first, as production
    runs one per core behind the proxy: 5 of the trader's 10 sockets on each (the proxy's share)."""
    port = free_port()
    log = open(BENCH / "ours-second.log", "w")
    second = start_ours(port, log)
    try:
        wait_port(port, second)
        first.connect(gen, trader, 5)
        opened = gen.ask(
            cmd="connect",
            url=f"ws://127.0.0.1:{port}/ws/",
            cookie=trader,
            origin=f"http://127.0.0.1:{port}",
            n=5,
            subscribe=True,
            batch=5,
        )
        indices = list(range(opened["total"] - 10, opened["total"]))
        return gen.ask(cmd="commands", n=commands, rate=100, clients=indices, symbol="SAP")
    finally:
        stop(second, log)


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    cookie, trader = setup_django()
    gen = LoadGen()
    try:
        started = time.time()
        ours, ref = run_all(gen, cookie, trader)
    finally:
        gen.stop()
    out = table(ours, ref)
    print(f"\n{CLIENTS} clients, {IDLE} idle connections, {os.cpu_count()} CPUs, took {time.time() - started:.0f} s\n")
    print(out)
    print("\nServer CPU µs per delivery in each round, gateway / reference:")
    for name in ("burst", "steady"):
        pairs = zip(ours[name]["cpu_us_per_round"], ref[name]["cpu_us_per_round"])
        print(f"- {name}: " + ", ".join(f"{a:.1f} / {b:.1f} ({a / b:.2f}×)" for a, b in pairs))
    print("\nTargets:")
    print("\n".join(targets(ours, ref)))
    (BENCH / "results.json").write_text(json.dumps({"ours": ours, "reference": ref}, indent=2, default=str))


if __name__ == "__main__":
    main()
