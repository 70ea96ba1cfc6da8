"""Connection monitoring across gateway processes, over the gateway's own protocol.

Each process's fan-out joins one channel-layer group, `gateway.monitor`, on behalf of a
`MonitorAgent`. The monitoring page sends the `monitor_snapshot` command; its handler asks that
group, and every process answers the asking client with a `system.gateway_snapshot` event of its
own connections and traffic. `disconnect_client` records who disconnected which client and why,
then closes the client's sockets on whichever process holds them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import weakref
from datetime import datetime, timezone
from typing import Any


from core.exceptions import ValidationFailed

from realtime.delivery import dispatch, messages

from realtime.runtime import metrics
from realtime.connection.commands import CommandContext, command
from realtime.runtime.connections import connections
from realtime.wire.events import MONITOR_PERMISSION
from realtime.delivery.fanout import Delivery, Fanout
from realtime.wire.protocol import CLIENT_ID_RE, CloseCode
from core.times import isoformat, utc_now_iso
from realtime.services import connection_termination_record
from realtime.runtime.threads import on_database_thread

logger = logging.getLogger(__name__)

MONITOR_GROUP = "gateway.monitor"
SNAPSHOT_REQUEST = "realtime.monitor_request"
MAX_CONNECTIONS_LISTED = 500
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def _iso(seconds: float) -> str:
    return isoformat(datetime.fromtimestamp(seconds, timezone.utc))


def gateway_snapshot() -> dict[str, Any]:
    """Return this process's connections and traffic as the data of a `system.gateway_snapshot`."""
    listed = sorted(connections, key=lambda c: c.connected_at)[:MAX_CONNECTIONS_LISTED]
    return {
        "process": PROCESS,
        "connections": [
            {
                "client_id": c.client_id,
                "user": c.username,
                "address": c.remote_addr,
                "origin": c.origin,
                "connected_at": isoformat(c.connected_at),
                "subscriptions": sorted(c.subscriptions),
                "messages_in": c.messages_in,
                "messages_out": c.frames_out,
                "last_activity": _iso(c.active_at),
                # How frames reach this socket and what waits for it: bytes held by the server
                # (null where it cannot tell) and frames queued in the outbox
                "writer": c.outbox.writer if c.outbox is not None else "asgi",
                "writer_flow": c.outbox.flow if c.outbox is not None else None,  # "told", "measured" or null
                "server_buffered_bytes": c.outbox.server_backlog() if c.outbox is not None else None,
                "queued_frames": len(c.outbox) if c.outbox is not None else 0,
            }
            for c in listed
        ],
        "connections_total": len(connections),
        "events_delivered": dict(metrics.events_delivered),
        "messages_received": connections.messages_received,
        "messages_sent": connections.messages_sent,
        "recent_errors": [{**error, "at": _iso(error["at"])} for error in list(metrics.recent_errors)[-20:]],
        "timestamp": utc_now_iso(),
    }


class MonitorAgent:
    """A fan-out member that answers snapshot requests for its process."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def deliver(self, message: dict[str, Any], delivery: Delivery | None = None) -> None:
        if message.get("type") != SNAPSHOT_REQUEST or not isinstance(message.get("reply_to"), str):
            return
        task = asyncio.get_running_loop().create_task(self._answer(message["reply_to"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, client_id: str) -> None:
        try:
            await dispatch.asend_event("system.gateway_snapshot", gateway_snapshot(), target_client=client_id)
        except Exception:
            logger.exception("gateway snapshot for client_id=%s could not be sent", client_id)


_agents: "weakref.WeakKeyDictionary[Fanout, MonitorAgent]" = weakref.WeakKeyDictionary()


async def monitor_attach(fanout: Fanout) -> None:
    """Let this process answer snapshot requests (once per fan-out)."""
    if fanout in _agents:
        return
    agent = _agents[fanout] = MonitorAgent()
    try:
        await fanout.join(MONITOR_GROUP, agent)
    except Exception:
        del _agents[fanout]
        raise


@command("monitor_snapshot", permission=MONITOR_PERMISSION)
async def monitor_snapshot(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Ask every gateway process to send this client a `system.gateway_snapshot`."""
    await dispatch.asend_message({"type": SNAPSHOT_REQUEST, "group": MONITOR_GROUP, "reply_to": ctx.client_id})
    return {"requested_at": utc_now_iso()}


@command("disconnect_client", permission=MONITOR_PERMISSION)
async def disconnect_client(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Close every socket of a client id on every process; the operator's action is recorded."""
    client_id = data.get("client_id")
    reason = data.get("reason", "")
    if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
        raise ValidationFailed(message="'client_id' must be a client id.", field="client_id")
    if not isinstance(reason, str) or len(reason) > 200:
        raise ValidationFailed(message="'reason' must be a text of at most 200 characters.", field="reason")
    termination = await on_database_thread(connection_termination_record)(
        operator=ctx.user, client_id=client_id, reason=reason, operator_address=ctx.remote_addr
    )
    logger.warning(
        "operator %s disconnects client_id=%s (audit id %s): %s",
        ctx.user.get_username(),
        client_id,
        termination.pk,
        reason or "no reason given",
    )
    await dispatch.asend_message(
        {
            "type": messages.CLOSE,
            "group": messages.client_group(client_id),
            "code": int(CloseCode.OPERATOR_DISCONNECT),
            "reason": f"operator {ctx.user.get_username()}",
        }
    )
    return {"client_id": client_id, "audit_id": termination.pk}
