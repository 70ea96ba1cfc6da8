"""Every event type of the protocol, declared once with its schema.

The fields are exactly those of the spec's `to_websocket_data()` (section 2); the category sent
in `type` comes from the prefix, as in the spec's `_get_event_category`. The same schemas check
events from our own services, from the Redis bus and from `manage.py emit_event`, and the
TypeScript client mirrors them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


class Kind(enum.Enum):
    STRING = "string"
    TIMESTAMP = "timestamp"  # an ISO-8601 string
    DECIMAL = "decimal"  # money, prices, quantities: Decimal or int, never float
    MEASURE = "measure"  # a measured figure (latency, rate): any finite number
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "list"
    OBJECT = "object"


class EventValidationError(ValueError):
    """An event whose data does not match its schema."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    nullable: bool = False
    choices: tuple[str, ...] | None = None


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

    @property
    def category(self) -> str:
        return category_of(self.name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def validate(self, data: Any) -> dict[str, Any]:
        """Return `data` if it has exactly this event's fields with the right kinds; else raise."""
        if not isinstance(data, dict):
            raise EventValidationError(f"{self.name}: data must be an object")
        expected = set(self.field_names)
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
            _check_value(self.name, spec, data[spec.name])
        return data


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


def _check_value(event: str, spec: Field, value: Any) -> None:
    if value is None:
        if spec.nullable:
            return
        raise EventValidationError(f"{event}: {spec.name} must not be null")
    kind = spec.kind
    ok = {
        Kind.STRING: lambda v: isinstance(v, str),
        Kind.TIMESTAMP: lambda v: isinstance(v, str) and _is_iso_timestamp(v),
        Kind.DECIMAL: lambda v: _is_finite_number(v, allow_float=False),
        Kind.MEASURE: lambda v: _is_finite_number(v, allow_float=True),
        Kind.INTEGER: lambda v: isinstance(v, int) and not isinstance(v, bool),
        Kind.BOOLEAN: lambda v: isinstance(v, bool),
        Kind.LIST: lambda v: isinstance(v, list),
        Kind.OBJECT: lambda v: isinstance(v, dict),
    }[kind](value)
    if not ok:
        raise EventValidationError(f"{event}: {spec.name} must be {kind.value}, got {type(value).__name__}")
    if spec.choices is not None and value not in spec.choices:
        raise EventValidationError(f"{event}: {spec.name} must be one of {', '.join(spec.choices)}")


def _is_iso_timestamp(value: str) -> bool:
    if len(value) > 40:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


CATEGORIES = ("portfolio", "trading", "market", "analysis", "system")


def category_of(event_type: str) -> str:
    """Return the message category of an event type, as the spec's dispatcher derives it."""
    prefix = event_type.split(".", 1)[0]
    return prefix if prefix in CATEGORIES else "unknown"


S, T, D, M, I, B, L, O = (
    Kind.STRING,
    Kind.TIMESTAMP,
    Kind.DECIMAL,
    Kind.MEASURE,
    Kind.INTEGER,
    Kind.BOOLEAN,
    Kind.LIST,
    Kind.OBJECT,
)

PORTFOLIO_PERMISSION = "portfolio.view_portfolio"
TRADING_PERMISSION = "trading.view_order"
SYSTEM_PERMISSION = "realtime.view_system_events"

ORDER_TYPES = ("market", "limit", "stop")
SIDES = ("buy", "sell")

_SCHEMAS = (
    # 2.1 Portfolio
    EventSchema(
        "portfolio.update",
        (
            Field("portfolio_id", S),
            Field("total_value", D),
            Field("total_change", D),
            Field("total_change_percent", D),
            Field("positions_count", I),
            Field("last_updated", T),
            Field("positions", L),
        ),
        PORTFOLIO_PERMISSION,
    ),
    EventSchema(
        "portfolio.position_changed",
        (
            Field("portfolio_id", S),
            Field("symbol", S),
            Field("isin", S),
            Field("action", S, choices=("buy", "sell", "update")),
            Field("quantity", D),
            Field("price", D),
            Field("value", D),
            Field("change", D),
            Field("change_percent", D),
            Field("timestamp", T),
        ),
        PORTFOLIO_PERMISSION,
    ),
    EventSchema(
        "portfolio.value_changed",
        (
            Field("portfolio_id", S),
            Field("previous_value", D),
            Field("current_value", D),
            Field("change", D),
            Field("change_percent", D),
            Field("trigger_reason", S),
            Field("timestamp", T),
        ),
        PORTFOLIO_PERMISSION,
    ),
    # 2.2 Trading
    EventSchema(
        "trading.order_created",
        (
            Field("order_id", S),
            Field("symbol", S),
            Field("order_type", S, choices=ORDER_TYPES),
            Field("side", S, choices=SIDES),
            Field("quantity", D),
            Field("price", D, nullable=True),
            Field("stop_price", D, nullable=True),
            Field("status", S),
            Field("created_at", T),
        ),
        TRADING_PERMISSION,
    ),
    EventSchema(
        "trading.order_filled",
        (
            Field("order_id", S),
            Field("symbol", S),
            Field("side", S, choices=SIDES),
            Field("quantity", D),
            Field("filled_quantity", D),
            Field("fill_price", D),
            Field("total_value", D),
            Field("fees", D),
            Field("status", S, choices=("filled", "partially_filled")),
            Field("filled_at", T),
        ),
        TRADING_PERMISSION,
    ),
    EventSchema(
        "trading.order_cancelled",
        (
            Field("order_id", S),
            Field("symbol", S),
            Field("cancel_reason", S),
            Field("remaining_quantity", D),
            Field("cancelled_at", T),
        ),
        TRADING_PERMISSION,
    ),
    EventSchema(
        "trading.order_failed",
        (
            Field("order_id", S),
            Field("symbol", S),
            Field("error_code", S),
            Field("error_message", S),
            Field("failed_at", T),
        ),
        TRADING_PERMISSION,
    ),
    # 2.3 Market data
    EventSchema(
        "market.price_update",
        (
            Field("symbol", S),
            Field("isin", S),
            Field("price", D),
            Field("previous_price", D),
            Field("change", D),
            Field("change_percent", D),
            Field("volume", I),
            Field("timestamp", T),
            Field("source", S),
        ),
        None,
        symbol_field="symbol",
        conflatable=True,
    ),
    EventSchema(
        "market.alert",
        (
            Field("alert_type", S),
            Field("symbol", S),
            Field("message", S),
            Field("severity", S, choices=("info", "warning", "critical")),
            Field("trigger_value", D),
            Field("current_value", D),
            Field("threshold", D),
            Field("timestamp", T),
        ),
        None,
        symbol_field="symbol",
    ),
    EventSchema(
        "analysis.complete",
        (
            Field("analysis_id", S),
            Field("analysis_type", S),
            Field("symbol", S),
            Field("result", O),
            Field("confidence_score", D),
            Field("recommendation", S, choices=("buy", "sell", "hold")),
            Field("completed_at", T),
        ),
        None,
        symbol_field="symbol",
    ),
    # 2.4 System
    EventSchema(
        "system.service_status",
        (
            Field("service_name", S),
            Field("status", S, choices=("online", "offline", "degraded")),
            Field("health_score", I),
            Field("response_time_ms", M),
            Field("error_rate", M),
            Field("timestamp", T),
            Field("additional_info", O),
        ),
        SYSTEM_PERMISSION,
    ),
    EventSchema(
        "system.performance_alert",
        (
            Field("alert_type", S),
            Field("service_name", S),
            Field("metric_name", S),
            Field("current_value", M),
            Field("threshold", M),
            Field("severity", S, choices=("warning", "critical")),
            Field("timestamp", T),
        ),
        SYSTEM_PERMISSION,
    ),
    EventSchema(
        "system.error",
        (
            Field("error_id", S),
            Field("service_name", S),
            Field("error_type", S),
            Field("error_message", S),
            Field("severity", S, choices=("warning", "error", "critical")),
            Field("user_affected", B),
            Field("timestamp", T),
        ),
        SYSTEM_PERMISSION,
    ),
)

MONITOR_PERMISSION = "realtime.monitor_gateway"

# Gateway monitoring (not in the spec): one process's view of its connections and traffic, sent
# to the monitoring page that asked for it (`monitor_snapshot`).
_SCHEMAS += (
    EventSchema(
        "system.gateway_snapshot",
        (
            Field("process", S),
            Field("connections", L),
            Field("connections_total", I),
            Field("events_delivered", O),
            Field("messages_received", I),
            Field("messages_sent", I),
            Field("recent_errors", L),
            Field("timestamp", T),
        ),
        MONITOR_PERMISSION,
    ),
)

EVENT_SCHEMAS: dict[str, EventSchema] = {schema.name: schema for schema in _SCHEMAS}


def get_schema(event_type: str) -> EventSchema:
    try:
        return EVENT_SCHEMAS[event_type]
    except KeyError:
        raise EventValidationError(f"unknown event type {event_type!r}") from None
