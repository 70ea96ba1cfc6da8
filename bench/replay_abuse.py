"""`make bench` (replay abuse): a neighbour's command latency while one user abuses replay.

One gateway process under daphne, production rate limits (20 messages/s, bursts of 60). The
history of `market.price_update` is filled to its limit. A neighbour sends `refresh_portfolio` ten
times a second and times each answer: first on a quiet gateway, then while one other user holds
five sockets that alternate `unsubscribe` and `subscribe` with `since` at the oldest kept event,
as fast as the rate limit lets them, reading everything sent. The same runs on a second gateway
whose replay budget is lifted, to show what the budget saves. Figures are printed as a table and
compared within the run: the neighbour's latency under abuse over its latency when idle.

The abusing user runs in a process of its own, so that decoding its frames does not slow the
neighbour's client loop.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as base  # noqa: E402  the gateway set-up of `make bench`
from processes import cpu_seconds, free_port, stop, wait_port  # noqa: E402
from publishers import tick  # noqa: E402

ABUSE_SOCKETS = int(os.environ.get("BENCH_ABUSE_SOCKETS", "5"))
SECONDS = float(os.environ.get("BENCH_ABUSE_SECONDS", "20"))
COMMAND_RATE = 10  # the neighbour's commands a second
HISTORY = 1000  # events of the replayed type kept (REALTIME_HISTORY_MAX_EVENTS)
CYCLES_PER_SECOND = 9  # unsubscribe + subscribe pairs per abusing socket: 18 messages/s, under 20/s
UNLIMITED = str(10**9)


def server_env(*, budget: bool) -> dict[str, str]:
    env = base.env_for_server()
    env.update(
        REALTIME_RATE_LIMIT_PER_SECOND="20", REALTIME_RATE_LIMIT_BURST="60", REALTIME_HISTORY_MAX_EVENTS=str(HISTORY)
    )
    if not budget:
        env.update(REALTIME_REPLAY_BUDGET=UNLIMITED, REALTIME_REPLAY_BUDGET_PER_USER=UNLIMITED)
    return env


def abuser_cookie() -> str:
    """A second trader beside `bench`, in the same groups: the one who abuses replay."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    users = get_user_model()
    bench = users.objects.get(username="bench")
    abuser, _ = users.objects.get_or_create(username="bench-abuser", defaults={"is_staff": True})
    abuser.groups.set(bench.groups.all())
    client = Client()
    client.force_login(abuser)
    return f"sessionid={client.cookies['sessionid'].value}"


async def fill_history() -> None:
    from realtime.delivery.dispatch import asend_event

    for n in range(HISTORY):
        await asend_event("market.price_update", tick(n))


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def neighbour(url: str, origin: str, cookie: str, seconds: float) -> dict:
    """Send refresh_portfolio COMMAND_RATE times a second for `seconds`; time every answer."""
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    latencies: list[float] = []
    slow: list[tuple[float, float]] = []  # (seconds into the phase, ms) of answers over 2x the median so far
    failed = 0
    async with connect(url, additional_headers={"Cookie": cookie}, origin=Origin(origin), max_size=2**22) as ws:
        await ws.recv()  # connection.established
        started = time.perf_counter()
        n = 0
        while time.perf_counter() - started < seconds:
            due = started + n / COMMAND_RATE
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            correlation = f"n{n}"
            sent = time.perf_counter()
            await ws.send(
                json.dumps({"type": "user", "event": "refresh_portfolio", "data": {}, "correlation_id": correlation})
            )
            while True:
                message = json.loads(await ws.recv())
                if message.get("correlation_id") == correlation and message["event"] in (
                    "refresh_portfolio.response",
                    "error",
                ):
                    break
            latencies.append((time.perf_counter() - sent) * 1000)
            if len(latencies) > 10 and latencies[-1] > 2 * statistics.median(latencies):
                slow.append((round(sent - started, 2), round(latencies[-1], 1)))
            failed += message["data"].get("status") != "success"
            n += 1
    return {
        "commands": len(latencies),
        "failed": failed,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "slow": slow,
    }


async def abuse_socket(url: str, origin: str, cookie: str, seconds: float, counts: dict) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    event_types = {"event_types": ["market.price_update"]}
    subscribe = {"type": "subscription", "event": "subscribe", "data": event_types}
    async with connect(url, additional_headers={"Cookie": cookie}, origin=Origin(origin), max_size=2**22) as ws:
        await ws.recv()
        await ws.send(json.dumps(subscribe))
        while '"subscription.confirmed"' not in (text := await ws.recv(decode=True)):  # the gateway sends text
            pass
        position = json.loads(text)["data"]
        since = {"market.price_update": {"seq": max(0, position["seq"] - HISTORY + 1), "epoch": position["epoch"]}}
        started = time.perf_counter()
        cycle = 0
        while time.perf_counter() - started < seconds:
            due = started + cycle / CYCLES_PER_SECOND
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            await ws.send(
                json.dumps(
                    {"type": "subscription", "event": "unsubscribe", "data": {"event_types": ["market.price_update"]}}
                )
            )
            await ws.send(json.dumps({**subscribe, "data": {**event_types, "since": since}}))
            while True:  # the replay, then the confirmation that ends it
                text = await ws.recv(decode=True)
                if '"market.price_update"' in text and '"subscription.' not in text:
                    counts["frames"] += 1
                elif '"subscription.confirmed"' in text:
                    counts["refused" if '"recovered":false' in text.replace(" ", "") else "replays"] += 1
                    break
                elif '"event":"error"' in text.replace(" ", ""):
                    counts["errors"] += 1
            cycle += 1


def abuser(url: str, origin: str, cookie: str, seconds: float, results: multiprocessing.Queue[dict[str, int]]) -> None:
    # The abusing client would run on a machine of its own; here it shares two cores with the
    # gateway, Redis and the neighbour, so it yields the CPU to them rather than slowing the
    # neighbour's client for reasons that are not the gateway's.
    os.nice(10)
    counts = {"frames": 0, "replays": 0, "refused": 0, "errors": 0}

    async def main() -> None:
        await asyncio.gather(*(abuse_socket(url, origin, cookie, seconds, counts) for _ in range(ABUSE_SOCKETS)))

    asyncio.run(main())
    results.put(counts)


def measure(kind: str, cookie: str, abuse_cookie: str) -> dict:
    port = free_port()
    log = open(base.BENCH / f"replay-{kind}.log", "w")
    env = server_env(budget=kind == "budget")
    process = base.start_ours(port, log, env=env)
    url, origin = f"ws://127.0.0.1:{port}/ws/", f"http://127.0.0.1:{port}"
    try:
        wait_port(port, process)
        pid = process.pid
        idle = asyncio.run(neighbour(url, origin, cookie, SECONDS))
        results: multiprocessing.Queue[dict[str, int]] = multiprocessing.Queue()  # the abuser's counts
        attacker = multiprocessing.Process(target=abuser, args=(url, origin, abuse_cookie, SECONDS + 2, results))
        cpu = cpu_seconds(pid)
        attacker.start()
        time.sleep(1)  # the abusing sockets are open and replaying
        loaded = asyncio.run(neighbour(url, origin, cookie, SECONDS))
        counts = results.get(timeout=120)
        attacker.join(30)
        server_cpu = (cpu_seconds(pid) - cpu) / (SECONDS + 2) * 100
        return {"idle": idle, "abused": loaded, "abuse": counts, "server_cpu_percent": server_cpu}
    finally:
        stop(process, log)


def table(results: dict) -> str:
    rows = [
        "| replay budget | neighbour idle p50 / p99 ms | under abuse p50 / p99 ms | ratio p50 / p99 | "
        "frames replayed | replays sent / refused | gateway CPU % under abuse |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("budget", "default (5000/min per socket, 20000/min per user)"), ("unlimited", "lifted")):
        r = results[kind]
        i, a, c = r["idle"], r["abused"], r["abuse"]
        rows.append(
            f"| {label} | {i['p50_ms']:.1f} / {i['p99_ms']:.1f} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} | "
            f"{a['p50_ms'] / i['p50_ms']:.2f}× / {a['p99_ms'] / i['p99_ms']:.2f}× | {c['frames']} | "
            f"{c['replays']} / {c['refused']} | {r['server_cpu_percent']:.0f} |"
        )
    return "\n".join(rows)


def targets(results: dict) -> list[str]:
    r = results["budget"]
    i, a = r["idle"], r["abused"]
    checks = [
        ("neighbour's p50 under replay abuse ≤ 2× idle", a["p50_ms"] <= 2 * i["p50_ms"]),
        ("neighbour's p99 under replay abuse ≤ 2× idle", a["p99_ms"] <= 2 * i["p99_ms"]),
        ("every neighbour command answered and none failed", a["failed"] == 0 and i["failed"] == 0),
    ]
    return [f"- [{'x' if ok else ' '}] {label}" for label, ok in checks]


def main() -> dict:
    cookie, _ = base.setup_django()
    abuse_cookie = abuser_cookie()
    base.LOOP.run_until_complete(fill_history())
    results = {kind: measure(kind, cookie, abuse_cookie) for kind in ("budget", "unlimited")}
    print(
        f"\nReplay abuse: {ABUSE_SOCKETS} sockets of one user, {SECONDS:.0f} s per phase, "
        f"{os.cpu_count()} CPUs, history of {HISTORY} events\n"
    )
    print(table(results))
    print("\nTargets:")
    print("\n".join(targets(results)))
    (base.BENCH / "results-replay.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
