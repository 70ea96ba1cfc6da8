"""What the adapter relies on in other libraries, and the system check that verifies it.

Each part of the adapter names the library objects it reaches into and the names it uses on
them that those libraries do not document (underscore names, and attributes their classes set
for themselves). `adapter_errors()` reports every such name that is missing and every library
whose installed version is not the one the adapter was checked against; `manage.py check`, the
start of `python -m realtime.server` and the tests report them. A part with a missing name is
not used: its code falls back to the libraries' public path and says so once in the log.
"""

from __future__ import annotations

import dis
import functools
import importlib
import logging
from dataclasses import dataclass
from importlib import metadata
from types import CodeType
from typing import Any

from django.core import checks

logger = logging.getLogger("realtime.server")

# The versions every part below was read against (docs/server-adapter.md). Upgrading one of these
# libraries: read the adapter's use of it against the new version, then change the pin here.
VERSIONS = {
    "daphne": "4.2.3",
    "twisted": "26.10.0",
    "autobahn": "26.11.1",
    "channels": "4.3.2",
    "channels-redis": "4.3.0",
    "prometheus-client": "0.23.1",
}


@dataclass(frozen=True)
class Part:
    """One piece of the adapter: what it does, and the names it uses per library object."""

    name: str
    purpose: str
    uses: tuple[tuple[str, tuple[str, ...]], ...]  # ("module:Class" or "module", names)


PARTS = (
    Part(
        "protocol",
        "LeanWebSocketProtocol: settings read from the factory, one-frame reads parsed at once; 503 while draining",
        (
            (
                "daphne.ws_protocol:WebSocketProtocol",
                (
                    "CONFIG_ATTRS",
                    "_dataReceived",
                    "_cancelAutoPingTimeoutCall",
                    "send_queue",
                    "data",
                    "current_frame",
                    "inside_message",
                    "trafficStats",
                    "autoPingTimeoutCall",
                    "state",
                    "STATE_OPEN",
                    "STATE_CONNECTING",
                    "http_request_data",
                    "http_response_data",
                    "muted",
                    "last_ping",
                    "application_queue",
                    "onConnect",
                    "onClose",
                    "serverClose",
                    "sendCloseFrame",
                ),
            ),
            ("daphne.ws_protocol:WebSocketFactory", ("protocol",)),
        ),
    ),
    Part(
        "server",
        "LeanServer: reaping and timeout passes over due connections only; the header deadline; the drain on SIGTERM; "
        "a lean input queue per connection",
        (
            (
                "daphne.server:Server",
                (
                    "connections",
                    "application",
                    "handle_reply",
                    "protocol_connected",
                    "protocol_disconnected",
                    "create_application",
                    "application_checker",
                    "timeout_checker",
                    "ping_interval",
                    "websocket_timeout",
                    "http_factory",
                    "run",
                    "stop",
                    "signal_handlers",
                ),
            ),
            ("daphne.server", ("reactor",)),
            ("daphne.cli:CommandLineInterface", ("server_class",)),
            ("daphne.ws_protocol:WebSocketProtocol", ("check_timeouts", "socket_opened", "last_ping")),
            ("daphne.http_protocol:HTTPFactory", ("protocol",)),
        ),
    ),
    Part(
        "writer",
        "SocketWriter: frames written to the TCP socket, Twisted's buffer measured",
        (
            ("daphne.server:Server", ("handle_reply",)),
            ("channels.sessions:InstanceSessionWrapper", ("real_send",)),
            (
                "twisted.internet.tcp:Server",
                ("socket", "dataBuffer", "offset", "_tempDataLen", "disconnecting", "connected"),
            ),
            ("daphne.ws_protocol:WebSocketProtocol", ("send_queue", "state", "STATE_OPEN", "transport")),
        ),
    ),
    Part(
        "flow",
        "SocketWriter as the transport's push producer: the outbox is told when a client's buffer passes "
        "the mark and when it has emptied, instead of measuring it every 20 ms",
        (
            # Documented: registerProducer, unregisterProducer and the `producer`/`streamingProducer`
            # ivars. Relied on but private: that every write past `bufferSize` asks the producer to
            # pause (`_maybePauseProducer`).
            (
                "twisted.internet.tcp:Server",
                (
                    "registerProducer",
                    "unregisterProducer",
                    "producer",
                    "streamingProducer",
                    "bufferSize",
                    "_maybePauseProducer",
                ),
            ),
        ),
    ),
    Part(
        "layer",
        "RedisChannelLayer.group_send_many: group sends batched per Redis host",
        (
            (
                "channels_redis.core:RedisChannelLayer",
                (
                    "_group_key",
                    "_map_channel_keys_to_connection",
                    "consistent_hash",
                    "connection",
                    "group_expiry",
                    "expiry",
                    "require_valid_group_name",
                ),
            ),
        ),
    ),
    Part(
        "metrics",
        "observe_many: one histogram update for an event written to many sockets",
        (("prometheus_client.metrics:Histogram", ("_upper_bounds", "_buckets", "_sum")),),
    ),
)


def _code_objects(code: CodeType) -> list[CodeType]:
    found = [code]
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            found.extend(_code_objects(constant))
    return found


def _stored_names(cls: type) -> set[str]:
    """Return the attribute names the methods of `cls` and its bases assign (`self.name = ...`)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for value in vars(klass).values():
            function = getattr(value, "__func__", value)
            if isinstance(function, property):
                function = function.fset
            code = getattr(function, "__code__", None)
            if code is None:
                continue
            for nested in _code_objects(code):
                names.update(op.argval for op in dis.get_instructions(nested) if op.opname == "STORE_ATTR")
    return names


def _resolve(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    owner = importlib.import_module(module_name)
    return getattr(owner, attribute) if attribute else owner


def missing_names(part: Part) -> list[str]:
    """Return `owner.name` for each name `part` uses that its library no longer has."""
    missing = []
    for target, names in part.uses:
        try:
            owner = _resolve(target)
        except (ImportError, AttributeError):
            missing.append(target)
            continue
        stored = _stored_names(owner) if isinstance(owner, type) else set()
        missing.extend(f"{target}.{name}" for name in names if not hasattr(owner, name) and name not in stored)
    return missing


def version_mismatches() -> list[str]:
    """Return a line per library whose installed version is not the one the adapter was read against."""
    mismatches = []
    for package, expected in VERSIONS.items():
        try:
            found = metadata.version(package)
        except metadata.PackageNotFoundError:
            found = "not installed"
        if found != expected:
            mismatches.append(f"{package} {found} (the adapter was checked against {expected})")
    return mismatches


@functools.cache
def part_usable(name: str) -> bool:
    """Whether every name the part `name` uses is present (decided once per process)."""
    (part,) = (part for part in PARTS if part.name == name)
    return not missing_names(part)


def adapter_errors() -> list[checks.Error]:
    """Return an Error per missing name and per library version the adapter was not checked against."""
    errors = []
    for part in PARTS:
        for name in missing_names(part):
            errors.append(
                checks.Error(
                    f"The daphne adapter's {part.name} part uses {name}, which the installed library lacks.",
                    hint=f"Without it the gateway runs without this part ({part.purpose}); see docs/server-adapter.md.",
                    obj="realtime.server",
                    id="realtime.E001",
                )
            )
    for mismatch in version_mismatches():
        errors.append(
            checks.Error(
                f"The daphne adapter was not checked against {mismatch}.",
                hint="Read realtime/server/ against that version, then update VERSIONS in realtime/server/checks.py "
                "(docs/server-adapter.md).",
                obj="realtime.server",
                id="realtime.E002",
            )
        )
    return errors


def check_server_adapter(app_configs: Any = None, **kwargs: Any) -> list[checks.Error]:
    """Django system check: the private names and versions the daphne adapter relies on."""
    return adapter_errors()


@functools.cache
def log_fallback(part: str, detail: str) -> None:
    """Log, once per process and part, that a part of the adapter is not in use."""
    logger.warning("daphne adapter: %s part not in use (%s); the slower public path serves instead", part, detail)
