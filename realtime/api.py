"""The one module of `realtime` the apps (market, trading, portfolio) import: the gateway's door.

What an app may do with the gateway, and nothing else (`.importlinter`, and
tests/test_import_contracts.py, hold every app to it):

- register a WebSocket command: `command`, `CommandContext`; run its database work on the
  command threads: `on_command_threads`, and work it starts without waiting for it on the
  background thread: `on_background_thread`;
- read a command's arguments: `decimal_arg`, `id_arg`, `text_arg`;
- name the permission an event type or command asks for: the `*_PERMISSION` constants;
- publish events: `send_event_on_commit` (from a transaction), `asend_event` (from async code),
  `run_and_publish` (run a coroutine whose events go out before it returns), `user_group`;
- validate an instrument symbol as the wire does: `SYMBOL_RE`;
- read the connection table (the status monitor counts sockets): `connections`;
- read the event schemas (the desk's and the monitoring page's event lists): `EVENT_SCHEMAS`;
- write JSON as the wire does, decimals exact (the pages' embedded data): `json_encode`.

The project wiring (`aktienanalyse/asgi.py`, `aktienanalyse/urls.py`) mounts realtime's routing,
handshake gate and REST views itself; that is not an app reaching in. Times, domain errors and the
actor are not realtime's: they live in `core/`.
"""

from realtime.connection.commands import CommandContext, command
from realtime.delivery.dispatch import asend_event, run_and_publish, send_event_on_commit
from realtime.delivery.messages import user_group
from realtime.runtime.connections import connections
from realtime.runtime.threads import on_background_thread, on_command_threads
from realtime.services import ANNOUNCE_PERMISSION
from realtime.wire.events import (
    EVENT_SCHEMAS,
    MONITOR_PERMISSION,
    PORTFOLIO_PERMISSION,
    SYSTEM_PERMISSION,
    TRADING_PERMISSION,
    USER_ACTIVITY_PERMISSION,
)
from realtime.wire.payload import decimal_arg, id_arg, text_arg
from realtime.wire.protocol import SYMBOL_RE
from realtime.wire.protocol import encode as json_encode

__all__ = [
    "ANNOUNCE_PERMISSION",
    "EVENT_SCHEMAS",
    "MONITOR_PERMISSION",
    "PORTFOLIO_PERMISSION",
    "SYMBOL_RE",
    "SYSTEM_PERMISSION",
    "TRADING_PERMISSION",
    "USER_ACTIVITY_PERMISSION",
    "CommandContext",
    "asend_event",
    "command",
    "connections",
    "decimal_arg",
    "id_arg",
    "json_encode",
    "on_background_thread",
    "on_command_threads",
    "run_and_publish",
    "send_event_on_commit",
    "text_arg",
    "user_group",
]
