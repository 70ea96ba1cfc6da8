"""The bus bridge on a quiet bus: it stays subscribed, so nothing published after a lull is missed."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest
import redis.asyncio as aioredis

from realtime.bus.bridge import BusBridge, connect_bus
from tests.fixtures.bus import shared_redis_url, spec_price_update


async def test_a_bridge_idle_longer_than_the_socket_timeout_keeps_its_subscription(settings, caplog):
    channel = f"idle-{uuid.uuid4().hex[:8]}"
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": shared_redis_url(), "EVENTS_CHANNEL": channel}
    read_timeout = connect_bus().connection_pool.connection_kwargs["socket_timeout"]
    received: list[dict] = []
    bridge = BusBridge(lambda message, raw: received.append(message))
    caplog.set_level(logging.INFO, logger="realtime.bus.bridge")
    await bridge.start()
    try:
        await asyncio.sleep(read_timeout + 1.5)  # longer than any single read may wait
        publisher = aioredis.Redis.from_url(shared_redis_url())
        try:
            listeners = await publisher.publish(channel, json.dumps(spec_price_update("SAP", 187.35)))
        finally:
            await publisher.aclose()
        async with asyncio.timeout(3):
            while not received:
                await asyncio.sleep(0.02)
    finally:
        await bridge.stop()
    assert listeners == 1
    assert received[0]["event"] == "market.price_update" and '"SAP"' in json.dumps(received[0], default=str)
    assert not [r for r in caplog.records if "lost" in r.getMessage() or "is back" in r.getMessage()]
    assert sum("subscribed to" in r.getMessage() for r in caplog.records) == 1


pytestmark = pytest.mark.django_db
