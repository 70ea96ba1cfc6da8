"""The `trading.*` events of an order, each built once with the spec's exact fields.

They go out on commit and only to the members of the order's portfolio: `audience`, which the
caller read once for its transaction (`PortfolioBook.member_ids`).
"""

from __future__ import annotations

from portfolio.selectors import money
from realtime.api import send_event_on_commit
from core.times import isoformat, utc_now_iso

from .models import Fill, Order


def _send(event_type: str, data: dict, audience: list[int], correlation_id: str | None) -> None:
    send_event_on_commit(event_type, data, audience=audience, correlation_id=correlation_id or None)


def order_created_announce(*, order: Order, audience: list[int], correlation_id: str | None = None) -> None:
    """Announce a new order with the status it starts in."""
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
        audience,
        correlation_id,
    )


def order_filled_announce(*, order: Order, fill: Fill, audience: list[int], correlation_id: str | None = None) -> None:
    """Announce a fill: its price, value and fees, with the order's cumulative filled quantity."""
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
        audience,
        correlation_id,
    )


def order_cancelled_announce(*, order: Order, audience: list[int], correlation_id: str | None = None) -> None:
    """Announce a cancellation with what was left unfilled."""
    _send(
        "trading.order_cancelled",
        {
            "order_id": str(order.pk),
            "symbol": order.instrument.symbol,
            "cancel_reason": order.reason,
            "remaining_quantity": order.quantity - order.filled_quantity,
            "cancelled_at": isoformat(order.cancelled_at),
        },
        audience,
        correlation_id,
    )


def order_failed_announce(*, order: Order, audience: list[int], correlation_id: str | None = None) -> None:
    """Announce an order that was rejected or could not be executed, with the reason."""
    _send(
        "trading.order_failed",
        {
            "order_id": str(order.pk),
            "symbol": order.instrument.symbol,
            "error_code": order.reason_code,
            "error_message": order.reason,
            "failed_at": utc_now_iso(),
        },
        audience,
        correlation_id,
    )

