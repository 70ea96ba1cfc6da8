"""The soak's load: sockets churning, long-lived subscribers, orders and analyses (bench/soak.py)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any


class Load:
    """The counters of the load, read by the sampler."""

    def __init__(self) -> None:
        self.churn_ok = 0
        self.churn_failed: Counter[str] = Counter()
        self.churn_skipped = 0  # not started: too many handshakes already in flight
        self.churn_ms: list[float] = []  # connect to confirmed, since the last sample
        self.orders_sent = 0
        self.orders_ok = 0
        self.order_errors: Counter[str] = Counter()
        self.analyses_sent = 0
        self.analyses_ok = 0
        self.analysis_errors: Counter[str] = Counter()
        self.analyses_complete = 0
        self.reconnects = 0  # of the order and analysis connections


async def churn_one(url: str, origin: str, cookie: str, load: Load) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    started = time.perf_counter()
    try:
        async with asyncio.timeout(15):
            async with connect(url, origin=Origin(origin), additional_headers={"Cookie": cookie}) as ws:
                while json.loads(await ws.recv()).get("event") != "connection.established":
                    pass
                subscribe = {"type": "subscription", "event": "subscribe"}
                await ws.send(json.dumps({**subscribe, "data": {"event_types": ["market.price_update"]}}))
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("event") == "subscription.confirmed":
                        break
                    if message.get("event") == "error":
                        raise RuntimeError(message["data"].get("code", "error"))
        load.churn_ok += 1
        load.churn_ms.append((time.perf_counter() - started) * 1000)
    except Exception as exc:  # every failure is counted by its kind, none stops the churn
        load.churn_failed[str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__] += 1


async def churn(url: str, origin: str, cookie: str, rate: float, load: Load, until: float) -> None:
    """Start `rate` handshakes per second on schedule, each its own task, at most 500 at a time."""
    running: set[asyncio.Task] = set()
    started = time.monotonic()
    n = 0
    while (now := time.monotonic()) < until:
        due = started + n / rate
        if due > now:
            await asyncio.sleep(due - now)
        n += 1
        if len(running) >= 500:
            load.churn_skipped += 1
            continue
        task = asyncio.create_task(churn_one(url, origin, cookie, load))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)


async def commands(
    url: str,
    origin: str,
    cookie: str,
    load: Load,
    until: float,
    *,
    order_rate: float,
    analysis_every: float,
    symbols: list[str],
) -> None:
    """Orders on one connection and analyses on another, each reconnected when it is lost."""
    await asyncio.gather(
        session(url, origin, cookie, load, until, "order", 1 / order_rate, symbols),
        session(url, origin, cookie, load, until, "analysis", analysis_every, symbols),
    )


async def session(
    url: str, origin: str, cookie: str, load: Load, until: float, kind: str, every: float, symbols: list[str]
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Origin

    n = 0
    started = time.monotonic()
    while time.monotonic() < until:
        try:
            async with connect(url, origin=Origin(origin), additional_headers={"Cookie": cookie}) as ws:
                reader = asyncio.create_task(read_answers(ws, load, kind))
                try:
                    while (now := time.monotonic()) < until:
                        due = started + n * every
                        if due > now:
                            await asyncio.sleep(due - now)
                        await ws.send(json.dumps(command(kind, n, symbols)))
                        n += 1
                        if kind == "order":
                            load.orders_sent += 1
                        else:
                            load.analyses_sent += 1
                    await asyncio.sleep(5)  # the last answers
                finally:
                    reader.cancel()
        except (ConnectionClosed, OSError, TimeoutError):
            load.reconnects += 1
            await asyncio.sleep(1)


def command(kind: str, n: int, symbols: list[str]) -> dict[str, Any]:
    correlation_id = f"soak-{kind}-{n}-{uuid.uuid4().hex[:8]}"
    if kind == "order":
        data = {
            "symbol": "SAP",
            "side": "buy" if n % 2 == 0 else "sell",
            "quantity": 1,
            "order_type": "market",
            "client_order_id": correlation_id,
        }
        return {"type": "user", "event": "place_order", "correlation_id": correlation_id, "data": data}
    data = {"symbol": symbols[n % len(symbols)], "analysis_type": "technical"}
    return {"type": "user", "event": "start_analysis", "correlation_id": correlation_id, "data": data}


async def read_answers(ws, load: Load, kind: str) -> None:
    """Count the answers; `analysis.complete` (sent to every connection of the user) on the analysis connection."""
    async for raw in ws:
        message = json.loads(raw)
        event = message.get("event")
        if event == "connection.established":
            await ws.send(
                json.dumps(
                    {"type": "subscription", "event": "subscribe", "data": {"event_types": ["analysis.complete"]}}
                )
            )
        elif event in ("place_order.response", "start_analysis.response"):
            data = message.get("data") or {}
            ok = data.get("status") == "success"
            code = str((data.get("result") or {}).get("code", "error"))
            if event == "place_order.response":
                load.orders_ok += ok
                if not ok:
                    load.order_errors[code] += 1
            else:
                load.analyses_ok += ok
                if not ok:
                    load.analysis_errors[code] += 1
        elif event == "analysis.complete" and kind == "analysis":
            load.analyses_complete += 1


# Samples
