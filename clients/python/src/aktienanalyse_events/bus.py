"""Where a service meets the gateway, and the two messages it publishes there.

The names and formats are the spec's (sections 1.1, 3.1, 3.2): events and command responses go
on the events channel, the gateway forwards users' commands on the commands channel. Each
setting comes from the constructor, else from the environment variable the gateway reads for
the same thing, else the spec's default, so a service and its gateway can share one
environment.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from typing import Any, TypedDict

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from .codec import utc_now_iso
from .events import CATEGORIES

EVENTS_CHANNEL = "aktienanalyse:events:websocket"
COMMANDS_CHANNEL = "aktienanalyse:events:user_commands"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"

# What the gateway accepts as a client id and as a command name; anything else it drops.
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
COMMAND_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
CORRELATION_ID_MAX = 128


class BusError(Exception):
    """The bus could not take a message (Redis unreachable) or the message is not one the gateway accepts."""


@dataclass(frozen=True)
class BusSettings:
    redis_url: str
    events_channel: str
    commands_channel: str
    service_name: str

    @classmethod
    def resolve(
        cls,
        redis_url: str | None = None,
        events_channel: str | None = None,
        commands_channel: str | None = None,
        service_name: str | None = None,
    ) -> BusSettings:
        """Return the settings given, the rest from the environment or the spec's defaults."""
        env = os.environ
        # The gateway's first Redis host, else the primary its sentinels name.
        gateway_url = env.get("REDIS_URL", "").split(",")[0].strip() or _sentinel_location(env)
        return cls(
            redis_url=redis_url or env.get("REDIS_BUS_URL") or gateway_url or DEFAULT_REDIS_URL,
            events_channel=events_channel or env.get("BUS_EVENTS_CHANNEL") or EVENTS_CHANNEL,
            commands_channel=commands_channel or env.get("BUS_COMMANDS_CHANNEL") or COMMANDS_CHANNEL,
            service_name=service_name or env.get("SERVICE_NAME") or "unknown-service",
        )

    def async_client(self) -> aioredis.Redis:
        """Return a Redis client that fails within seconds instead of hanging when Redis is gone."""
        if self.redis_url.startswith(SENTINEL_SCHEME):
            return _sentinel_client(self.redis_url, aioredis.Redis, AsyncSentinel)
        return aioredis.Redis.from_url(self.redis_url, **_TIMEOUTS)

    def sync_client(self) -> redis.Redis:
        if self.redis_url.startswith(SENTINEL_SCHEME):
            return _sentinel_client(self.redis_url, redis.Redis, Sentinel)
        return redis.Redis.from_url(self.redis_url, **_TIMEOUTS)


class _Timeouts(TypedDict):
    """Seconds, as redis-py's clients take them by keyword."""

    socket_connect_timeout: float
    socket_timeout: float
    health_check_interval: float


_TIMEOUTS: _Timeouts = {"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 5}

# The gateway's Sentinel settings as one string (REDIS_SENTINELS, REDIS_SENTINEL_MASTER,
# REDIS_SENTINEL_DB): `redis+sentinel://host:port,host:port/<master>/<db>`, as the gateway spells it.
SENTINEL_SCHEME = "redis+sentinel://"


def _sentinel_location(env: Any) -> str:
    hosts = env.get("REDIS_SENTINELS", "").replace(" ", "")
    if not hosts:
        return ""
    master = env.get("REDIS_SENTINEL_MASTER", "").strip() or "mymaster"
    return f"{SENTINEL_SCHEME}{hosts}/{master}/{env.get('REDIS_SENTINEL_DB', '').strip() or '0'}"


def _sentinel_client(location: str, client_class: Any, sentinel_class: Any) -> Any:
    """Return a client of the primary the sentinels of `location` name; after a failover its next
    connection asks them again. Passwords: REDIS_SENTINEL_PASSWORD, REDIS_SENTINEL_MASTER_PASSWORD."""
    hosts, _, path = location[len(SENTINEL_SCHEME) :].partition("/")
    master, _, db = path.partition("/")
    sentinels = []
    for entry in hosts.split(","):
        host, _, port = entry.rpartition(":")
        if not host.strip("[]") or not port.isdigit():
            raise BusError(f"sentinel {entry!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
    if os.environ.get("REDIS_SENTINEL_PASSWORD"):
        options["password"] = os.environ["REDIS_SENTINEL_PASSWORD"]
    watcher = sentinel_class(sentinels, sentinel_kwargs=options)
    return watcher.master_for(
        master or "mymaster",
        redis_class=client_class,
        db=int(db or 0),
        password=os.environ.get("REDIS_SENTINEL_MASTER_PASSWORD") or None,
        **_TIMEOUTS,
    )


def category_of(event_type: str) -> str:
    """Return the message `type` of an event type, as the spec's `_get_event_category` does."""
    prefix = event_type.split(".", 1)[0]
    return prefix if prefix in CATEGORIES else "unknown"


def _check_target(target_client: str | None) -> None:
    if target_client is not None and not (isinstance(target_client, str) and CLIENT_ID_RE.fullmatch(target_client)):
        raise BusError(f"target_client {target_client!r} is not a client id (1-64 letters, digits, '-', '_')")


def _check_correlation_id(correlation_id: str | None) -> None:
    if correlation_id is not None and not (
        isinstance(correlation_id, str) and 0 < len(correlation_id) <= CORRELATION_ID_MAX
    ):
        raise BusError(f"correlation_id must be a string of 1 to {CORRELATION_ID_MAX} characters")


def event_message(
    event: Any, *, service_name: str, target_client: str | None = None, correlation_id: str | None = None
) -> dict[str, Any]:
    """Return the spec's bus message for an event (3.1), for one client only when `target_client` is given."""
    event_type = getattr(event, "event_type", None)
    if not isinstance(event_type, str) or not callable(getattr(event, "to_websocket_data", None)):
        raise TypeError(f"{type(event).__name__} is no event: it needs event_type and to_websocket_data()")
    _check_target(target_client)
    _check_correlation_id(correlation_id)
    message = {
        "type": category_of(event_type),
        "event": event_type,
        "data": event.to_websocket_data(),
        "timestamp": utc_now_iso(),
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "source_service": service_name,
    }
    if target_client is not None:
        message["target_client"] = target_client
    return message


def command_response_message(
    client_id: str, command: str, status: str, result: Any, correlation_id: str | None, *, service_name: str
) -> dict[str, Any]:
    """Return the spec's `command_response` (3.2) answering `command` of `client_id`."""
    _check_target(client_id)
    _check_correlation_id(correlation_id)
    if not (isinstance(command, str) and COMMAND_NAME_RE.fullmatch(command)):
        raise BusError(f"{command!r} is not a command name")
    if status not in ("success", "error"):
        raise BusError("status is 'success' or 'error'")
    return {
        "type": "command_response",
        "event": f"{command}.response",
        "data": {"status": status, "command": command, "result": result},
        "timestamp": utc_now_iso(),
        "correlation_id": correlation_id,
        "target_client": client_id,
        "source_service": service_name,
    }
