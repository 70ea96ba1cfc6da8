"""Reads of orders, always through what the asking user may see."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from aktienanalyse.exceptions import NotFound
from portfolio.selectors import portfolios_visible

from .models import Order

ORDER_VIEW_PERMISSION = "trading.view_order"  # read orders: events, history, detail
ORDER_PLACE_PERMISSION = "trading.add_order"
ORDER_CHANGE_PERMISSION = "trading.change_order"  # modify and cancel


def orders_visible(*, user) -> QuerySet[Order]:
    """Return the orders of the portfolios `user` is a member of, newest first."""
    return (
        Order.objects.filter(portfolio__in=portfolios_visible(user=user))
        .select_related("instrument", "portfolio")
        .order_by("-created_at", "-pk")
    )


def order_get_visible(*, user, order_id: int) -> Order:
    """Return an order of one of the user's portfolios, or raise `NotFound` (also for others' orders)."""
    order = orders_visible(user=user).filter(pk=order_id).first()
    if order is None:
        raise NotFound("order_not_found", f"Order {order_id} does not exist or is not yours.")
    return order


def order_history(
    *,
    user,
    status: str | None = None,
    symbol: str | None = None,
    side: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> QuerySet[Order]:
    """Return the user's visible orders, newest first, narrowed by the given filters."""
    orders = orders_visible(user=user)
    if status:
        orders = orders.filter(status=status)
    if symbol:
        orders = orders.filter(instrument__symbol=symbol.upper())
    if side:
        orders = orders.filter(side=side)
    if created_from:
        orders = orders.filter(created_at__gte=created_from)
    if created_to:
        orders = orders.filter(created_at__lte=created_to)
    return orders
