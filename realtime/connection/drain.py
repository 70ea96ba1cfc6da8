"""Graceful drain of a gateway process: what SIGTERM does under `python -m realtime.server`.

1. The process is draining from the signal on: `/readyz` answers 503, and WebSocket handshakes
   are refused (503 from the adapter's protocol, a refusal from the consumer elsewhere). nginx,
   as deploy/ configures it, hands a refused handshake to another process.
2. `DRAIN_NOTICE_SECONDS` pass, so a load balancer polling `/readyz` stops sending.
3. The open sockets take their turns, spread evenly over `DRAIN_SPREAD_SECONDS` (at most half of
   the time the drain has after its notice), so their clients' immediate reconnects reach the
   other processes as a stream rather than one burst of handshakes. At its turn a socket stops
   starting commands; once the commands it started have answered, its queued frames are written
   and it is closed with 1012 "service restart". Until then it serves as before. A command that arrives after
   that point is not run and gets no answer: the close tells the client to reconnect and send
   again what was not answered (orders carry a `client_order_id`, so a repeat is recognised).
4. The events those commands committed are published (the loop's publisher is flushed), and the
   sockets' closing handshakes are awaited, so each leaves its groups and its place under the
   per-user cap.

All of it within `DRAIN_TIMEOUT_SECONDS` of the signal; the server then stops, cancelling what is
still running as daphne does at shutdown (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings

from realtime.runtime.connections import connections
from realtime.delivery.dispatch import get_publisher
from realtime.wire.protocol import CloseCode

logger = logging.getLogger(__name__)

# How often the drain looks whether the last sockets have finished closing.
CLOSED_POLL_SECONDS = 0.05
# The end of the drain's time kept for closing sockets whose commands are still running.
CLOSE_SHARE_SECONDS = 1.0

_draining_since: float | None = None


def draining() -> bool:
    """Tell whether this process is draining (refusing new sockets, closing the open ones)."""
    return _draining_since is not None


def begin() -> bool:
    """Mark the process draining; return False when it already was."""
    global _draining_since
    if _draining_since is not None:
        return False
    _draining_since = time.monotonic()
    return True


def spread_within(spread: float, notice: float, timeout: float) -> float:
    """Return the spread a drain uses: at most half of what remains after the notice, so the last
    turn still leaves its commands time before the timeout."""
    return max(0.0, min(spread, (timeout - notice) / 2))


def turns(count: int, spread: float) -> list[float]:
    """Return the offsets, from the end of the notice, at which `count` sockets take their turn:
    evenly spaced over `spread` seconds, the first at once and the last at most `spread` in."""
    if count <= 1:
        return [0.0] * count
    return [spread * index / (count - 1) for index in range(count)]


async def close_connection(consumer: Any, deadline: float, turn: float) -> None:
    """At loop time `turn` (at once when it has passed), let a socket's commands in flight answer
    until `deadline`, then close it with 1012 after its queued frames."""
    loop = asyncio.get_running_loop()
    if turn > loop.time():
        await asyncio.sleep(turn - loop.time())  # a turn is a moment by definition, not a state to await
        if consumer.released:  # its client left meanwhile: nothing to close
            return
    consumer.draining = True  # from here on the consumer starts no command
    while consumer.commands_in_flight and loop.time() < deadline:
        await asyncio.wait(set(consumer.commands_in_flight), timeout=deadline - loop.time())
    if consumer.commands_in_flight:
        logger.warning(
            "drain: client_id=%s closed with %d commands unanswered (drain timeout)",
            consumer.client_id,
            len(consumer.commands_in_flight),
        )
    consumer.end(CloseCode.SERVICE_RESTART, "service restart")


async def drain(*, notice: float | None = None, timeout: float | None = None, spread: float | None = None) -> bool:
    """Drain this process (steps 1 to 4 above); return whether it finished within the timeout."""
    config = settings.REALTIME
    notice = config["DRAIN_NOTICE_SECONDS"] if notice is None else notice
    timeout = config["DRAIN_TIMEOUT_SECONDS"] if timeout is None else timeout
    spread = config["DRAIN_SPREAD_SECONDS"] if spread is None else spread
    spread = spread_within(spread, notice, timeout)
    begin()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Commands get until shortly before the deadline; the rest is for the closing handshakes.
    commands_deadline = deadline - min(CLOSE_SHARE_SECONDS, timeout / 4)
    logger.info(
        "draining: %d sockets open; closing them from %ss over %ss, exiting within %ss",
        len(connections),
        notice,
        spread,
        timeout,
    )
    closing: dict[Any, asyncio.Task] = {}  # by consumer
    try:
        async with asyncio.timeout_at(deadline):
            await asyncio.sleep(notice)  # the notice period is a duration by definition, not a wait for a state
            start = loop.time()
            offsets = iter(turns(len(connections), spread))
            # Sockets whose handshake was under way when the drain began join the table later; they
            # take their turn at once.
            while len(connections) or not all(task.done() for task in closing.values()):
                for connection in connections:
                    consumer = connection.consumer
                    if consumer not in closing:
                        turn = start + next(offsets, 0.0)
                        closing[consumer] = loop.create_task(close_connection(consumer, commands_deadline, turn))
                await asyncio.sleep(CLOSED_POLL_SECONDS)
            await asyncio.gather(*closing.values())
            await get_publisher().flush()
    except TimeoutError:
        logger.warning("drain timed out after %ss with %d sockets still open", timeout, len(connections))
        return False
    logger.info("drained: every socket closed, committed events published")
    return True
