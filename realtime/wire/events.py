"""Every event type of the protocol, declared once with its schema.

The fields are exactly those of the spec's `to_websocket_data()` (section 2). The same schemas
check events from our own services, from the Redis bus and from `manage.py emit_event`, and the
TypeScript types (`manage.py generate_ts_events`) and the service library's event classes
(`manage.py generate_service_events`) are generated from them. What a schema is and how it checks
data (and what it accepts from the spec's dataclass defaults) is `schema.py`.
"""

from __future__ import annotations

from realtime.wire.schema import EventSchema, EventValidationError, Field, Kind

# One-letter kinds keep the schema table below readable as a table.
S, T, D, M, I, B, L, O = (  # noqa: E741
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

_SCHEMAS: tuple[EventSchema, ...] = (
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
        spec_class="PortfolioUpdateEvent",
        personal=True,
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
        spec_class="PositionChangedEvent",
        personal=True,
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
        spec_class="PortfolioValueChangedEvent",
        personal=True,
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
            Field("status", S, default="pending"),
            Field("created_at", T),
        ),
        TRADING_PERMISSION,
        spec_class="OrderCreatedEvent",
        personal=True,
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
            Field("status", S, choices=("filled", "partially_filled"), default="filled"),
            Field("filled_at", T),
        ),
        TRADING_PERMISSION,
        spec_class="OrderFilledEvent",
        personal=True,
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
        spec_class="OrderCancelledEvent",
        personal=True,
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
        spec_class="OrderFailedEvent",
        personal=True,
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
        spec_class="PriceUpdateEvent",
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
        spec_class="MarketAlertEvent",
        personal=True,
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
        spec_class="AnalysisCompleteEvent",
        personal=True,
    ),
    # 2.4 System
    EventSchema(
        "system.service_status",
        (
            Field("service_name", S),
            Field("status", S, choices=("online", "offline", "degraded")),
            Field("health_score", I, default=100),
            Field("response_time_ms", M),
            Field("error_rate", M),
            Field("timestamp", T),
            Field("additional_info", O),
        ),
        SYSTEM_PERMISSION,
        spec_class="ServiceStatusEvent",
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
        spec_class="PerformanceAlertEvent",
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
        spec_class="ErrorOccurredEvent",
        unsent=(("error_message", Field("stack_trace", S, nullable=True)),),
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
    # A message from the Redis bus that was dropped (docs/recovery.md, "Bad messages on the bus"):
    # sent when the drop is logged, at most once per reason every 10 s, with how many of that
    # reason were dropped since the last one; for the event inspector.
    EventSchema(
        "system.bus_message_dropped",
        (
            Field("reason", S),
            Field("detail", S),
            Field("excerpt", S),
            Field("dropped_since_last", I),
            Field("timestamp", T),
        ),
        MONITOR_PERMISSION,
    ),
)

USER_ACTIVITY_PERMISSION = "realtime.view_user_activity"
# Who did what on the gateway: the spec's user events (section 1.1 names the types and no fields).
# The gateway writes them from the sockets' real paths, for supervisors and audit: a socket
# opened or closed (`user.action`), a command refused or run to its end (`user.command`; its
# arguments stay with the app's own audit), a subscription change (`user.subscription`). Their
# category is the spec dispatcher's for a prefix it does not know: "unknown".
_USER_FIELDS = (Field("user_id", I), Field("username", S), Field("client_id", S))
COMMAND_OUTCOMES = ("success", "error", "failure", "refused", "forwarded")
_SCHEMAS += (
    EventSchema(
        "user.action",
        (*_USER_FIELDS, Field("action", S, choices=("connected", "disconnected")), Field("timestamp", T)),
        USER_ACTIVITY_PERMISSION,
    ),
    EventSchema(
        "user.command",
        (
            *_USER_FIELDS,
            Field("command", S),
            Field("status", S, choices=COMMAND_OUTCOMES),
            Field("error_code", S, nullable=True),
            Field("duration_ms", M, nullable=True),
            Field("timestamp", T),
        ),
        USER_ACTIVITY_PERMISSION,
    ),
    EventSchema(
        "user.subscription",
        (
            *_USER_FIELDS,
            Field("action", S, choices=("subscribe", "unsubscribe", "revoked")),
            Field("event_types", Kind.STRINGS),
            Field("symbols", Kind.STRINGS, nullable=True),
            Field("timestamp", T),
        ),
        USER_ACTIVITY_PERMISSION,
    ),
)

EVENT_SCHEMAS: dict[str, EventSchema] = {schema.name: schema for schema in _SCHEMAS}


def get_schema(event_type: str) -> EventSchema:
    try:
        return EVENT_SCHEMAS[event_type]
    except KeyError:
        raise EventValidationError(f"unknown event type {event_type!r}") from None
