"""Reads of orders, always through what the asking user may see."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from core.exceptions import NotFound
from core.numbers import ARITHMETIC, computed_exactly
from market.models import PriceTick
from portfolio.models import Instrument, Portfolio, Position
from portfolio.selectors import money, percent, portfolio_valuation, portfolios_visible
from portfolio.services import COST_STEP

from .execution import fee_for
from .models import RESTING_STATUSES, Fill, Order, Side

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
    status: str | Iterable[str] | None = None,
    symbol: str | None = None,
    side: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> QuerySet[Order]:
    """Return the user's visible orders, newest first, narrowed by the given filters.

    `status` is one status or several (any of them).
    """
    orders = orders_visible(user=user)
    if isinstance(status, str):
        orders = orders.filter(status=status)
    elif status:
        orders = orders.filter(status__in=list(status))
    if symbol:
        orders = orders.filter(instrument__symbol=symbol.upper())
    if side:
        orders = orders.filter(side=side)
    if created_from:
        orders = orders.filter(created_at__gte=created_from)
    if created_to:
        orders = orders.filter(created_at__lte=created_to)
    return orders


def fills_visible(
    *,
    user,
    symbol: str | None = None,
    side: str | None = None,
    executed_from: datetime | None = None,
    executed_to: datetime | None = None,
) -> QuerySet[Fill]:
    """Return the fills of the user's visible orders, newest first, narrowed by the given filters."""
    fills = (
        Fill.objects.filter(order__portfolio__in=portfolios_visible(user=user))
        .select_related("order", "order__instrument")
        .order_by("-executed_at", "-pk")
    )
    if symbol:
        fills = fills.filter(order__instrument__symbol=symbol.upper())
    if side:
        fills = fills.filter(order__side=side)
    if executed_from:
        fills = fills.filter(executed_at__gte=executed_from)
    if executed_to:
        fills = fills.filter(executed_at__lte=executed_to)
    return fills


def buy_orders_reserve(orders: Iterable[tuple[Decimal, Decimal, Decimal | None, Decimal | None]]) -> Decimal:
    """Return what resting buy orders may still spend, fees included.

    `orders` gives each order's quantity, filled quantity, price and stop price; an order
    reserves its remaining quantity at its limit (or stop) price, plus the fee of that value.
    """
    total = Decimal("0")
    for quantity, filled, price, stop_price in orders:
        # A resting buy order has a limit or a stop price (the order model's constraints).
        value = (quantity - filled) * (price or stop_price)  # type: ignore[operator]
        total += value + fee_for(value=value)
    return total


def reserved_cash(*, portfolio: Portfolio) -> Decimal:
    """Return the cash the portfolio's resting buy orders reserve (`buy_orders_reserve`), in cents."""
    orders = Order.objects.filter(portfolio=portfolio, side=Side.BUY, status__in=RESTING_STATUSES).order_by()
    return money(buy_orders_reserve(orders.values_list("quantity", "filled_quantity", "price", "stop_price")))


@computed_exactly
def realized_pnl(*, portfolio: Portfolio) -> Decimal:
    """Return the gain the portfolio's sales realised, by average cost, in cents.

    The fills are replayed in the order they were executed, per instrument, as `position_apply_fill`
    books them: a buy raises the average cost (fees included, rounded as the position stores it);
    a sale realises its proceeds less its fees less the average cost of the units sold. Manual
    position corrections are not trades and do not enter.
    """
    held: dict[int, tuple[Decimal, Decimal]] = {}  # instrument id: (quantity, average cost)
    realized = Decimal("0")
    fills = Fill.objects.filter(order__portfolio=portfolio).order_by("executed_at", "pk")
    for instrument_id, side, quantity, price, fees in fills.values_list(
        "order__instrument_id", "order__side", "quantity", "price", "fees"
    ):
        owned, average = held.get(instrument_id, (Decimal("0"), Decimal("0")))
        gross = money(quantity * price)
        if side == Side.BUY:
            total = owned + quantity
            average = ((owned * average + gross + fees) / total).quantize(
                COST_STEP, rounding=ROUND_HALF_UP, context=ARITHMETIC
            )
            held[instrument_id] = (total, average)
        else:
            realized += gross - fees - quantity * average
            remaining = max(owned - quantity, Decimal("0"))
            held[instrument_id] = (remaining, average if remaining else Decimal("0"))
    return money(realized)


def day_reference_prices(
    *, instruments: Iterable[Instrument], now: datetime | None = None
) -> dict[str, dict[str, Any]]:
    """Return, by symbol, the price each instrument's change of the day is measured from.

    The reference is the previous close: the last price recorded before today began (midnight
    in the server's time zone). An instrument without one takes the first price of today (the
    session's opening), and one without any recorded price its last price.
    """
    now = now or timezone.now()
    start = timezone.make_aware(datetime.combine(timezone.localtime(now).date(), time.min))
    references: dict[str, dict[str, Any]] = {}
    for instrument in instruments:
        ticks = PriceTick.objects.filter(instrument=instrument)
        close = ticks.filter(at__lt=start).order_by("-at", "-id").values_list("price", flat=True).first()
        if close is not None:
            references[instrument.symbol] = {"price": close, "kind": "previous_close"}
            continue
        opening = ticks.filter(at__gte=start).order_by("at", "id").values_list("price", flat=True).first()
        if opening is not None:
            references[instrument.symbol] = {"price": opening, "kind": "session_open"}
        elif instrument.last_price is not None:
            references[instrument.symbol] = {"price": instrument.last_price, "kind": "last_price"}
    return references


@computed_exactly
def portfolio_account(*, portfolio: Portfolio, now: datetime | None = None) -> dict[str, Any]:
    """Return the portfolio's cash, buying power, value, profit and loss and change of the day.

    Buying power is the cash less what resting buy orders reserve (`reserved_cash`). The change
    of the day is that of the positions held now: each quantity times its last price less its
    day reference price (`day_reference_prices`), and in percent of the positions' reference value.
    """
    positions = list(Position.objects.filter(portfolio=portfolio).select_related("instrument"))
    valuation = portfolio_valuation(portfolio=portfolio, positions=positions)
    references = day_reference_prices(instruments=[p.instrument for p in positions], now=now)
    reserved = reserved_cash(portfolio=portfolio)
    day_change = reference_value = Decimal("0")
    for position in positions:
        last = position.instrument.last_price
        reference = references.get(position.instrument.symbol)
        if last is None or reference is None:
            continue
        day_change += position.quantity * (last - reference["price"])
        reference_value += position.quantity * reference["price"]
    return {
        "portfolio_id": str(portfolio.pk),
        "name": portfolio.name,
        "cash": portfolio.cash,
        "reserved_cash": reserved,
        "buying_power": money(max(portfolio.cash - reserved, Decimal("0"))),
        "market_value": money(valuation.market_value),
        "total_value": valuation.total_value,
        "unrealized_pnl": valuation.total_change,
        "realized_pnl": realized_pnl(portfolio=portfolio),
        "day_change": money(day_change),
        "day_change_percent": percent(day_change, reference_value),
        "day_references": references,
        "fee_rate": settings.TRADING["FEE_RATE"],
        "min_fee": settings.TRADING["MIN_FEE"],
    }
