"""Forwarding of user commands to services on the bus (spec 1.1, `forward_user_command`).

User commands no handler claims are published on `aktienanalyse:events:user_commands` in the
spec's `backend_event` format (section 1.1) with the client's own correlation id, at most once.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from core.exceptions import DomainError
from core.times import utc_now_iso
from realtime.bus.redis_client import bus_config, bus_enabled, bus_redis
from realtime.wire.protocol import ClientMessage, ErrorCode, encode, new_correlation_id

logger = logging.getLogger(__name__)


class BusUnavailable(DomainError):
    """The bus Redis cannot be reached, or no service listens for a forwarded command."""

    code = ErrorCode.SERVICE_UNAVAILABLE


def forwards(command: str) -> bool:
    """Return whether an unclaimed command goes out on the bus for an external service."""
    if not bus_enabled():
        return False
    forwarded = bus_config()["FORWARDED_COMMANDS"]
    return "*" in forwarded or command in forwarded


# Publish only if this (client, correlation id) was never forwarded; forget it again when no
# service listens, so the client may retry once one does.
_FORWARD_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return -1 end
local receivers = redis.call('PUBLISH', ARGV[2], ARGV[3])
if receivers == 0 then redis.call('DEL', KEYS[1]) end
return receivers
"""


def backend_event(*, client_id: str, message: ClientMessage) -> dict[str, Any]:
    """Return the spec's `backend_event` for a user command, keeping the client's correlation id."""
    return {
        "type": "user_command",
        "event": message.event,
        "data": message.data,
        "client_id": client_id,
        "timestamp": utc_now_iso(),
        "correlation_id": message.correlation_id or new_correlation_id(),
    }


class AlreadyForwarded(DomainError):
    """The same command (client id and correlation id) was forwarded before."""

    code = ErrorCode.INVALID_COMMAND


async def forward_user_command(*, client_id: str, message: ClientMessage) -> int:
    """Publish a user command on the commands channel once; return how many services got it."""
    event = backend_event(client_id=client_id, message=message)
    key = f"{bus_config()['KEY_PREFIX']}:bus:forwarded:{client_id}:{event['correlation_id']}"
    try:
        # redis-py types `eval`'s arguments as `str` (it sends the number as its text) and its reply
        # as `Awaitable[str] | str` for both its clients; this one is the asyncio client.
        reply = bus_redis().eval(_FORWARD_ONCE, 1, key, 600, bus_config()["COMMANDS_CHANNEL"], encode(event))  # type: ignore[arg-type]
        receivers = await reply  # type: ignore[misc]
    except (aioredis.RedisError, OSError) as exc:
        logger.error(
            "command %s of client_id=%s not forwarded: event bus unavailable: %s", message.event, client_id, exc
        )
        raise BusUnavailable(message="The event bus is unavailable; try the command again in a moment.") from None
    if receivers == -1:
        raise AlreadyForwarded(message=f"A command with correlation id {event['correlation_id']!r} was already sent.")
    if receivers == 0:
        raise BusUnavailable(message=f"No service on the event bus handles {message.event!r} right now.")
    logger.info(
        "command %s of client_id=%s forwarded to %d service(s), correlation_id=%s",
        message.event,
        client_id,
        receivers,
        event["correlation_id"],
    )
    return receivers
