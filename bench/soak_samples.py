"""What the soak samples every minute: the gateway's memory and descriptors, Redis, the database's
row counts, and its log lines by level (bench/soak.py)."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from gateway import LoadGen
from processes import cpu_seconds, rss_bytes
from soak_load import Load

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) ?(.*)$")
LOUD = {"WARNING", "ERROR", "CRITICAL"}
VARYING = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{12,}|\d+(\.\d+)?")


class Sampler:
    """What one sample reads: the gateway process, Redis, the database, the logs and the load."""

    def __init__(self, args: argparse.Namespace, prefix: str, pid: int, gen: LoadGen, logs: list[Path]) -> None:
        import redis

        self.redis = redis.Redis.from_url(args.redis)
        self.prefix = prefix
        self.pid = pid
        self.gen = gen
        self.gen_lock = threading.Lock()
        self.logs = Logs(logs)
        self.tables = model_tables()

    def ask(self, **command: Any) -> dict:
        with self.gen_lock:
            return self.gen.ask(**command)

    def sample(self, elapsed: float, load: Load) -> dict[str, Any]:
        from django.db import connection

        kinds: Counter[str] = Counter()
        key_bytes = 0
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            name = key.decode()
            kinds[key_kind(name, self.prefix)] += 1
            key_bytes += int(self.redis.memory_usage(key) or 0)  # type: ignore[arg-type]  # sync client
        with connection.cursor() as cursor:
            rows = {}
            for table in self.tables:
                cursor.execute(f'SELECT count(*) FROM "{table}"')
                rows[table] = cursor.fetchone()[0]
        connection.close()
        subscribers = self.ask(cmd="report")
        info: dict[str, Any] = self.redis.info("memory")  # type: ignore[assignment]  # sync client
        churn_ms = sorted(load.churn_ms)
        load.churn_ms.clear()
        return {
            "minute": round(elapsed / 60, 2),
            "rss_mb": round(rss_bytes(self.pid) / 2**20, 1),
            "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
            "threads": threads(self.pid),
            "cpu_seconds": round(cpu_seconds(self.pid), 1),
            "redis_used_memory_mb": round(int(info["used_memory"]) / 2**20, 2),
            "redis_db_keys": self.redis.dbsize(),
            "layer_keys": sum(kinds.values()),
            "layer_key_bytes": key_bytes,
            "layer_keys_by_kind": dict(sorted(kinds.items())),
            "rows": rows,
            "log_lines_warning_or_above": sum(self.logs.read().values()),
            "load": {
                "churn_ok": load.churn_ok,
                "churn_failed": sum(load.churn_failed.values()),
                "churn_skipped": load.churn_skipped,
                "churn_p50_ms": round(statistics.median(churn_ms), 1) if churn_ms else None,
                "churn_p99_ms": round(churn_ms[int(0.99 * (len(churn_ms) - 1))], 1) if churn_ms else None,
                "orders_sent": load.orders_sent,
                "orders_ok": load.orders_ok,
                "analyses_sent": load.analyses_sent,
                "analyses_ok": load.analyses_ok,
                "analyses_complete": load.analyses_complete,
                "subscribers_open": subscribers["open"],
                "subscriber_frames": subscribers["frames"],
                "subscriber_closes": subscribers["closes"],
            },
        }


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]  # always there


def model_tables() -> list[str]:
    """The tables of the project's models (its apps' and the sessions'), in app order."""
    from django.apps import apps

    labels = ("realtime", "portfolio", "trading", "market", "sessions", "auth")
    return [
        model._meta.db_table
        for label in labels
        for model in apps.get_app_config(label).get_models()
        if not model._meta.proxy and model._meta.managed
    ]


def key_kind(key: str, prefix: str) -> str:
    """A key under the prefix with its ids and numbers as `#`: `<prefix>:history:market.price_update`."""
    return VARYING.sub("#", key[len(prefix) :]).lstrip(":") or "(the prefix)"


class Logs:
    """The lines at WARNING or above of the run's logs, read on from where the last call stopped:
    (log, level, logger, message with its numbers and ids as #) -> count. A traceback outside any
    log record (one printed to stderr) counts as level `TRACEBACK` under its last line."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.offsets = dict.fromkeys(paths, 0)
        self.found: Counter[tuple[str, str, str, str]] = Counter()
        self.traceback: dict[Path, bool] = dict.fromkeys(paths, False)

    def read(self) -> Counter[tuple[str, str, str, str]]:
        for path in self.paths:
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(self.offsets[path])
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next call
            self.offsets[path] += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                self._line(path, line)
        return self.found

    def _line(self, path: Path, line: str) -> None:
        match = LOG_LINE.match(line)
        if match:
            self.traceback[path] = False
            if match.group(1) in LOUD:
                self.found[(path.name, match.group(1), match.group(2), VARYING.sub("#", match.group(3))[:200])] += 1
        elif line.startswith("Traceback"):
            self.traceback[path] = True
        elif self.traceback[path] and line and not line.startswith(" "):  # the exception's line
            self.traceback[path] = False
            self.found[(path.name, "TRACEBACK", "-", VARYING.sub("#", line)[:200])] += 1


# The run
