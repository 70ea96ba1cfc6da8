"""Measure channels-redis core against pub/sub for the gateway's fan-out pattern.

Each gateway process holds one channel in each group (realtime/delivery/fanout.py), so a broadcast is a
`group_send` to a group with one member per process. This script runs that pattern: PROCESSES
receiver processes, each with its own layer and one channel in the group, and a sender.

    .venv/bin/python bench/channel_layers.py [--redis redis://127.0.0.1:6379/0] [--processes 2]

It prints, per layer: throughput (frames/s delivered to every process) and latency of single
frames to every process (p50/p99, ms).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
import uuid

FRAME = '{"type":"market","event":"market.price_update","data":{"symbol":"SAP","isin":"DE0007164600","price":142.37,"previous_price":141.10,"change":1.27,"change_percent":0.9,"volume":1200,"timestamp":"2026-01-05T10:00:00.000Z","source":"feed"},"timestamp":"2026-01-05T10:00:00.000Z","correlation_id":"5b0c6f0e-8a35-4a8e-9c43-0d1f2a9c1e11","source_service":"market-data-service","target_client":null}'


def make_layer(kind: str, url: str, prefix: str):
    if kind == "core":
        from channels_redis.core import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], prefix=prefix, capacity=100000, expiry=60)
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=[url], prefix=prefix)


def receiver(kind: str, url: str, prefix: str, group: str, ready, results) -> None:
    async def run() -> None:
        layer = make_layer(kind, url, prefix)
        channel = await layer.new_channel("fanout.")
        await layer.group_add(group, channel)
        ready.put(True)
        counted = 0
        while True:
            message = await layer.receive(channel)
            if message.get("stop"):
                break
            if message.get("latency"):
                results.put((message["n"], time.time()))
            else:
                counted += 1
                if counted == message["expect"]:
                    results.put(("done", time.time()))

    asyncio.run(run())


async def send_all(layer, group: str, count: int, *, wait=None) -> None:
    for n in range(count):
        message = {
            "type": "realtime.event",
            "group": group,
            "text": FRAME,
            "n": n,
            "expect": count,
            "latency": wait is not None,
        }
        sent = time.time()
        await layer.group_send(group, message)
        if wait is not None:
            await wait(sent)


def measure(kind: str, url: str, processes: int, throughput_count: int, latency_count: int) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    group = "ev.market.price_update"
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=receiver, args=(kind, url, prefix, group, ready, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=30)

    async def run() -> dict:
        layer = make_layer(kind, url, prefix)
        loop = asyncio.get_running_loop()
        # throughput: as fast as the sender can, until every process has every frame
        started = time.time()
        await send_all(layer, group, throughput_count)
        done = [await loop.run_in_executor(None, results.get, True, 120) for _ in range(processes)]
        throughput = throughput_count / (max(t for _, t in done) - started)

        # latency: one frame at a time, waiting for every process to get it
        latencies = []

        async def wait(sent: float) -> None:
            arrivals = [await loop.run_in_executor(None, results.get, True, 10) for _ in range(processes)]
            latencies.append((max(t for _, t in arrivals) - sent) * 1000)

        await send_all(layer, group, latency_count, wait=wait)
        for _ in range(processes):
            await layer.group_send(group, {"type": "stop", "stop": True})
        if hasattr(layer, "flush"):
            await layer.flush()
        latencies.sort()
        return {
            "throughput": throughput,
            "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99) - 1],
        }

    try:
        return asyncio.run(run())
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--latency-count", type=int, default=500)
    args = parser.parse_args()
    print(f"{args.processes} receiving processes, {args.count} frames for throughput, {args.latency_count} for latency")
    for kind in ("core", "pubsub"):
        result = measure(kind, args.redis, args.processes, args.count, args.latency_count)
        print(
            f"{kind:7s} throughput {result['throughput']:8.0f} frames/s   "
            f"latency p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms"
        )


if __name__ == "__main__":
    main()
