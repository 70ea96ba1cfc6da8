"""JSON as the gateway writes and reads it: decimals exact, NaN and Infinity refused.

The spec's services write money with `float()`, so 0.1 + 0.2 reaches the desk as
0.30000000000000004. Here a `Decimal` is written with exactly its digits, and numbers with a
fraction are read back as `Decimal`, so an amount survives the trip unchanged.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

_scalar = json.JSONEncoder(allow_nan=False, ensure_ascii=False).encode


def exact(value: Any) -> Decimal | int:
    """Return a money or quantity value as an exact number: Decimal or int as it is, a float as the digits it prints."""
    if isinstance(value, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(value, int):
        return value
    if isinstance(value, (float, str)):
        try:
            value = Decimal(repr(value) if isinstance(value, float) else value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    if not isinstance(value, Decimal):
        raise TypeError(f"{type(value).__name__} is not an amount")
    if not value.is_finite():
        raise ValueError(f"{value} is not a number JSON allows")
    return value


def exact_or_none(value: Any) -> Decimal | int | None:
    """Return `exact(value)`, or None for a value left unset (None or zero), as the spec's `float(x) if x else None`."""
    return exact(value) if value else None


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _scalar(key)
    if isinstance(key, Decimal):
        return _scalar(str(exact(key)))
    if key is None or isinstance(key, (bool, int, float)):
        return _scalar(_scalar(key))  # as json.dumps turns such keys into strings
    raise TypeError(f"keys must be strings, not {type(key).__name__}")


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, Decimal):
        out.append(str(exact(value)))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            out.append(("," if index else "") + _key(key) + ":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif value is None or isinstance(value, (str, bool, int, float)):
        try:
            out.append(_scalar(value))
        except ValueError:
            raise ValueError(f"{value} is not a number JSON allows") from None
    else:
        raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def encode(message: Any) -> str:
    """Serialize `message` to JSON; a Decimal becomes a number with exactly its digits."""
    out: list[str] = []
    _write(message, out)
    return "".join(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def decode(text: str | bytes) -> Any:
    """Parse JSON with every number that has a fraction or exponent as a Decimal."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    return _decoder.decode(text)


def utc_now_iso() -> str:
    """Return the current time in UTC as ISO 8601 with milliseconds and `Z`, as the gateway writes times."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
