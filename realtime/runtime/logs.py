"""The event-flow log: one line per stage of a message's path, all carrying the same context.

Every line of the `realtime.flow` logger names the stage (received, refused, authorized,
handled, emitted, delivered) and carries `correlation_id`, `client_id`, `user` and
`event_type`, so `grep <correlation id>` shows one command's whole story, including the events
its handler published (they inherit the command's correlation id through `current_correlation_id`).

`DJANGO_LOG_FORMAT=json` writes JSON lines; the default is readable text with the context in
`key=value` form. Bodies, cookies and session ids are never logged: only names, ids and codes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable
from typing import Any

# The correlation id of the command being handled; events published meanwhile carry it.
current_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "realtime_correlation_id", default=None
)

CONTEXT_FIELDS = ("stage", "correlation_id", "client_id", "user", "event_type")

flow_logger = logging.getLogger("realtime.flow")


def log_flow(
    stage: str,
    *,
    correlation_id: str | None,
    client_id: str | None = None,
    user: str | None = None,
    event_type: str | None = None,
    level: int = logging.INFO,
    **details: Any,
) -> None:
    """Write one line of a message's path with its context."""
    if not flow_logger.isEnabledFor(level):
        return
    flow_logger.log(
        level,
        stage,
        extra={
            "stage": stage,
            "correlation_id": correlation_id,
            "client_id": client_id,
            "user": user,
            "event_type": event_type,
            "details": details,
        },
    )


def log_flow_debug() -> bool:
    """Tell whether per-delivery lines (DEBUG) are wanted; checked before building them."""
    return flow_logger.isEnabledFor(logging.DEBUG)


def _context(record: logging.LogRecord) -> dict[str, Any]:
    context = {name: getattr(record, name) for name in CONTEXT_FIELDS if getattr(record, name, None) is not None}
    context.update(getattr(record, "details", None) or {})
    return context


class TextFormatter(logging.Formatter):
    """Readable lines: time, level, logger, message, then the flow context as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if not context:
            return line
        head, newline, tail = line.partition("\n")  # keep a traceback below the context
        pairs = " ".join(f"{key}={value}" for key, value in context.items() if key != "stage")
        return f"{head} {pairs}{newline}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the flow context as keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class Throttle:
    """At most one log line per reason per `interval` seconds, and how many were held back.

    What a client or a service can repeat at will (a refused handshake, a bad bus message) must
    not flood the log: the first occurrence of a reason is logged at once, later ones at most
    every `interval` seconds, saying how many occurred meanwhile. Metrics count every occurrence.
    """

    def __init__(self, interval: float = 10.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def admit(self, reason: str) -> int | None:
        """Return None to hold this occurrence back, else how many were held back before it."""
        now = self.clock()
        last = self._logged_at.get(reason)
        if last is not None and now - last < self.interval:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return None
        self._logged_at[reason] = now
        return self._unlogged.pop(reason, 0)
