"""What an event schema is and how data is checked against it: field kinds, `Field`, `EventSchema`.

The table of event types built from these is `events.py`. The checks follow the spec's
`to_websocket_data()` (section 2); the category sent in `type` comes from the prefix, as in the
spec's `_get_event_category`.

Services on the bus build their events with the spec's dataclasses, whose every field has a
default. What those defaults write is accepted from them (`EventSchema.as_published` and
`validate(..., spec_defaults=True)`): an empty time is filled in, an empty choice passes, and an
`int` field takes the number a Python service put there, which the spec's annotation never
enforced. Our own producers stay held to the strict schema.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from core.times import isoformat


class Kind(enum.Enum):
    STRING = "string"
    TIMESTAMP = "timestamp"  # an ISO-8601 string
    DECIMAL = "decimal"  # money, prices, quantities: Decimal or int, never float
    MEASURE = "measure"  # a measured figure (latency, rate): any finite number
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "list"  # a list of objects
    STRINGS = "strings"  # a list of strings
    OBJECT = "object"


class EventValidationError(ValueError):
    """An event whose data does not match its schema."""


# What the spec's dataclasses default a field of each kind to (section 2).
_SPEC_DEFAULTS: dict[Kind, Any] = {
    Kind.STRING: "",
    Kind.TIMESTAMP: "",
    Kind.DECIMAL: Decimal("0"),
    Kind.MEASURE: 0.0,
    Kind.INTEGER: 0,
    Kind.BOOLEAN: False,
    Kind.LIST: None,
    Kind.STRINGS: None,
    Kind.OBJECT: None,
}


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    # The spec dataclass's default where it is not the one of its kind (`status: str = "pending"`).
    default: Any = None

    @property
    def spec_default(self) -> Any:
        """Return the default of this field in the spec's dataclass."""
        if self.default is not None or self.nullable:
            return self.default
        return _SPEC_DEFAULTS[self.kind]


@dataclass(frozen=True)
class EventSchema:
    name: str
    fields: tuple[Field, ...]
    # Django permission needed to subscribe; None: every staff member may.
    permission: str | None
    # Field whose value narrows delivery (per-instrument subscriptions), if any.
    symbol_field: str | None = None
    # High-frequency events may be conflated for a socket that falls behind.
    conflatable: bool = False
    # Events of this type may be meant for some users only (an `audience`: a portfolio's members,
    # the user who asked), so a subscriber sees only some of the type's numbers and a gap in
    # `seq` is no loss. Publishing with an audience is refused for any other type.
    personal: bool = False
    # The spec's dataclass (section 2); None for the gateway's own events, which no service sends.
    spec_class: str | None = None
    # Attributes of that dataclass which `to_websocket_data()` leaves out, each after the field it follows.
    unsent: tuple[tuple[str, Field], ...] = ()

    @property
    def category(self) -> str:
        return category_of(self.name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def _expected(self) -> frozenset[str]:
        # Built once per schema: every published event is validated against it.
        return frozenset(f.name for f in self.fields)

    def validate(self, data: Any, *, spec_defaults: bool = False) -> dict[str, Any]:
        """Return `data` if it has exactly this event's fields with the right kinds; else raise.

        With `spec_defaults` (events of bus services), a choice left at the spec dataclass's
        default passes, and an integer field takes any finite number.
        """
        if not isinstance(data, dict):
            raise EventValidationError(f"{self.name}: data must be an object")
        expected = self._expected
        missing = expected - data.keys()
        extra = data.keys() - expected
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(sorted(missing))}")
            if extra:
                parts.append(f"unexpected {', '.join(sorted(map(str, extra)))}")
            raise EventValidationError(f"{self.name}: {'; '.join(parts)}")
        for spec in self.fields:
            _check_value(self.name, spec, data[spec.name], spec_defaults=spec_defaults)
        return data

    def as_published(self, data: Any, *, sent_at: Any) -> Any:
        """Return a bus service's event data with the times its dataclass left empty filled in.

        An empty time becomes the message's `timestamp` (`sent_at`) or, when that is no time, the
        time of receipt; an integral number in an integer field becomes that integer. Everything
        else is left for `validate(..., spec_defaults=True)` to judge.
        """
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for spec in self.fields:
            value = filled.get(spec.name)
            if spec.kind is Kind.TIMESTAMP and value == "":
                filled[spec.name] = service_time(sent_at)
            elif spec.kind is Kind.INTEGER and (whole := _as_int(value)) is not None:
                filled[spec.name] = whole
        return filled


def _is_finite_number(value: Any, *, allow_float: bool) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, Decimal):
        return value.is_finite()
    if allow_float and isinstance(value, float):
        return math.isfinite(value)
    return False


def _as_int(value: Any) -> int | None:
    """Return a float or Decimal that is a whole number of at most 18 digits as an int; else None."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e18:
        return int(value)
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value == value.to_integral_value()
        and value.adjusted() < 18
    ):
        return int(value)
    return None


def _check_value(event: str, spec: Field, value: Any, *, spec_defaults: bool = False) -> None:
    if value is None:
        if spec.nullable:
            return
        raise EventValidationError(f"{event}: {spec.name} must not be null")
    kind = spec.kind
    if spec_defaults:
        if kind is Kind.INTEGER and _is_finite_number(value, allow_float=True):
            return
        if spec.choices is not None and value == spec.spec_default:
            return
    if not _KIND_CHECKS[kind](value):
        raise EventValidationError(f"{event}: {spec.name} must be {kind.value}, got {type(value).__name__}")
    if spec.choices is not None and value not in spec.choices:
        raise EventValidationError(f"{event}: {spec.name} must be one of {', '.join(spec.choices)}")


# What a value of each kind must be (one table for every event, not built per value).
_KIND_CHECKS: dict[Kind, Callable[[Any], bool]] = {
    Kind.STRING: lambda v: isinstance(v, str),
    Kind.TIMESTAMP: lambda v: isinstance(v, str) and _is_iso_timestamp(v),
    Kind.DECIMAL: lambda v: _is_finite_number(v, allow_float=False),
    Kind.MEASURE: lambda v: _is_finite_number(v, allow_float=True),
    Kind.INTEGER: lambda v: isinstance(v, int) and not isinstance(v, bool),
    Kind.BOOLEAN: lambda v: isinstance(v, bool),
    Kind.LIST: lambda v: isinstance(v, list),
    Kind.STRINGS: lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    Kind.OBJECT: lambda v: isinstance(v, dict),
}


def _is_iso_timestamp(value: str) -> bool:
    if len(value) > 40:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def service_time(sent_at: Any) -> str:
    """Return a bus message's `timestamp` as a UTC time with `Z`, or now when it is no time.

    The spec's services write `datetime.utcnow().isoformat()`: a time without offset, in UTC.
    """
    if isinstance(sent_at, str) and _is_iso_timestamp(sent_at):
        moment = datetime.fromisoformat(sent_at)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        try:
            return isoformat(moment)
        except OverflowError:  # an offset that moves it out of the years 1 to 9999
            pass
    return isoformat(datetime.now(timezone.utc))


CATEGORIES = ("portfolio", "trading", "market", "analysis", "system")


def category_of(event_type: str) -> str:
    """Return the message category of an event type, as the spec's dispatcher derives it."""
    prefix = event_type.split(".", 1)[0]
    return prefix if prefix in CATEGORIES else "unknown"
