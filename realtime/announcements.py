"""Operators' announcements to every connection: the spec's `broadcast_to_all`.

`realtime.services.announcement_publish` records one and sends a `system` / `announcement`
frame to the group every connection of every process belongs to (`messages.ALL_GROUP`); each
process's fan-out hands it to all its sockets, as it does a frame for one client. An
announcement with an expiry also reaches the connections opened before it runs out: each
process keeps those on its `AnnouncementBoard`, filled from the database once and then from the
group, and a new socket gets them right after `connection.established`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from realtime.delivery import messages
from realtime.connection.commands import CommandContext, command
from realtime.delivery.fanout import Delivery, Fanout
from realtime.wire.protocol import encode, envelope
from realtime.selectors import announcement_current_list
from realtime.services import ANNOUNCE_PERMISSION, announcement_data, announcement_publish
from realtime.runtime.threads import on_database_thread

logger = logging.getLogger(__name__)

# Announcements a board holds at once; the quota keeps far fewer current.
BOARD_LIMIT = 20


class AnnouncementBoard:
    """A fan-out member of `ALL_GROUP` that remembers the announcements still current, by id."""

    def __init__(self) -> None:
        self.current: dict[int, tuple[str, float]] = {}  # id -> (frame text, expires at, epoch seconds)
        self._loaded: asyncio.Task | None = None

    def deliver(self, message: dict[str, Any], delivery: Delivery | None = None) -> None:
        expires_at = message.get("expires_at")
        if message.get("announcement_id") is not None and expires_at is not None:
            self.current[message["announcement_id"]] = (message["text"], expires_at)

    async def load(self, service_name: str) -> None:
        """Read the current announcements from the database, once per board."""
        if self._loaded is None:
            self._loaded = asyncio.get_running_loop().create_task(self._load(service_name))
        await asyncio.shield(self._loaded)

    async def _load(self, service_name: str) -> None:
        stored = await on_database_thread(
            lambda: [
                (a.pk, a.expires_at.timestamp(), announcement_data(announcement=a))
                for a in announcement_current_list(limit=BOARD_LIMIT)
            ]
        )()
        for pk, expires_at, data in stored:
            self.current.setdefault(
                pk, (encode(envelope("system", "announcement", data, source_service=service_name)), expires_at)
            )

    def active(self) -> list[str]:
        """Return the frames of the current announcements, oldest first; forget the expired ones."""
        now = time.time()
        for pk in [pk for pk, (_, expires_at) in self.current.items() if expires_at <= now]:
            del self.current[pk]
        while len(self.current) > BOARD_LIMIT:
            del self.current[min(self.current)]
        return [text for _, (text, _) in sorted(self.current.items())]


_boards: "weakref.WeakKeyDictionary[Fanout, AnnouncementBoard]" = weakref.WeakKeyDictionary()


async def announcements_attach(fanout: Fanout) -> AnnouncementBoard:
    """Return this fan-out's board, joining it to `ALL_GROUP` the first time."""
    board = _boards.get(fanout)
    if board is None:
        board = _boards[fanout] = AnnouncementBoard()
        try:
            await fanout.join(messages.ALL_GROUP, board)
        except Exception:
            del _boards[fanout]
            raise
    return board


async def announcements_join(member: Any) -> None:
    """Join a new connection to every connection's group, and send it the announcements still current.

    The board hears the group before the connection joins it, and nothing runs between the join
    and the reading of the board: an announcement comes either from the board or live, once.
    """
    try:
        board = await announcements_attach(member.fanout)
        await board.load(member.config["SERVICE_NAME"])
        await member.fanout.join(messages.ALL_GROUP, member)
    except Exception as exc:
        logger.error("announcements unavailable at connect of client_id=%s: %s", member.client_id, exc)
        return
    for text in board.active():
        member.send_text(text)


@command("announce", permission=ANNOUNCE_PERMISSION)
async def announce(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Send an announcement {message, level?, expires_in?} to every open connection."""
    announcement = await on_database_thread(announcement_publish)(
        message=data.get("message"),
        level=data.get("level", "info"),
        expires_in=data.get("expires_in"),
        user=ctx.user,
        channel="websocket",
        held=ctx.permissions,
    )
    return await on_database_thread(lambda: announcement_data(announcement=announcement))()
