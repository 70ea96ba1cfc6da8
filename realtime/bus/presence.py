"""Which client ids and users are connected, across every gateway process.

`connections.py` knows the sockets of one process. With several processes behind a proxy, the
bridge, operators and `manage.py gateway_clients` need the whole picture: each process keeps a
hash on the bus Redis (`<prefix>:presence:<process>`: client id -> user and connection count),
updated within a second of a change, kept alive by a heartbeat, and expiring with its process.
A restarted Redis is refilled by the next heartbeat or update, which finds the hash gone; a dead
process drops out after the TTL.
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


def client_entry(client_id: str) -> str | None:
    """Return the hash field this process publishes for `client_id`, None if it has no socket here."""
    held = connections.by_client_id(client_id)
    if not held:
        return None
    first = held[0]
    return encode(
        {
            "user_id": first.user_id,
            "username": first.username,
            "connections": len(held),
            "connected_at": first.connected_at.isoformat(),
        }
    )


def local_snapshot() -> dict[str, str]:
    """Return this process's clients as the hash fields it publishes."""
    return {client_id: entry for client_id in connections.client_ids() if (entry := client_entry(client_id))}


class Presence:
    """Publish this process's clients to the bus Redis while the process runs.

    The hash is written whole once, and again whenever Redis turns out to have lost it; after
    that only the entries of client ids whose sockets came or went are set or deleted, so a
    reconnect storm of ten thousand sockets costs one entry per socket, not the whole table
    twice a second.
    """

    def __init__(self) -> None:
        self.ttl = bus_config()["PRESENCE_TTL"]
        self._written: dict[str, str] | None = None  # the hash as Redis has it; None: to be written whole
        self._written_at = 0.0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime-presence")

    async def _run(self) -> None:
        failing = False
        changed = connections.watch()
        try:
            while True:
                try:
                    if self._written is None:
                        changed.clear()
                        await self._write(local_snapshot())
                    elif changed:
                        await self._update(self._written, changed)
                    elif time.monotonic() - self._written_at > self.ttl / 3:
                        await self._refresh()
                    if failing:
                        logger.warning("presence of this process is published again")
                    failing = False
                except Exception as exc:
                    if not failing:
                        logger.error("presence could not be published: %s", exc)
                    failing = True
                    self._written = None  # what Redis holds is unknown: write it whole when it is back
                await asyncio.sleep(CHECK_INTERVAL)
        finally:
            connections.unwatch(changed)

    async def _update(self, written: dict[str, str], changed: set[str]) -> None:
        """Set or delete the entries of the client ids in `changed` (emptied) in the hash Redis holds
        as `written`, keeping it alive."""
        client_ids = list(changed)
        changed.clear()
        entries = {client_id: client_entry(client_id) for client_id in client_ids}
        fresh = {client_id: entry for client_id, entry in entries.items() if entry and written.get(client_id) != entry}
        gone = [client_id for client_id, entry in entries.items() if entry is None and client_id in written]
        if not fresh and not gone:
            return
        key = _process_key(PROCESS_ID)
        async with bus_redis().pipeline(transaction=True) as pipe:
            pipe.exists(key)
            if gone:
                pipe.hdel(key, *gone)
            if fresh:
                pipe.hset(key, mapping=fresh)
            self._keep_alive(pipe)
            existed, *_ = await pipe.execute()
        written.update(fresh)
        for client_id in gone:
            del written[client_id]
        if not existed and len(written) > len(fresh):  # Redis lost the rest (a restart)
            await self._write(local_snapshot())
            return
        self._written_at = time.monotonic()

    async def _refresh(self) -> None:
        """Keep the unchanged hash alive; write it anew only if Redis no longer has it (a restart)."""
        async with bus_redis().pipeline(transaction=True) as pipe:
            self._keep_alive(pipe)
            kept, *_ = await pipe.execute()
        if self._written and not kept:
            await self._write(local_snapshot())
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
