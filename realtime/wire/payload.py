"""Read typed arguments out of a command's `data`, refusing each malformed one with its field named.

Handlers of every app use these so a missing symbol, a non-numeric quantity or an id that is not
a number are answered the same way everywhere: an error response with `validation_error`, a
message and the `field`, before any service runs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, overload

from core.exceptions import ValidationFailed
from core.numbers import Digits, ascii_int, decimal_from_input, decimal_validate

from realtime.wire.protocol import ErrorCode

_MISSING = object()


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(str(ErrorCode.VALIDATION_ERROR), message, field=field)


# Each reader is typed twice over: a required read (the default) returns its value or raises, so
# its result is never None; only a read with `required=False` may return None.
@overload
def text_arg(data: dict[str, Any], field: str, *, required: Literal[True] = True, max_length: int = 64) -> str: ...
@overload
def text_arg(data: dict[str, Any], field: str, *, required: bool, max_length: int = 64) -> str | None: ...
def text_arg(data: dict[str, Any], field: str, *, required: bool = True, max_length: int = 64) -> str | None:
    """Return a non-empty string argument (trimmed), None if optional and absent or null."""
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise _refuse(field, f"'{field}' is required.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _refuse(field, f"'{field}' must be a non-empty string.")
    value = value.strip()
    if len(value) > max_length:
        raise _refuse(field, f"'{field}' may be at most {max_length} characters long.")
    return value


@overload
def decimal_arg(
    data: dict[str, Any], field: str, *, digits: Digits | None = None, required: Literal[True] = True
) -> Decimal: ...
@overload
def decimal_arg(
    data: dict[str, Any], field: str, *, digits: Digits | None = None, required: bool
) -> Decimal | None: ...
def decimal_arg(
    data: dict[str, Any], field: str, *, digits: Digits | None = None, required: bool = True
) -> Decimal | None:
    """Return an exact number argument, None if optional and absent or null.

    A JSON number or a string in the JSON number grammar (ASCII digits, no separators). With
    `digits`, the column the value goes into, a value that column would not store exactly is
    refused.
    """
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise _refuse(field, f"'{field}' is required.")
        return None
    number = decimal_from_input(value)
    if number is None:
        raise _refuse(field, f"'{field}' must be a number (JSON number or decimal string of ASCII digits).")
    if digits is not None:
        number = decimal_validate(number, digits=digits, field=field)
    return number


@overload
def id_arg(data: dict[str, Any], field: str, *, required: Literal[True] = True) -> int: ...
@overload
def id_arg(data: dict[str, Any], field: str, *, required: bool) -> int | None: ...
def id_arg(data: dict[str, Any], field: str, *, required: bool = True) -> int | None:
    """Return a positive integer id (JSON integer or digit string), None if optional and absent or null."""
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise _refuse(field, f"'{field}' is required.")
        return None
    if isinstance(value, str):
        value = ascii_int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise _refuse(field, f"'{field}' must be a positive integer id.")
    return value
