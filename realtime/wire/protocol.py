"""The wire format of the spec's WebSocket event protocol, in one place.

Everything that reads or writes a frame goes through here: the envelope every server message
carries, the exact-decimal JSON encoding, the parsing and validation of client messages, and the
error and close codes. Consumers, the fan-out and the Redis bridge all share it, so the format
cannot drift between them.
"""

from __future__ import annotations

import enum
import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from core.times import utc_now_iso

# Message categories (`type`) a client may send.
CLIENT_TYPES = frozenset({"subscription", "user", "ping"})

EVENT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
COMMAND_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CORRELATION_ID_MAX = 128


class ErrorCode(enum.StrEnum):
    """Machine-readable codes of `error` messages and error command responses."""

    INVALID_JSON = "invalid_message_format"
    INVALID_MESSAGE = "invalid_message"
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    MESSAGE_TOO_LARGE = "message_too_large"
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    INVALID_EVENT_TYPE = "invalid_event_type"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    TOO_MANY_EVENT_TYPES = "too_many_event_types"
    PERMISSION_DENIED = "permission_denied"
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_COMMAND = "invalid_command"
    VALIDATION_ERROR = "validation_error"
    NOT_FOUND = "not_found"
    TOO_MANY_COMMANDS = "too_many_commands"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses, each for one reason."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    SERVER_ERROR = 1011
    SERVICE_RESTART = 1012  # the process is draining: reconnect at once (another process takes it)
    SESSION_ENDED = 4001  # logged out or the session expired
    ACCESS_REVOKED = 4003  # account deactivated or staff flag removed
    SLOW_CONSUMER = 4008  # stopped reading; its send queue overflowed
    OPERATOR_DISCONNECT = 4009
    IDLE_TIMEOUT = 4010
    TOO_MANY_CONNECTIONS = 4013
    RATE_LIMITED = 4029


class ProtocolError(Exception):
    """A client message that cannot be handled; answered with an `error` message."""

    def __init__(self, code: ErrorCode, message: str, *, correlation_id: str | None = None, **details: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.correlation_id = correlation_id
        self.details = details


_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)  # version 4 and the RFC 4122 variant
_UUID4_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def new_correlation_id() -> str:
    """Return a random version-4 UUID string, as `str(uuid.uuid4())` would.

    A correlation id names a message; it is no secret (clients choose their own), so the
    process's random generator serves instead of the operating system's, without `uuid4`'s read of
    the kernel's entropy and its UUID object on every message (docs/benchmarks.md).
    """
    text = "%032x" % (random.getrandbits(128) & _UUID4_MASK | _UUID4_BITS)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def envelope(
    type_: str,
    event: str,
    data: dict[str, Any],
    *,
    correlation_id: str | None = None,
    source_service: str | None = None,
    target_client: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """Return a server message with every envelope key of the spec's `WebSocketMessage`."""
    return {
        "type": type_,
        "event": event,
        "data": data,
        "timestamp": timestamp or utc_now_iso(),
        "correlation_id": correlation_id or new_correlation_id(),
        "source_service": source_service,
        "target_client": target_client,
    }


# One JSON codec for every message the gateway reads or writes (the socket, the bus, the history,
# the pages' embedded data): msgspec, chosen by measurement (docs/benchmarks.md, "JSON codec").
# Decimals are written as their exact digits, never through a float; every fraction read is a
# Decimal (`float_hook` gets the number's text), every whole number an int.
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def encode(message: Any) -> str:
    """Serialize a message compactly; Decimals become exact JSON numbers.

    Refused: a non-finite Decimal (ValueError, "... is not a number JSON allows"), a string
    that is not valid Unicode text (a lone surrogate: ValueError) and any type JSON has no form
    for (TypeError). A non-finite float becomes `null`: no event carries floats unchecked (the
    schemas in `realtime/wire/schema.py` refuse non-finite numbers), and JSON has no NaN.
    """
    try:
        return _ENCODER.encode(message).decode("utf-8")
    except ValueError as exc:
        if isinstance(exc, UnicodeError):
            raise ValueError(f"text that is not valid Unicode cannot be sent as JSON: {exc}") from None
        raise ValueError(f"{_non_finite(message) or 'a value'} is not a number JSON allows") from None
    except TypeError as exc:
        raise TypeError(f"{exc}: cannot be sent as JSON") from None


def _non_finite(value: Any) -> Decimal | None:
    """Find the non-finite Decimal in `value` that made the encoder refuse it (for the message)."""
    if isinstance(value, Decimal):
        return None if value.is_finite() else value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = _non_finite(item)
        if found is not None:
            return found
    return None


def _long_integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= 64 else Decimal(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# For the one message msgspec cannot read whole: a whole number of more than 4300 digits (Python's
# limit for turning text into an int). Read again here, every integer of over 64 digits becomes an
# exact Decimal, so the message stays valid and the field's own check refuses the number with its
# name, as it refuses any other out-of-range value.
_LONG_NUMBER_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_long_integer, parse_constant=_reject_constant)


def decode(text: str | bytes) -> Any:
    """Parse JSON: every fraction is a Decimal, every whole number an int (one of over 4300 digits a
    Decimal); NaN and Infinity, trailing data and bytes that are not UTF-8 are errors (ValueError).

    Nesting deeper than the parser allows raises RecursionError, as the standard library does.
    """
    try:
        return _DECODER.decode(text)
    except msgspec.ValidationError:  # the only one an untyped decoder raises: an int too long to read
        return _LONG_NUMBER_DECODER.decode(text.decode("utf-8") if isinstance(text, (bytes, bytearray)) else text)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None  # the parser's words: what is wrong, at which byte


@dataclass(frozen=True)
class ClientMessage:
    """A validated message from a client."""

    type: str
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None


def parse_client_message(text: str) -> ClientMessage:
    """Parse and validate one client frame, raising `ProtocolError` with the reason."""
    try:
        raw = decode(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_JSON, "Invalid JSON format") from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A message must be a JSON object.")

    correlation_id = raw.get("correlation_id")
    if correlation_id is not None and (
        not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= CORRELATION_ID_MAX
    ):
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"'correlation_id' must be a string of 1 to {CORRELATION_ID_MAX} characters."
        )

    type_ = raw.get("type")
    if not isinstance(type_, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "'type' must be a string.", correlation_id=correlation_id)
    if type_ not in CLIENT_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_MESSAGE_TYPE,
            f"Unknown message type {type_[:64]!r}; expected one of: {', '.join(sorted(CLIENT_TYPES))}.",
            correlation_id=correlation_id,
        )

    event = raw.get("event", "heartbeat" if type_ == "ping" else None)
    if not isinstance(event, str) or not event or len(event) > 64:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            "'event' must be a non-empty string of at most 64 characters.",
            correlation_id=correlation_id,
        )

    data = raw.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "'data' must be an object.", correlation_id=correlation_id)

    return ClientMessage(type=type_, event=event, data=data, correlation_id=correlation_id)


def parse_event_types(message: ClientMessage, *, limit: int) -> list[str]:
    """Return the `data.event_types` list of a subscription message, checked for shape only."""
    event_types = message.data.get("event_types")
    if not isinstance(event_types, list) or not event_types:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            "'data.event_types' must be a non-empty list of event type names.",
            correlation_id=message.correlation_id,
        )
    if len(event_types) > limit:
        raise ProtocolError(
            ErrorCode.TOO_MANY_EVENT_TYPES,
            f"At most {limit} event types per message; got {len(event_types)}.",
            correlation_id=message.correlation_id,
            limit=limit,
        )
    if not all(isinstance(item, str) for item in event_types):
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            "Every entry of 'data.event_types' must be a string.",
            correlation_id=message.correlation_id,
        )
    return list(dict.fromkeys(event_types))


SYMBOL_RE = re.compile(r"[A-Z0-9.]{1,16}")


def parse_symbols(message: ClientMessage, *, limit: int) -> frozenset[str] | None:
    """Return `data.symbols` of a subscription message (None: all symbols), checked for shape."""
    symbols = message.data.get("symbols")
    if symbols is None:
        return None
    if not isinstance(symbols, list) or not symbols or len(symbols) > limit:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            f"'data.symbols' must be a non-empty list of at most {limit} instrument symbols.",
            correlation_id=message.correlation_id,
            limit=limit,
        )
    for symbol in symbols:
        if not isinstance(symbol, str) or not SYMBOL_RE.fullmatch(symbol):
            shown = symbol[:20] if isinstance(symbol, str) else type(symbol).__name__
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                f"{shown!r} is not an instrument symbol (1-16 of A-Z, 0-9 and '.').",
                correlation_id=message.correlation_id,
            )
    return frozenset(symbols)


def parse_since(message: ClientMessage, *, limit: int) -> dict[str, dict[str, Any]]:
    """Return `data.since` of a subscribe message: {event_type: {seq, epoch}}, checked for shape."""
    since = message.data.get("since")
    if since is None:
        return {}
    problem = None
    if not isinstance(since, dict) or len(since) > limit:
        problem = f"'data.since' must be an object of at most {limit} event types."
    else:
        for position in since.values():
            if not (
                isinstance(position, dict)
                and isinstance(position.get("seq"), int)
                and not isinstance(position.get("seq"), bool)
                and position["seq"] >= 0
                and isinstance(position.get("epoch"), str)
                and 0 < len(position["epoch"]) <= 64
            ):
                problem = 'Each \'data.since\' entry must be {"seq": <integer >= 0>, "epoch": <string>}.'
                break
    if problem:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, problem, correlation_id=message.correlation_id)
    return since


def error_message(
    code: ErrorCode | str,
    message: str,
    *,
    correlation_id: str | None = None,
    source_service: str | None = None,
    target_client: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Return an `error` message; `event` carries the code, `data.error` the human reason."""
    return envelope(
        "error",
        str(code),
        {"error": message, "code": str(code), **details},
        correlation_id=correlation_id,
        source_service=source_service,
        target_client=target_client,
    )


def command_response(
    command: str,
    status: str,
    result: Any,
    *,
    correlation_id: str | None,
    target_client: str,
    source_service: str | None = None,
) -> dict[str, Any]:
    """Return the spec's `command_response` / `<command>.response` message."""
    return envelope(
        "command_response",
        f"{command}.response",
        {"status": status, "command": command, "result": result},
        correlation_id=correlation_id,
        source_service=source_service,
        target_client=target_client,
    )
