"""Which client ids and users are connected, across every gateway process.

`connections.py` knows the sockets of one process. With several processes behind a proxy, the
bridge, operators and `manage.py gateway_clients` need the whole picture: each process keeps a
hash on the bus Redis (`<prefix>:presence:<process>`: client id -> user and connection count),
rewritten within a second of a change, kept alive by a heartbeat, and expiring with its process.
A restarted Redis is refilled by the next heartbeat, which finds the hash gone; a dead process
drops out after the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any

from realtime.bus.redis_client import bus_config, bus_redis
from realtime.runtime.connections import connections
from realtime.wire.protocol import decode, encode

logger = logging.getLogger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
CHECK_INTERVAL = 0.5


def _processes_key() -> str:
    return f"{bus_config()['KEY_PREFIX']}:presence:processes"


def _process_key(process_id: str) -> str:
    return f"{bus_config()['KEY_PREFIX']}:presence:{process_id}"


def local_snapshot() -> dict[str, str]:
    """Return this process's clients as the hash fields it publishes."""
    clients: dict[str, dict[str, Any]] = {}
    for connection in connections:
        entry = clients.setdefault(
            connection.client_id,
            {
                "user_id": connection.user_id,
                "username": connection.username,
                "connections": 0,
                "connected_at": connection.connected_at.isoformat(),
            },
        )
        entry["connections"] += 1
    return {client_id: encode(entry) for client_id, entry in clients.items()}


class Presence:
    """Publish this process's clients to the bus Redis while the process runs."""

    def __init__(self) -> None:
        self.ttl = bus_config()["PRESENCE_TTL"]
        self._written: dict[str, str] | None = None
        self._written_at = 0.0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime-presence")

    async def _run(self) -> None:
        failing = False
        seen_version = None
        snapshot: dict[str, str] = {}
        while True:
            # Rebuilt only when sockets came or went: with ten thousand sockets open, building
            # it twice a second would be most of an idle process's work.
            if connections.version != seen_version:
                seen_version = connections.version
                snapshot = local_snapshot()
            due = time.monotonic() - self._written_at > self.ttl / 3
            changed = snapshot is not self._written and snapshot != self._written
            if changed or due:
                try:
                    await (self._write(snapshot) if changed else self._refresh(snapshot))
                    if failing:
                        logger.warning("presence of this process is published again")
                    failing = False
                except Exception as exc:
                    if not failing:
                        logger.error("presence could not be published: %s", exc)
                    failing = True
            await asyncio.sleep(CHECK_INTERVAL)

    async def _refresh(self, snapshot: dict[str, str]) -> None:
        """Keep the unchanged hash alive; write it anew only if Redis no longer has it (a restart).

        With ten thousand sockets the hash is a megabyte or two, and rewriting it on every
        heartbeat was most of what presence cost an idle process.
        """
        async with bus_redis().pipeline(transaction=True) as pipe:
            self._keep_alive(pipe)
            kept, *_ = await pipe.execute()
        if snapshot and not kept:
            await self._write(snapshot)
            return
        self._written_at = time.monotonic()

    async def _write(self, snapshot: dict[str, str]) -> None:
        key = _process_key(PROCESS_ID)
        async with bus_redis().pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if snapshot:
                pipe.hset(key, mapping=snapshot)
            self._keep_alive(pipe)
            await pipe.execute()
        self._written = snapshot
        self._written_at = time.monotonic()

    def _keep_alive(self, pipe: Any) -> None:
        """Queue on `pipe`: the process hash's expiry pushed forward (its reply first), the process
        marked alive in the registry, and processes silent for the TTL dropped from it."""
        pipe.expire(_process_key(PROCESS_ID), self.ttl)
        now = time.time()
        pipe.zadd(_processes_key(), {PROCESS_ID: now})
        pipe.zremrangebyscore(_processes_key(), "-inf", now - self.ttl)


async def clients_online() -> dict[str, list[dict[str, Any]]]:
    """Return every connected client id with its entries (one per process holding it)."""
    redis_client = bus_redis()
    ttl = bus_config()["PRESENCE_TTL"]
    processes = [p.decode() for p in await redis_client.zrangebyscore(_processes_key(), time.time() - ttl, "+inf")]
    async with redis_client.pipeline(transaction=False) as pipe:
        for process_id in processes:
            pipe.hgetall(_process_key(process_id))
        tables = await pipe.execute()
    online: dict[str, list[dict[str, Any]]] = {}
    for process_id, table in zip(processes, tables):
        for client_id, entry in table.items():
            online.setdefault(client_id.decode(), []).append({**decode(entry), "process": process_id})
    return online


async def user_connections(user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Return the connected client ids of one user, on every process."""
    return {
        client_id: entries
        for client_id, entries in (await clients_online()).items()
        if any(entry["user_id"] == user_id for entry in entries)
    }
