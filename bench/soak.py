"""`make soak`: one gateway process under steady mixed load for a bounded time, sampled every minute.

    python bench/soak.py [--minutes 30] [--warmup 5] [--sample-seconds 60] ...   (or `make soak`)

It creates a PostgreSQL database of its own afresh (`bench_soak`, dropped and created; only a name
starting with `bench` is accepted), runs `migrate` and `demo_data --username soak`, and starts one
gateway process under daphne with the `make serve` flags (bench/run.py `start_ours`; DEBUG off,
the Redis channel layer on db 11 with a prefix and bus channels of the run's own, log level INFO
into bench/soak-gateway.log) and the price feed as production runs it, its own `manage.py
market_feed` process (bench/soak-feed.log). Then, for the whole run:

- churn: `--churn-rate` (50) WebSocket handshakes per second, each with the staff session cookie,
  a subscribe to `market.price_update` answered by its confirmation, then a close; a fresh page
  each (no client id), as a reload of the desk is;
- `--subscribers` (1000) long-lived connections of the Node load generator (bench/loadgen.mjs)
  subscribed to `market.price_update`, reading every frame, with the spec client's heartbeat;
- `--order-rate` (5) market orders per second of one SAP, buying and selling in turn (the position
  stays flat), on one connection that reads the answers;
- a technical analysis every `--analysis-every` (10) seconds on another connection, the
  instruments in turn;
- the feed's ticks for every instrument every `--feed-interval` (1) seconds.

Every `--sample-seconds` it records the gateway's RSS and open descriptors (/proc/<pid>/fd),
Redis `used_memory` (the whole server's: other databases count too), the keys of db 11 (DBSIZE)
and those under the run's prefix (by kind, with their `MEMORY USAGE`), the row count of every table
of the project's models and of `django_session`, the log lines at WARNING or above so far, and
the load's own counters. At the end it prints the table and the verdict, writes the samples to
bench/soak-results.json, and exits 1 when the verdict fails:

- RSS and descriptors grow less than 5 % from the end of the warm-up to the end (the gateway runs
  on jemalloc as deploy/ runs it, `--allocator system` for glibc's malloc);
- Redis keys are bounded: `--cooldown` (2) minutes after the load stopped, with the subscribers
  still open, the keys under the prefix are back within 5 % (and 20 keys) of minute 0's: what
  the load's sockets joined and took is given back, whatever piled up while it ran (without a
  cool-down: the most keys in the second half of the measured period exceed the most in its
  first half by less than 5 %, and 20 keys);
- no log line at WARNING or above (each is listed with its count);
- the load ran: every subscriber still open, under 1 % of the churn handshakes failed, every
  order and analysis answered without an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from processes import free_port, stop, wait_port
from gateway import LoadGen, env_for_server, export_server_env, start_ours
from soak_load import Load, churn, commands
from soak_samples import Sampler

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
GROWTH_LIMIT = 0.05  # RSS, descriptors and keys, end of warm-up to end
KEYS_SLACK = 20  # keys the second half may exceed the first by whatever the share


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="length of the run, warm-up included (default 30)")
    parser.add_argument("--warmup", type=float, default=5, help="minutes before growth is measured (default 5)")
    parser.add_argument(
        "--cooldown",
        type=float,
        default=2,
        help="minutes with the subscribers only after the load, then a last sample (default 2; 0: none)",
    )
    parser.add_argument("--sample-seconds", type=float, default=60, help="seconds between samples (default 60)")
    parser.add_argument("--churn-rate", type=float, default=50, help="connects and disconnects per second (50)")
    parser.add_argument("--subscribers", type=int, default=1000, help="long-lived price subscribers (1000)")
    parser.add_argument("--order-rate", type=float, default=5, help="market orders per second (5)")
    parser.add_argument("--analysis-every", type=float, default=10, help="seconds between analyses (10)")
    parser.add_argument("--feed-interval", type=float, default=1, help="seconds between the feed's rounds (1)")
    parser.add_argument("--log-level", default="INFO", choices=["INFO", "WARNING"], help="DJANGO_LOG_LEVEL (INFO)")
    parser.add_argument(
        "--database",
        default="postgres://postgres@127.0.0.1:5432/bench_soak",
        help="PostgreSQL database, dropped and created (its name must start with bench)",
    )
    parser.add_argument(
        "--allocator",
        choices=["jemalloc", "system"],
        default="jemalloc",
        help="the gateway's malloc: jemalloc (preloaded, as deploy/ runs it; needs libjemalloc2) or glibc's",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11", help="Redis database of the run (db 11)")
    parser.add_argument("--out", type=Path, default=BENCH / "soak-results.json", help="where the samples go")
    parser.add_argument(
        "--log-dir", type=Path, default=BENCH, help="where soak-gateway.log and soak-feed.log go (bench/)"
    )
    args = parser.parse_args()
    if not 0 <= args.warmup < args.minutes or args.sample_seconds <= 0:
        parser.error("0 <= --warmup < --minutes and --sample-seconds > 0 are needed")
    if not args.database.rsplit("/", 1)[1].startswith("bench"):
        parser.error("--database must name a database of the benchmarks' own (bench...): it is dropped")
    return args


# Setup


JEMALLOC = "libjemalloc.so.2"


def allocator_env(allocator: str) -> dict[str, str]:
    """The gateway's environment for `allocator`: jemalloc preloaded as deploy/ does, or nothing."""
    if allocator == "system":
        return {}
    found = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    if f"{JEMALLOC} " not in found:
        raise SystemExit(
            f"--allocator jemalloc: {JEMALLOC} is not installed (Debian: libjemalloc2); or --allocator system"
        )
    return {"LD_PRELOAD": JEMALLOC}


def server_env(args: argparse.Namespace, prefix: str) -> dict[str, str]:
    """The benchmark server's environment (bench/run.py), with production's limits and monitor."""
    env = env_for_server()
    for name in ("MARKET_STATUS_INTERVAL", "REALTIME_RATE_LIMIT_PER_SECOND", "REALTIME_RATE_LIMIT_BURST"):
        env.pop(name)
    env.update(
        DATABASE_URL=args.database,
        REDIS_URL=args.redis,
        CHANNEL_LAYER_PREFIX=prefix,
        BUS_EVENTS_CHANNEL=f"{prefix}:events:websocket",
        BUS_COMMANDS_CHANNEL=f"{prefix}:events:user_commands",
        DJANGO_LOG_LEVEL=args.log_level,
        # The per-message trace (a line per event and command) is a debugging aid; the soak
        # reads the gateway's own log lines.
        REALTIME_FLOW_LOG_LEVEL="WARNING",
        MARKET_FEED_INTERVAL=str(args.feed_interval),
        # Every subscriber and churning desk is the one demo trader.
        REALTIME_MAX_CONNECTIONS_PER_USER="100000",
        REALTIME_DRAIN_NOTICE_SECONDS="0",
    )
    return env


def create_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(env: dict[str, str]) -> str:
    """Prepare the database and return a session cookie of the demo trader `soak` (staff)."""
    export_server_env(env)
    create_database(env["DATABASE_URL"])
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [PY, "manage.py", "demo_data", "--username", "soak"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="soak"))
    return f"sessionid={client.cookies['sessionid'].value}"


# Load


async def run(args: argparse.Namespace, sampler: Sampler, cookie: str, port: int) -> tuple[list[dict], Load]:
    from portfolio.models import Instrument

    symbols = await asyncio.to_thread(
        lambda: list(Instrument.objects.exclude(last_price=None).values_list("symbol", flat=True))
    )
    url, origin = f"ws://127.0.0.1:{port}/ws/", f"http://127.0.0.1:{port}"
    load = Load()
    begun = time.monotonic()
    until = begun + args.minutes * 60
    tasks = [
        asyncio.create_task(churn(url, origin, cookie, args.churn_rate, load, until)),
        asyncio.create_task(
            commands(
                url,
                origin,
                cookie,
                load,
                until,
                order_rate=args.order_rate,
                analysis_every=args.analysis_every,
                symbols=symbols,
            )
        ),
    ]
    samples = []
    number = 0
    while True:
        due = begun + number * args.sample_seconds
        if due > until + 1:
            break
        await asyncio.sleep(max(0.0, min(due, until) - time.monotonic()))
        sample = await asyncio.to_thread(sampler.sample, time.monotonic() - begun, load)
        samples.append(sample)
        print(progress(sample), flush=True)
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
        number += 1
    await asyncio.gather(*tasks)
    if args.cooldown:  # the subscribers only: what the load left behind
        await asyncio.sleep(max(0.0, until + args.cooldown * 60 - time.monotonic()))
        sample = await asyncio.to_thread(sampler.sample, time.monotonic() - begun, load)
        sample["after_load"] = True
        samples.append(sample)
        print(progress(sample) + " (load stopped)", flush=True)
    return samples, load


def progress(sample: dict[str, Any]) -> str:
    load = sample["load"]
    return (
        f"  minute {sample['minute']:6.2f}: RSS {sample['rss_mb']} MB, {sample['fds']} fds, "
        f"{sample['layer_keys']} keys, churn {load['churn_ok']} ok/{load['churn_failed']} failed "
        f"(p99 {load['churn_p99_ms']} ms), orders {load['orders_ok']}/{load['orders_sent']}, "
        f"analyses {load['analyses_complete']}/{load['analyses_sent']}, "
        f"subscribers {load['subscribers_open']} open, {load['subscriber_frames']} frames"
    )


def verdict(args: argparse.Namespace, samples: list[dict], load: Load, logs: Counter) -> tuple[list[str], bool]:
    """The checks of the module's docstring, each as a line; and whether all passed."""
    during = [s for s in samples if not s.get("after_load")]
    measured = [s for s in during if s["minute"] >= args.warmup - 0.01]
    first, last = measured[0], measured[-1]
    lines, passed = [], True

    def check(ok: bool, text: str) -> None:
        nonlocal passed
        passed = passed and ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {text}")

    for name, label in (("rss_mb", "RSS"), ("fds", "open descriptors")):
        growth = (last[name] - first[name]) / first[name]
        check(
            growth < GROWTH_LIMIT,
            f"{label}: {first[name]} at minute {first['minute']:.0f} -> {last[name]} at minute "
            f"{last['minute']:.0f} ({growth:+.1%}; limit +{GROWTH_LIMIT:.0%})",
        )
    base, most, after = samples[0]["layer_keys"], max(s["layer_keys"] for s in during), samples[-1]
    if after.get("after_load"):
        check(
            after["layer_keys"] <= max(base * (1 + GROWTH_LIMIT), base + KEYS_SLACK),
            f"Redis keys under the prefix bounded: {base} at minute 0, at most {most} under load, "
            f"{after['layer_keys']} {args.cooldown:g} minute(s) after the load stopped "
            f"(limit: minute 0's +{GROWTH_LIMIT:.0%}, at least +{KEYS_SLACK})",
        )
    else:
        half = len(measured) // 2 or 1
        early = max(s["layer_keys"] for s in measured[:half])
        late = max(s["layer_keys"] for s in measured[half:])
        check(
            late <= max(early * (1 + GROWTH_LIMIT), early + KEYS_SLACK),
            f"Redis keys under the prefix bounded (no cool-down): most {early} in the first half of the measured "
            f"period, {late} in the second (limit +{GROWTH_LIMIT:.0%} and at least +{KEYS_SLACK})",
        )
    check(not logs, f"log lines at WARNING or above (and tracebacks outside a record): {sum(logs.values())}")
    for (log, level, logger, message), count in logs.most_common():
        lines.append(f"      {count:6d}  {log} {level} {logger} {message}")
    end = during[-1]["load"]
    churned = load.churn_ok + sum(load.churn_failed.values())
    check(
        end["subscribers_open"] == args.subscribers,
        f"subscribers open at the end: {end['subscribers_open']} of {args.subscribers}",
    )
    check(
        sum(load.churn_failed.values()) <= 0.01 * max(churned, 1) and load.churn_skipped == 0,
        f"churn: {load.churn_ok} handshakes subscribed, {sum(load.churn_failed.values())} failed "
        f"{dict(load.churn_failed)}, {load.churn_skipped} not started",
    )
    check(
        load.orders_ok == load.orders_sent and not load.order_errors and load.reconnects == 0,
        f"orders: {load.orders_ok} of {load.orders_sent} answered with success, errors {dict(load.order_errors)}; "
        f"command connections lost: {load.reconnects}",
    )
    check(
        load.analyses_ok == load.analyses_sent and not load.analysis_errors,
        f"analyses: {load.analyses_ok} of {load.analyses_sent} started, {load.analyses_complete} complete "
        f"(analysis.complete), errors {dict(load.analysis_errors)}",
    )
    return lines, passed


def table(samples: list[dict]) -> str:
    """The samples as a Markdown table: the tables' row counts where they changed."""
    grown = [t for t in samples[0]["rows"] if any(s["rows"][t] != samples[0]["rows"][t] for s in samples)]
    head = ["minute", "RSS MB", "fds", "Redis MB", "db keys", "prefix keys", "prefix KB", *grown, "warn+"]
    rows = [
        [
            f"{s['minute']:.0f}" + (" (load stopped)" if s.get("after_load") else ""),
            f"{s['rss_mb']:.1f}",
            str(s["fds"]),
            f"{s['redis_used_memory_mb']:.1f}",
            str(s["redis_db_keys"]),
            str(s["layer_keys"]),
            f"{s['layer_key_bytes'] / 1024:.0f}",
            *(str(s["rows"][t]) for t in grown),
            str(s["log_lines_warning_or_above"]),
        ]
        for s in samples
    ]
    return "\n".join("| " + " | ".join(row) + " |" for row in [head, ["---:"] * len(head), *rows])  # ":" right-aligns


def _stop_on_signal(signum: int, frame: Any) -> None:
    """SIGTERM ends the run as an error does: the load, the feed and the gateway are stopped first."""
    raise SystemExit(128 + signum)


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop_on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    commit = subprocess.run(  # the code the gateway starts with
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    env = server_env(args, prefix)
    cookie = setup_django(env)
    logs = [args.log_dir / "soak-gateway.log", args.log_dir / "soak-feed.log"]
    gateway_log, feed_log = (path.open("w") for path in logs)
    port = free_port()
    gateway = start_ours(port, gateway_log, {**env, **allocator_env(args.allocator)})
    feed = subprocess.Popen(
        [PY, "manage.py", "market_feed", "--interval", str(args.feed_interval)],
        cwd=ROOT,
        env=env,
        stdout=feed_log,
        stderr=subprocess.STDOUT,
    )
    gen = LoadGen()
    try:
        wait_port(port, gateway)
        url, origin = f"ws://127.0.0.1:{port}/ws/", f"http://127.0.0.1:{port}"
        opened = gen.ask(
            cmd="connect", url=url, cookie=cookie, origin=origin, n=args.subscribers, subscribe=True, batch=50
        )
        print(
            f"soak: gateway pid {gateway.pid} on port {port} ({args.allocator} malloc), prefix {prefix},"
            f" {opened['connected']} subscribers; "
            f"{args.minutes:g} minutes ({args.warmup:g} of warm-up), a sample every {args.sample_seconds:g} s",
            flush=True,
        )
        sampler = Sampler(args, prefix, gateway.pid, gen, logs)
        samples, load = asyncio.run(run(args, sampler, cookie, port))
        if feed.poll() is not None or gateway.poll() is not None:
            raise RuntimeError(f"a process exited during the run: feed {feed.returncode}, gateway {gateway.returncode}")
    finally:
        try:
            gen.ask(cmd="close")  # the Node process ends with its input once its sockets are closed
            gen.stop()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            gen.process.kill()
        stop(feed, feed_log)
        stop(gateway, gateway_log)
    found = sampler.logs.read()
    lines, passed = verdict(args, samples, load, found)
    print()
    print(table(samples))
    print()
    print("\n".join(lines))
    print(f"\nverdict: {'PASS' if passed else 'FAIL'}")
    args.out.write_text(
        json.dumps(
            {
                "commit": commit,
                "arguments": {k: str(v) for k, v in vars(args).items()},
                "prefix": prefix,
                "samples": samples,
                "log_lines_warning_or_above": [
                    {"log": log, "level": level, "logger": logger, "message": message, "count": count}
                    for (log, level, logger, message), count in found.most_common()
                ],
                "verdict": lines,
                "passed": passed,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
