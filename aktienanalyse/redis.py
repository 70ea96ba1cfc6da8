"""Where every Redis client of the gateway is made: from a URL, or through Redis Sentinel.

A Redis *location* is a string, so settings, tests and the code that takes a `url` pass it around
unchanged: either a `redis://` URL (REDIS_URL, REDIS_BUS_URL), or a Sentinel location
`redis+sentinel://host:port,host:port/<master name>/<db>` that settings build from
`REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER` (docs/scale-out.md, "Redis failover").

A client for a Sentinel location asks the sentinels for the primary's address whenever it opens
a connection, and redis-py's `SentinelConnectionPool` drops its connections when that address
changes or the server it talks to turned read-only (a demoted primary); so after a failover the
next command after the first failed one reaches the new primary, with no restart. A client for a
URL is exactly `Redis.from_url(url, **options)`: that path costs nothing extra.

Passwords never go into the location (it appears in logs and status pages): the sentinels' one
is `REDIS_SENTINEL_PASSWORD`, the data nodes' one `REDIS_SENTINEL_MASTER_PASSWORD`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.sentinel import Sentinel

SCHEME = "redis+sentinel://"
DEFAULT_MASTER = "mymaster"

# A master name as Sentinel's `sentinel monitor` accepts it and a location path can carry it.
_MASTER_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True)
class SentinelLocation:
    """The sentinels to ask, the name of the primary they watch, and the database number."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0

    @property
    def url(self) -> str:
        hosts = ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in self.sentinels)
        return f"{SCHEME}{hosts}/{self.master}/{self.db}"


def parse_sentinels(text: str, *, setting: str = "REDIS_SENTINELS") -> tuple[tuple[str, int], ...]:
    """Read a comma-separated `host:port` list (an IPv6 host in brackets); refuse anything else."""
    entries = [entry.strip() for entry in text.split(",")]
    if not any(entries):
        raise ImproperlyConfigured(f"{setting} lists no sentinel; give host:port[,host:port...], e.g. 10.0.0.5:26379.")
    sentinels = []
    for entry in entries:
        if not entry:
            raise ImproperlyConfigured(f"{setting} has an empty entry in {text!r}; give host:port[,host:port...].")
        host, colon, port = entry.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/@[] "):
            raise ImproperlyConfigured(
                f"{setting} entry {entry!r} is not host:port with a port from 1 to 65535 (IPv6 as [::1]:26379)."
            )
        sentinels.append((host, int(port)))
    return tuple(sentinels)


def sentinel_location(sentinels: str, master: str = "", db: str = "") -> SentinelLocation:
    """Build a location from the settings' strings (REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_DB)."""
    master = master.strip() or DEFAULT_MASTER
    if not _MASTER_NAME.match(master):
        raise ImproperlyConfigured(
            f"REDIS_SENTINEL_MASTER {master!r} is not a master name (letters, digits, '_', '.', ':', '-')."
        )
    db = db.strip() or "0"
    if not db.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINEL_DB must be a database number (0, 1, ...); got {db!r}.")
    return SentinelLocation(parse_sentinels(sentinels), master, int(db))


def parse_location(location: str) -> SentinelLocation | None:
    """Return the Sentinel location a string names, or None for anything else (a redis:// URL)."""
    if not location.startswith(SCHEME):
        return None
    hosts, _, path = location[len(SCHEME) :].partition("/")
    master, _, db = path.partition("/")
    return sentinel_location(hosts, master, db)


def first_location(value: str) -> str:
    """Return the first location of a setting: a Sentinel location whole, else the first of a URL list."""
    value = value.strip()
    return value if value.startswith(SCHEME) else value.split(",")[0].strip()


def _passwords() -> tuple[str | None, str | None]:
    """Return the (data node, sentinel) passwords of the settings; None where unset."""
    from django.conf import settings

    config = getattr(settings, "REDIS_SENTINEL", None) or {}
    return config.get("MASTER_PASSWORD") or None, config.get("SENTINEL_PASSWORD") or None


def channel_layer_host(
    location: SentinelLocation, *, password: str = "", sentinel_password: str = ""
) -> dict[str, Any]:
    """Return the channels-redis host entry (core and pubsub layers alike) for a Sentinel location.

    The passwords are arguments, not read from settings: settings call this while they load.
    """
    host: dict[str, Any] = {
        "sentinels": list(location.sentinels),
        "master_name": location.master,
        "db": location.db,
        "sentinel_kwargs": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if password:
        host["password"] = password
    if sentinel_password:
        host["sentinel_kwargs"]["password"] = sentinel_password
    return host


class SentinelRedis(aioredis.Redis):
    """A client of the primary that Sentinel names; closing it closes its sentinel connections too."""

    # The Sentinel that names the primary. Not `sentinel`: that name is the client's SENTINEL command.
    watcher: Sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in self.watcher.sentinels:
            await client.aclose()


def async_client(location: str, **options: Any) -> aioredis.Redis:
    """Return an asyncio Redis client for a location, passing `options` (timeouts, decoding) on."""
    sentinel = parse_location(location)
    if sentinel is None:
        return aioredis.Redis.from_url(location, **options)
    password, sentinel_password = _passwords()
    sentinel_options = {
        "socket_connect_timeout": options.get("socket_connect_timeout") or 1,
        "socket_timeout": options.get("socket_timeout") or 1,
    }
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    watcher = Sentinel(list(sentinel.sentinels), sentinel_kwargs=sentinel_options)
    client = watcher.master_for(
        sentinel.master, redis_class=SentinelRedis, db=sentinel.db, password=password, **options
    )
    client.watcher = watcher
    return client
