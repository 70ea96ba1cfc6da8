"""What `make bench` publishes: price ticks, into the gateway (its own dispatch) or onto the reference's
Redis channel (the same frame the gateway would send), at a rate or as fast as they go."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal


def tick(n: int) -> dict:
    price = Decimal("187.35") + Decimal(n % 100) / 100
    return {
        "symbol": "SAP",
        "isin": "DE0007164600",
        "price": price,
        "previous_price": price,
        "change": Decimal("0.00"),
        "change_percent": Decimal("0.00"),
        "volume": n,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "source": f"bench:{int(time.time() * 1e6)}",
    }


class OurPublisher:
    async def publish(self, n: int) -> None:
        from realtime.delivery.dispatch import asend_event

        await asend_event("market.price_update", tick(n))


class ReferencePublisher:
    def __init__(self, channel: str, redis_url: str) -> None:
        import redis.asyncio as redis

        self.client = redis.from_url(redis_url)
        self.channel = channel

    async def publish(self, n: int) -> None:
        from realtime.delivery.messages import build_event_message

        await self.client.publish(self.channel, build_event_message("market.price_update", tick(n))["text"])


async def publish(publisher, count: int, rate: float | None) -> float:
    started = time.perf_counter()
    for n in range(count):
        if rate:
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await publisher.publish(n)
    return time.perf_counter() - started
