"""The paper broker: orders really execute here, against the instruments' prices.

A market order fills at the instrument's last price when it is placed. A limit or stop order
rests until a price crosses it: at placement against the last price, later on every tick
(`resting_orders_execute`, a receiver of `market.signals.price_ticked`). A fill books cash,
position and average cost in the same transaction as the order's new state, under the
portfolio's row lock, so two ticks or two workers never book one order twice.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.numbers import ARITHMETIC, Digits, computed_exactly
from core.rows import batched_writes, row_insert, row_update
from portfolio.book import PortfolioBook, portfolio_lock
from portfolio.models import Instrument
from portfolio.selectors import money
from portfolio.services import BookingRefused, portfolio_refresh, portfolio_value_changed_announce, position_apply_fill

from . import signals
from .models import RESTING_STATUSES, Fill, Order, OrderStatus, OrderType, Side

logger = logging.getLogger(__name__)

PRICE_STEP = Digits.of(Order, "average_fill_price").step


@computed_exactly
def fee_for(*, value: Decimal) -> Decimal:
    """Return the fee of a fill worth `value`: the configured rate, at least the minimum fee."""
    config = settings.TRADING
    return max(money(value * config["FEE_RATE"]), money(config["MIN_FEE"]))


def order_crossed_by(*, order: Order, price: Decimal) -> bool:
    """Return whether a trade at `price` triggers a limit or stop order."""
    if order.order_type == OrderType.MARKET:
        return True
    if order.order_type == OrderType.LIMIT:
        return price <= order.price if order.side == Side.BUY else price >= order.price
    return price >= order.stop_price if order.side == Side.BUY else price <= order.stop_price


def crossed_orders_filter(*, price: Decimal) -> Q:
    """Return the condition, in SQL, under which a resting order is crossed by `price`."""
    return (
        Q(order_type=OrderType.LIMIT, side=Side.BUY, price__gte=price)
        | Q(order_type=OrderType.LIMIT, side=Side.SELL, price__lte=price)
        | Q(order_type=OrderType.STOP, side=Side.BUY, stop_price__lte=price)
        | Q(order_type=OrderType.STOP, side=Side.SELL, stop_price__gte=price)
    )


@computed_exactly
def order_fill(
    *, order: Order, book: PortfolioBook, price: Decimal, quantity: Decimal, correlation_id: str | None = None
) -> Fill | None:
    """Execute `quantity` of a locked order at `price` and book it; fail the order if it cannot be booked.

    The caller holds the locks of the portfolio and the order, inside a transaction.
    """
    fees = fee_for(value=quantity * price)
    try:
        revaluation = position_apply_fill(
            book=book,
            instrument=order.instrument,
            side=order.side,
            quantity=quantity,
            price=price,
            fees=fees,
            correlation_id=correlation_id,
        )
    except BookingRefused as refusal:  # raised before anything was written
        order_fail(
            order=order,
            book=book,
            code=refusal.code,
            reason=refusal.message,
            params=refusal.details,
            correlation_id=correlation_id,
        )
        return None
    now = timezone.now()
    fill = Fill(order=order, quantity=quantity, price=price, fees=fees, executed_at=now)
    row_insert(fill)
    previous_value = order.filled_quantity * (order.average_fill_price or Decimal("0"))
    order.filled_quantity += quantity
    order.average_fill_price = ((previous_value + quantity * price) / order.filled_quantity).quantize(
        PRICE_STEP, rounding=ROUND_HALF_UP, context=ARITHMETIC
    )
    order.fees += fees
    order.status = OrderStatus.FILLED if order.filled_quantity == order.quantity else OrderStatus.PARTIALLY_FILLED
    if order.status == OrderStatus.FILLED:
        order.filled_at = now
    row_update(order, ["filled_quantity", "average_fill_price", "fees", "status", "filled_at", "updated_at"])
    signals.order_filled.send(Order, order=order, fill=fill, member_ids=book.member_ids, correlation_id=correlation_id)
    portfolio_value_changed_announce(
        book=book, revaluation=revaluation, trigger_reason="order_filled", correlation_id=correlation_id
    )
    portfolio_refresh(book=book, correlation_id=correlation_id)
    return fill


def order_fail(
    *,
    order: Order,
    book: PortfolioBook,
    code: str,
    reason: str,
    params: dict | None = None,
    correlation_id: str | None = None,
) -> None:
    """Mark an order failed with its reason (and the figures the reason names) and send `order_failed`."""
    order.status = OrderStatus.FAILED
    order.reason_code = code
    order.reason = reason[:500]
    order.reason_params = params or {}
    row_update(order, ["status", "reason_code", "reason", "reason_params", "updated_at"])
    signals.order_failed.send(Order, order=order, member_ids=book.member_ids, correlation_id=correlation_id)


def order_fill_quantity(*, order: Order) -> Decimal:
    """Return how much of a resting order one price may fill (all of it unless capped)."""
    cap = settings.TRADING.get("MAX_FILL_PER_TICK")
    remaining = order.quantity - order.filled_quantity
    return min(remaining, cap) if cap else remaining


def order_execute_if_crossed(
    *, order: Order, book: PortfolioBook, price: Decimal | None, correlation_id: str | None = None
) -> Fill | None:
    """Fill a locked order at `price` if that price crosses it; return the fill, if any."""
    if price is None or not order_crossed_by(order=order, price=price):
        return None
    quantity = order.quantity if order.order_type == OrderType.MARKET else order_fill_quantity(order=order)
    if quantity <= 0:
        return None
    return order_fill(order=order, book=book, price=price, quantity=quantity, correlation_id=correlation_id)


@computed_exactly
def resting_orders_execute(*, instrument: Instrument, price: Decimal) -> list[Order]:
    """Fill the resting limit and stop orders of `instrument` that a trade at `price` crosses.

    Each order executes in its own transaction under its portfolio's lock and is re-read there,
    so a concurrent tick, cancellation or modification is seen and nothing is booked twice. An
    order whose execution raises is rolled back and logged alone; the orders after it still
    execute. Returns the orders that were filled (fully or partly) or failed by this tick.
    """
    price = Decimal(str(price)) if isinstance(price, float) else Decimal(price)
    if not price.is_finite() or price <= 0:
        raise ValueError(f"a trade price must be a positive number, got {price}")
    price = price.quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
    candidates = list(
        Order.objects.filter(instrument=instrument, status__in=RESTING_STATUSES)
        .filter(crossed_orders_filter(price=price))
        .order_by("created_at", "pk")
        .values_list("pk", "portfolio_id")
    )
    touched: list[Order] = []
    for order_id, portfolio_id in candidates:
        try:
            order = _resting_order_execute(order_id=order_id, portfolio_id=portfolio_id, price=price)
        except Exception:
            logger.exception("order %s could not be executed at %s %s", order_id, instrument.symbol, price)
            continue
        if order is not None:
            touched.append(order)
    if touched:
        logger.info("price %s of %s executed %d resting order(s)", price, instrument.symbol, len(touched))
    return touched


@transaction.atomic
@batched_writes()
def _resting_order_execute(*, order_id: int, portfolio_id: int, price: Decimal) -> Order | None:
    """Execute one resting order at `price` if it still rests and is crossed; return it if filled or failed."""
    book = portfolio_lock(portfolio_id=portfolio_id)
    order = Order.objects.select_for_update().select_related("instrument").get(pk=order_id)
    if order.status not in RESTING_STATUSES:
        return None
    order.portfolio = book.portfolio
    fill = order_execute_if_crossed(order=order, book=book, price=price)
    return order if fill is not None or order.status == OrderStatus.FAILED else None
