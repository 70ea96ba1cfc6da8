"""The event classes of the spec's section 2, one per event type, with exact decimals on the wire.

Generated from the gateway's schema table (`realtime/wire/events.py`) by
`python manage.py generate_service_events`; do not edit. Every class is the spec's dataclass:
the same name, fields, order and defaults, and a `to_websocket_data()` returning the same keys,
except that money and quantities stay `Decimal` instead of becoming `float`.

One file however long it grows (the 400-line rule for modules does not apply to it): it is the
schema table written out class by class, no one reads or edits it by hand, and `--check` and the
tests compare it whole with what the table gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .codec import exact, exact_or_none

__all__ = [
    "CATEGORIES",
    "EVENT_CLASSES",
    "PortfolioUpdateEvent",
    "PositionChangedEvent",
    "PortfolioValueChangedEvent",
    "OrderCreatedEvent",
    "OrderFilledEvent",
    "OrderCancelledEvent",
    "OrderFailedEvent",
    "PriceUpdateEvent",
    "MarketAlertEvent",
    "AnalysisCompleteEvent",
    "ServiceStatusEvent",
    "PerformanceAlertEvent",
    "ErrorOccurredEvent",
]

CATEGORIES = ("portfolio", "trading", "market", "analysis", "system")


@dataclass
class PortfolioUpdateEvent:
    """The `portfolio.update` event (spec section 2.1)."""

    event_type: str = "portfolio.update"
    portfolio_id: str = ""
    total_value: Decimal = Decimal("0")
    total_change: Decimal = Decimal("0")
    total_change_percent: Decimal = Decimal("0")
    positions_count: int = 0
    last_updated: str = ""
    positions: list[dict[str, Any]] | None = None

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "portfolio_id": self.portfolio_id,
            "total_value": exact(self.total_value),
            "total_change": exact(self.total_change),
            "total_change_percent": exact(self.total_change_percent),
            "positions_count": self.positions_count,
            "last_updated": self.last_updated,
            "positions": self.positions or [],
        }


@dataclass
class PositionChangedEvent:
    """The `portfolio.position_changed` event (spec section 2.1)."""

    event_type: str = "portfolio.position_changed"
    portfolio_id: str = ""
    symbol: str = ""
    isin: str = ""
    action: str = ""
    quantity: Decimal = Decimal("0")
    price: Decimal = Decimal("0")
    value: Decimal = Decimal("0")
    change: Decimal = Decimal("0")
    change_percent: Decimal = Decimal("0")
    timestamp: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "portfolio_id": self.portfolio_id,
            "symbol": self.symbol,
            "isin": self.isin,
            "action": self.action,
            "quantity": exact(self.quantity),
            "price": exact(self.price),
            "value": exact(self.value),
            "change": exact(self.change),
            "change_percent": exact(self.change_percent),
            "timestamp": self.timestamp,
        }


@dataclass
class PortfolioValueChangedEvent:
    """The `portfolio.value_changed` event (spec section 2.1)."""

    event_type: str = "portfolio.value_changed"
    portfolio_id: str = ""
    previous_value: Decimal = Decimal("0")
    current_value: Decimal = Decimal("0")
    change: Decimal = Decimal("0")
    change_percent: Decimal = Decimal("0")
    trigger_reason: str = ""
    timestamp: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "portfolio_id": self.portfolio_id,
            "previous_value": exact(self.previous_value),
            "current_value": exact(self.current_value),
            "change": exact(self.change),
            "change_percent": exact(self.change_percent),
            "trigger_reason": self.trigger_reason,
            "timestamp": self.timestamp,
        }


@dataclass
class OrderCreatedEvent:
    """The `trading.order_created` event (spec section 2.2)."""

    event_type: str = "trading.order_created"
    order_id: str = ""
    symbol: str = ""
    order_type: str = ""
    side: str = ""
    quantity: Decimal = Decimal("0")
    price: Decimal | None = None
    stop_price: Decimal | None = None
    status: str = "pending"
    created_at: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "order_type": self.order_type,
            "side": self.side,
            "quantity": exact(self.quantity),
            "price": exact_or_none(self.price),
            "stop_price": exact_or_none(self.stop_price),
            "status": self.status,
            "created_at": self.created_at,
        }


@dataclass
class OrderFilledEvent:
    """The `trading.order_filled` event (spec section 2.2)."""

    event_type: str = "trading.order_filled"
    order_id: str = ""
    symbol: str = ""
    side: str = ""
    quantity: Decimal = Decimal("0")
    filled_quantity: Decimal = Decimal("0")
    fill_price: Decimal = Decimal("0")
    total_value: Decimal = Decimal("0")
    fees: Decimal = Decimal("0")
    status: str = "filled"
    filled_at: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": exact(self.quantity),
            "filled_quantity": exact(self.filled_quantity),
            "fill_price": exact(self.fill_price),
            "total_value": exact(self.total_value),
            "fees": exact(self.fees),
            "status": self.status,
            "filled_at": self.filled_at,
        }


@dataclass
class OrderCancelledEvent:
    """The `trading.order_cancelled` event (spec section 2.2)."""

    event_type: str = "trading.order_cancelled"
    order_id: str = ""
    symbol: str = ""
    cancel_reason: str = ""
    remaining_quantity: Decimal = Decimal("0")
    cancelled_at: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "cancel_reason": self.cancel_reason,
            "remaining_quantity": exact(self.remaining_quantity),
            "cancelled_at": self.cancelled_at,
        }


@dataclass
class OrderFailedEvent:
    """The `trading.order_failed` event (spec section 2.2)."""

    event_type: str = "trading.order_failed"
    order_id: str = ""
    symbol: str = ""
    error_code: str = ""
    error_message: str = ""
    failed_at: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "failed_at": self.failed_at,
        }


@dataclass
class PriceUpdateEvent:
    """The `market.price_update` event (spec section 2.3)."""

    event_type: str = "market.price_update"
    symbol: str = ""
    isin: str = ""
    price: Decimal = Decimal("0")
    previous_price: Decimal = Decimal("0")
    change: Decimal = Decimal("0")
    change_percent: Decimal = Decimal("0")
    volume: int = 0
    timestamp: str = ""
    source: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "symbol": self.symbol,
            "isin": self.isin,
            "price": exact(self.price),
            "previous_price": exact(self.previous_price),
            "change": exact(self.change),
            "change_percent": exact(self.change_percent),
            "volume": self.volume,
            "timestamp": self.timestamp,
            "source": self.source,
        }


@dataclass
class MarketAlertEvent:
    """The `market.alert` event (spec section 2.3)."""

    event_type: str = "market.alert"
    alert_type: str = ""
    symbol: str = ""
    message: str = ""
    severity: str = ""
    trigger_value: Decimal = Decimal("0")
    current_value: Decimal = Decimal("0")
    threshold: Decimal = Decimal("0")
    timestamp: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "alert_type": self.alert_type,
            "symbol": self.symbol,
            "message": self.message,
            "severity": self.severity,
            "trigger_value": exact(self.trigger_value),
            "current_value": exact(self.current_value),
            "threshold": exact(self.threshold),
            "timestamp": self.timestamp,
        }


@dataclass
class AnalysisCompleteEvent:
    """The `analysis.complete` event (spec section 2.3)."""

    event_type: str = "analysis.complete"
    analysis_id: str = ""
    analysis_type: str = ""
    symbol: str = ""
    result: dict[str, Any] | None = None
    confidence_score: Decimal = Decimal("0")
    recommendation: str = ""
    completed_at: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "analysis_id": self.analysis_id,
            "analysis_type": self.analysis_type,
            "symbol": self.symbol,
            "result": self.result or {},
            "confidence_score": exact(self.confidence_score),
            "recommendation": self.recommendation,
            "completed_at": self.completed_at,
        }


@dataclass
class ServiceStatusEvent:
    """The `system.service_status` event (spec section 2.4)."""

    event_type: str = "system.service_status"
    service_name: str = ""
    status: str = ""
    health_score: int = 100
    response_time_ms: float = 0.0
    error_rate: float = 0.0
    timestamp: str = ""
    additional_info: dict[str, Any] | None = None

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "service_name": self.service_name,
            "status": self.status,
            "health_score": self.health_score,
            "response_time_ms": self.response_time_ms,
            "error_rate": self.error_rate,
            "timestamp": self.timestamp,
            "additional_info": self.additional_info or {},
        }


@dataclass
class PerformanceAlertEvent:
    """The `system.performance_alert` event (spec section 2.4)."""

    event_type: str = "system.performance_alert"
    alert_type: str = ""
    service_name: str = ""
    metric_name: str = ""
    current_value: float = 0.0
    threshold: float = 0.0
    severity: str = ""
    timestamp: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "alert_type": self.alert_type,
            "service_name": self.service_name,
            "metric_name": self.metric_name,
            "current_value": self.current_value,
            "threshold": self.threshold,
            "severity": self.severity,
            "timestamp": self.timestamp,
        }


@dataclass
class ErrorOccurredEvent:
    """The `system.error` event (spec section 2.4)."""

    event_type: str = "system.error"
    error_id: str = ""
    service_name: str = ""
    error_type: str = ""
    error_message: str = ""
    stack_trace: str | None = None
    severity: str = ""
    user_affected: bool = False
    timestamp: str = ""

    def to_websocket_data(self) -> dict[str, Any]:
        """Return the event's `data` as the spec writes it, money and quantities as exact decimals."""
        return {
            "error_id": self.error_id,
            "service_name": self.service_name,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "severity": self.severity,
            "user_affected": self.user_affected,
            "timestamp": self.timestamp,
        }


# The class of every event type a service may send.
EVENT_CLASSES: dict[str, type] = {
    "portfolio.update": PortfolioUpdateEvent,
    "portfolio.position_changed": PositionChangedEvent,
    "portfolio.value_changed": PortfolioValueChangedEvent,
    "trading.order_created": OrderCreatedEvent,
    "trading.order_filled": OrderFilledEvent,
    "trading.order_cancelled": OrderCancelledEvent,
    "trading.order_failed": OrderFailedEvent,
    "market.price_update": PriceUpdateEvent,
    "market.alert": MarketAlertEvent,
    "analysis.complete": AnalysisCompleteEvent,
    "system.service_status": ServiceStatusEvent,
    "system.performance_alert": PerformanceAlertEvent,
    "system.error": ErrorOccurredEvent,
}
