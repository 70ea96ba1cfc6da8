"""What the gateway accepts from the spec's Redis event bus: the checks and the parsing of one message.

Every bus message is validated like client input (`realtime.wire.protocol.decode`, the schemas of
`realtime.wire.events`, which accept what the spec's dataclass defaults write): malformed JSON,
unknown event types and wrong field types raise `BusMessageRejected` with the reason, and the
bridge (`bridge.py`) logs and drops that message alone. A valid one becomes the channel-layer
message that delivers it (`realtime.delivery.messages`).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

from realtime.delivery import messages
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.protocol import CLIENT_ID_RE, COMMAND_NAME_RE, CORRELATION_ID_MAX, command_response, decode, encode
from realtime.wire.schema import EventValidationError

MAX_BUS_MESSAGE_BYTES = 1024 * 1024


class DropReason(enum.StrEnum):
    """Why a bus message was dropped: the `reason` label of `realtime_bus_messages_dropped_total`."""

    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_VALUE = "invalid_value"  # too deep, a string too long, a number out of range, a lone surrogate
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_EVENT = "unknown_event"
    INVALID_DATA = "invalid_data"
    DUPLICATE = "duplicate"
    DELIVERY_FAILED = "delivery_failed"


class BusMessageRejected(ValueError):
    """A bus message that cannot be delivered; the text says why, `reason` names the kind."""

    def __init__(self, message: str, reason: DropReason = DropReason.INVALID_ENVELOPE):
        super().__init__(message)
        self.reason = reason


def _optional_str(raw: dict[str, Any], key: str, *, limit: int = 256) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise BusMessageRejected(f"{key} must be a string of 1 to {limit} characters")
    return value


# What a bus message may hold anywhere in it. The spec's services send flat events of a few
# dozen fields; these bounds only keep out what no client could use and what would cost the
# gateway more than a message should: recursion in the encoder, megabyte strings, numbers no
# client parses exactly, and lone surrogates that cannot be written as UTF-8.
MAX_BUS_DEPTH = 32
MAX_BUS_STRING = 64 * 1024
MAX_BUS_DIGITS = 40  # significant digits of a number
MAX_BUS_EXPONENT = 40  # |adjusted exponent| of a number: 1e40 and 1e-40 are the limits


def check_bus_value(value: Any) -> None:
    """Raise `BusMessageRejected` unless every string, number and nesting level in `value` is in bounds."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:  # iterative, so no input can exhaust the stack
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_bus_string(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_BUS_DEPTH:
                raise BusMessageRejected(f"nested deeper than {MAX_BUS_DEPTH} levels", DropReason.INVALID_VALUE)
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_bus_string(key)
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, Decimal) or (isinstance(item, int) and not isinstance(item, bool)):
            number = Decimal(item)
            if number and (len(number.as_tuple().digits) > MAX_BUS_DIGITS or abs(number.adjusted()) > MAX_BUS_EXPONENT):
                raise BusMessageRejected(f"a number out of range ({str(number)[:40]})", DropReason.INVALID_VALUE)


def _check_bus_string(text: str) -> None:
    if len(text) > MAX_BUS_STRING:
        raise BusMessageRejected(f"a string longer than {MAX_BUS_STRING} characters", DropReason.INVALID_VALUE)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BusMessageRejected("a string with a lone surrogate (not UTF-8)", DropReason.INVALID_VALUE) from None


def parse_bus_message(raw: str | bytes) -> dict[str, Any]:
    """Validate one message of the spec's bus and return the channel-layer message delivering it.

    Whatever fails on the way (parsing, validation, building or encoding the frame) raises
    `BusMessageRejected` with the reason, never anything else, so one bad message is dropped alone.
    """
    if len(raw) > MAX_BUS_MESSAGE_BYTES:
        raise BusMessageRejected(f"larger than {MAX_BUS_MESSAGE_BYTES} bytes", DropReason.TOO_LARGE)
    try:
        message = decode(raw)
    except RecursionError:
        raise BusMessageRejected(f"nested deeper than {MAX_BUS_DEPTH} levels", DropReason.INVALID_VALUE) from None
    except ValueError as exc:  # not JSON, not UTF-8, a lone surrogate
        raise BusMessageRejected(f"malformed JSON ({str(exc)[:200]})", DropReason.MALFORMED_JSON) from None
    if not isinstance(message, dict):
        raise BusMessageRejected("not a JSON object")
    check_bus_value(message)
    try:
        return _bus_message(message)
    except BusMessageRejected:
        raise
    except (ValueError, TypeError, RecursionError) as exc:  # the frame could not be built or encoded
        raise BusMessageRejected(
            f"cannot be encoded ({type(exc).__name__}: {str(exc)[:200]})", DropReason.INVALID_DATA
        ) from None


def _bus_message(message: dict[str, Any]) -> dict[str, Any]:
    type_ = message.get("type")
    event = message.get("event")
    if not isinstance(type_, str) or not isinstance(event, str):
        raise BusMessageRejected("'type' and 'event' must be strings")
    correlation_id = _optional_str(message, "correlation_id", limit=CORRELATION_ID_MAX)
    source_service = _optional_str(message, "source_service")
    target_client = message.get("target_client")
    if target_client is not None and (not isinstance(target_client, str) or not CLIENT_ID_RE.fullmatch(target_client)):
        raise BusMessageRejected("target_client must be a client id")
    if type_ == "command_response":
        return _command_response_message(message, event, correlation_id, source_service, target_client)
    schema = EVENT_SCHEMAS.get(event)
    if schema is None:
        raise BusMessageRejected(f"unknown event type {event[:100]!r}", DropReason.UNKNOWN_EVENT)
    if type_ != schema.category:
        raise BusMessageRejected(f"type {type_[:40]!r} does not match the category {schema.category!r} of {event}")
    try:
        return messages.build_event_message(
            event,
            schema.as_published(message.get("data"), sent_at=message.get("timestamp")),
            correlation_id=correlation_id,
            source_service=source_service,
            target_client=target_client,
            spec_defaults=True,
        )
    except EventValidationError as exc:
        raise BusMessageRejected(str(exc), DropReason.INVALID_DATA) from None


def _command_response_message(
    message: dict[str, Any],
    event: str,
    correlation_id: str | None,
    source_service: str | None,
    target_client: str | None,
) -> dict[str, Any]:
    if target_client is None:
        raise BusMessageRejected("a command_response needs a target_client")
    command = event.removesuffix(".response")
    if command == event or not COMMAND_NAME_RE.fullmatch(command):
        raise BusMessageRejected("a command_response's event is '<command>.response'")
    data = message.get("data")
    if not isinstance(data, dict) or set(data) != {"status", "command", "result"}:
        raise BusMessageRejected(
            "a command_response's data has exactly status, command and result", DropReason.INVALID_DATA
        )
    if data["status"] not in ("success", "error") or data["command"] != command:
        raise BusMessageRejected(
            "status must be success or error, and command must match the event", DropReason.INVALID_DATA
        )
    frame = command_response(
        command,
        data["status"],
        data["result"],
        correlation_id=correlation_id,
        target_client=target_client,
        source_service=source_service,
    )
    return {"type": messages.DIRECT, "group": messages.client_group(target_client), "text": encode(frame)}
