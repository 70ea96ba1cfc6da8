"""Trading's receivers, connected in `TradingConfig.ready()`.

The `trading.*` events of an order, each built once with the spec's exact fields from
`trading.signals`, published on commit and only to the members of the order's portfolio; and
the execution of resting orders on a tick (`market.signals.price_ticked`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from portfolio.models import Instrument
from portfolio.selectors import money
from realtime.api import send_event_on_commit
from core.times import isoformat, utc_now_iso

from .execution import resting_orders_execute
from .models import Fill, Order


def _send(event_type: str, data: dict, member_ids: list[int], correlation_id: str | None) -> None:
    send_event_on_commit(event_type, data, audience=member_ids, correlation_id=correlation_id or None)


def order_created_publish(
    *, order: Order, member_ids: list[int], correlation_id: str | None = None, **kwargs: Any
) -> None:
    """Publish a new order with the status it starts in."""
    _send(
        "trading.order_created",
        {
            "order_id": str(order.pk),
            "symbol": order.instrument.symbol,
            "order_type": order.order_type,
            "side": order.side,
            "quantity": order.quantity,
            "price": order.price,
            "stop_price": order.stop_price,
            "status": order.status,
            "created_at": isoformat(order.created_at),
        },
        member_ids,
        correlation_id,
    )


def order_filled_publish(
    *, order: Order, fill: Fill, member_ids: list[int], correlation_id: str | None = None, **kwargs: Any
) -> None:
    """Publish a fill: its price, value and fees, with the order's cumulative filled quantity."""
    _send(
        "trading.order_filled",
        {
            "order_id": str(order.pk),
            "symbol": order.instrument.symbol,
            "side": order.side,
            "quantity": order.quantity,
            "filled_quantity": order.filled_quantity,
            "fill_price": fill.price,
            "total_value": money(fill.quantity * fill.price),
            "fees": fill.fees,
            "status": order.status,
            "filled_at": isoformat(fill.executed_at),
        },
        member_ids,
        correlation_id,
    )


def order_cancelled_publish(
    *, order: Order, member_ids: list[int], correlation_id: str | None = None, **kwargs: Any
) -> None:
    """Publish a cancellation with what was left unfilled."""
    _send(
        "trading.order_cancelled",
        {
            "order_id": str(order.pk),
            "symbol": order.instrument.symbol,
            "cancel_reason": order.reason,
            "remaining_quantity": order.quantity - order.filled_quantity,
            "cancelled_at": isoformat(order.cancelled_at),
        },
        member_ids,
        correlation_id,
    )


def order_failed_publish(
    *, order: Order, member_ids: list[int], correlation_id: str | None = None, **kwargs: Any
) -> None:
    """Publish an order that was rejected or could not be executed, with the reason."""
    _send(
        "trading.order_failed",
        {
            "order_id": str(order.pk),
            "symbol": order.instrument.symbol,
            "error_code": order.reason_code,
            "error_message": order.reason,
            "failed_at": utc_now_iso(),
        },
        member_ids,
        correlation_id,
    )


def price_ticked_execute(*, instrument: Instrument, price: Decimal, **kwargs: Any) -> None:
    """Execute the resting orders a committed tick crosses."""
    resting_orders_execute(instrument=instrument, price=price)
