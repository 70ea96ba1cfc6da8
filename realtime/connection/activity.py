"""The spec's user events: who opened a socket, ran a command, changed a subscription.

A socket reports here from the path where the thing happened; the event goes to whoever holds
`realtime.view_user_activity` (supervisors and operators, docs/permissions.md). Publishing never
waits: the message is handed to this loop's `Publisher`, which sends what gathered meanwhile
in one batch, so a command's response is not held up by its own audit event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from realtime.delivery.dispatch import get_publisher
from realtime.delivery.messages import build_event_message
from core.times import utc_now_iso

logger = logging.getLogger(__name__)


class UserActivity:
    """What one socket reports about its user's doings."""

    def __init__(self, *, user_id: int, username: str, client_id: str) -> None:
        self.who = {"user_id": user_id, "username": username, "client_id": client_id}

    def _publish(self, event_type: str, correlation_id: str | None = None, **data) -> None:
        try:
            message = build_event_message(
                event_type, {**self.who, **data, "timestamp": utc_now_iso()}, correlation_id=correlation_id
            )
            get_publisher().put(message)
        except RuntimeError as exc:  # the loop is shutting down with the process: nobody is left to tell
            logger.debug("%s of client_id=%s not published: %s", event_type, self.who["client_id"], exc)
        except Exception:  # an audit event must never break the socket that reports it
            logger.exception("%s of client_id=%s could not be published", event_type, self.who["client_id"])

    def connection(self, action: str) -> None:
        """Report the socket `connected` or `disconnected`."""
        self._publish("user.action", action=action)

    def command(
        self,
        command: str,
        status: str,
        *,
        correlation_id: str | None,
        error_code: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Report a command refused, forwarded to the bus, or run to its end (`COMMAND_OUTCOMES`)."""
        self._publish(
            "user.command",
            correlation_id,
            command=command,
            status=status,
            error_code=error_code,
            duration_ms=duration_ms,
        )

    def subscription(
        self,
        action: str,
        event_types: Iterable[str],
        *,
        symbols: Iterable[str] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Report the event types a subscription message (or a lost permission) changed; none: nothing."""
        event_types = list(event_types)
        if event_types:
            self._publish(
                "user.subscription",
                correlation_id,
                action=action,
                event_types=event_types,
                symbols=sorted(symbols) if symbols is not None else None,
            )
