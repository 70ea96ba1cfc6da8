"""The bus Redis: its settings and this event loop's client, for the bridge, presence and admission.

Its own module so that presence and admission, which the bridge uses, need not import the bridge.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from aktienanalyse import redis as redis_locations


def bus_config() -> dict[str, Any]:
    return settings.REALTIME_BUS


def bus_enabled() -> bool:
    return bool(bus_config()["URL"]) and bus_config()["BRIDGE"] != "off"


def connect_bus(url: str | None = None) -> aioredis.Redis:
    """Return a Redis client for the bus that fails fast instead of hanging when Redis is gone."""
    return redis_locations.async_client(
        url or bus_config()["URL"], socket_connect_timeout=1, socket_timeout=3, health_check_interval=5
    )


_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def bus_redis() -> aioredis.Redis:
    """Return this event loop's client for commands (publish, presence) on the bus Redis."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = connect_bus()
    return client
