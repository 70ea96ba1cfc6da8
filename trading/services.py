"""Placing, modifying and cancelling orders: validated, written in one transaction, audited.

Each service locks the portfolio row first (then the order), so every write touching a
portfolio's cash, positions or orders is serialised the same way and cannot deadlock. Events go
out on commit through `trading.announce` and `portfolio.services`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.actor import Actor
from core.exceptions import DomainError, NotFound, ValidationFailed
from core.numbers import Digits, computed_exactly, decimal_validate
from portfolio.models import Instrument
from portfolio.selectors import instrument_get, money, portfolio_get_visible, symbol_normalize
from portfolio.services import PortfolioBook, portfolio_lock

from .announce import order_cancelled_announce, order_created_announce, order_failed_announce
from .execution import fee_for, order_execute_if_crossed
from .models import RESTING_STATUSES, Order, OrderAudit, OrderRequest, OrderStatus, OrderType, Side
from .selectors import buy_orders_reserve

CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# What an order's quantity and prices may be is what their columns store (docs/trading.md).
QUANTITY = Digits.of(Order, "quantity")
PRICE = Digits.of(Order, "price")


class OrderRejected(DomainError):
    """An order the broker refuses for a business reason (cash, holdings, no price)."""

    code = "order_rejected"


class OrderConflict(DomainError):
    """A request that contradicts an order's state or an earlier request."""

    code = "order_conflict"


@dataclass(frozen=True)
class OrderParams:
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None


def quantity_validate(*, quantity: Decimal, field: str = "quantity") -> Decimal:
    """Return a valid order quantity or raise `ValidationFailed` saying what is wrong with it.

    A quantity its column would not store exactly is `validation_error`; one out of range
    `invalid_quantity`.
    """
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise ValidationFailed("validation_error", f"'{field}' must be a number.", field=field)
    quantity = decimal_validate(quantity, digits=QUANTITY, field=field)
    if quantity <= 0:
        raise ValidationFailed("invalid_quantity", f"'{field}' must be greater than zero.", field=field)
    limit = settings.TRADING["MAX_ORDER_QUANTITY"]
    if quantity > limit:
        raise ValidationFailed("invalid_quantity", f"'{field}' may be at most {limit}.", field=field, max=limit)
    return quantity


def price_validate(*, price: Decimal, field: str) -> Decimal:
    """Return a valid price or raise `ValidationFailed` saying what is wrong with it.

    A price its column would not store exactly is `validation_error`; one out of range `invalid_price`.
    """
    if not isinstance(price, Decimal) or not price.is_finite():
        raise ValidationFailed("validation_error", f"'{field}' must be a number.", field=field)
    price = decimal_validate(price, digits=PRICE, field=field)
    if price <= 0:
        raise ValidationFailed("invalid_price", f"'{field}' must be greater than zero.", field=field)
    limit = settings.TRADING["MAX_PRICE"]
    if price > limit:
        raise ValidationFailed("invalid_price", f"'{field}' may be at most {limit}.", field=field, max=limit)
    return price


def order_params_validate(
    *, side: str, order_type: str, quantity: Decimal, price: Decimal | None, stop_price: Decimal | None
) -> OrderParams:
    """Check an order's side, type, quantity and prices together; raise `ValidationFailed` on the first fault."""
    if side not in Side.values:
        raise ValidationFailed("invalid_side", f"'side' must be one of {', '.join(Side.values)}.", field="side")
    if order_type not in OrderType.values:
        raise ValidationFailed(
            "invalid_order_type", f"'order_type' must be one of {', '.join(OrderType.values)}.", field="order_type"
        )
    quantity = quantity_validate(quantity=quantity)
    if order_type == OrderType.MARKET:
        if price is not None or stop_price is not None:
            raise ValidationFailed(
                "invalid_price", "A market order takes no price or stop_price; use a limit or stop order.", field="price"
            )
    elif order_type == OrderType.LIMIT:
        if price is None:
            raise ValidationFailed("price_required", "A limit order needs a 'price'.", field="price")
        if stop_price is not None:
            raise ValidationFailed("invalid_price", "A limit order takes no 'stop_price'.", field="stop_price")
        price = price_validate(price=price, field="price")
    else:
        if stop_price is None:
            raise ValidationFailed("stop_price_required", "A stop order needs a 'stop_price'.", field="stop_price")
        if price is not None:
            raise ValidationFailed(
                "invalid_price", "Stop-limit orders are not supported: a stop order takes no 'price'.", field="price"
            )
        stop_price = price_validate(price=stop_price, field="stop_price")
    return OrderParams(side=side, order_type=order_type, quantity=quantity, price=price, stop_price=stop_price)


def _resting_orders(*, book: PortfolioBook, side: str, excluding: int | None, **filters) -> QuerySet[Order]:
    """The portfolio's resting orders on `side`, unordered, leaving out the order `excluding`."""
    orders = Order.objects.filter(portfolio=book.portfolio, side=side, status__in=RESTING_STATUSES, **filters).order_by()
    return orders if excluding is None else orders.exclude(pk=excluding)


def _reserved_cash(*, book: PortfolioBook, excluding: int | None = None) -> Decimal:
    """Return the cash the portfolio's resting buy orders may still spend, fees included."""
    return buy_orders_reserve(_resting_orders(book=book, side=Side.BUY, excluding=excluding))


def _reserved_quantity(*, book: PortfolioBook, instrument: Instrument, excluding: int | None = None) -> Decimal:
    """Return the units of an instrument the portfolio's resting sell orders may still sell."""
    total = Decimal("0")
    orders = _resting_orders(book=book, side=Side.SELL, excluding=excluding, instrument=instrument)
    for quantity, filled in orders.values_list("quantity", "filled_quantity"):
        total += quantity - filled
    return total


@dataclass(frozen=True)
class Refusal:
    """Why a portfolio cannot take an order: a code, the reason in words, and the figures it names."""

    code: str
    reason: str
    params: dict


def _refusal(*, book: PortfolioBook, order: Order) -> Refusal | None:
    """Return why the portfolio cannot afford or cover `order`, or None if it can."""
    instrument = order.instrument
    remaining = order.quantity - order.filled_quantity
    if order.order_type == OrderType.MARKET and instrument.last_price is None:
        return Refusal(
            "no_market_price",
            f"{instrument.symbol} has no price yet; a market order cannot be executed.",
            {"symbol": instrument.symbol},
        )
    if order.side == Side.BUY:
        price = {
            OrderType.MARKET: instrument.last_price,
            OrderType.LIMIT: order.price,
            OrderType.STOP: order.stop_price,
        }[order.order_type]
        value = remaining * price
        needed = money(value + fee_for(value=value))
        available = money(max(book.portfolio.cash - _reserved_cash(book=book, excluding=order.pk), Decimal("0")))
        if needed > available:
            return Refusal(
                "insufficient_cash",
                f"Buying {remaining} {instrument.symbol} needs about {needed} EUR "
                f"including fees; {available} EUR are available.",
                {"symbol": instrument.symbol, "quantity": remaining, "needed": needed, "available": available},
            )
    else:
        position = book.positions.get(instrument.pk)
        held = position.quantity if position else Decimal("0")
        available = max(held - _reserved_quantity(book=book, instrument=instrument, excluding=order.pk), Decimal("0"))
        if remaining > available:
            return Refusal(
                "insufficient_position",
                f"Selling {remaining} {instrument.symbol} exceeds the {available} "
                "held and not already offered for sale.",
                {"symbol": instrument.symbol, "quantity": remaining, "available": available},
            )
    return None


def _audit(*, order: Order, action: str, actor: Actor, details: dict | None = None) -> None:
    OrderAudit.objects.create(
        order=order,
        action=action,
        user=actor.user,
        client_id=actor.client_id or "",
        correlation_id=actor.correlation_id or "",
        remote_addr=actor.remote_addr or "",
        channel=actor.channel,
        details=details or {},
    )


def _same_request(order: Order, *, portfolio_id: int, symbol: str, params: OrderParams) -> bool:
    return (
        order.portfolio_id == portfolio_id
        and order.instrument.symbol == symbol
        and order.side == params.side
        and order.order_type == params.order_type
        and order.quantity == params.quantity
        and order.price == params.price
        and order.stop_price == params.stop_price
    )


def _repeat(*, actor: Actor, client_order_id: str, portfolio_id: int, symbol: str, params: OrderParams) -> Order | None:
    """Return the order this client order id already names, if the request repeats it; raise if it differs."""
    existing = Order.objects.select_related("instrument", "portfolio").filter(
        placed_by=actor.user, client_order_id=client_order_id
    ).first()
    if existing is None:
        return None
    if not _same_request(existing, portfolio_id=portfolio_id, symbol=symbol, params=params):
        raise OrderConflict(
            "client_order_id_conflict",
            f"client_order_id {client_order_id!r} already names order {existing.pk} with other parameters.",
            order_id=str(existing.pk),
        )
    return existing


def _instrument_now(*, book: PortfolioBook, symbol: str) -> Instrument:
    """Return the instrument `symbol` names with its price as of now, under the portfolio's lock.

    A held instrument came with the positions just read; any other is read now, once.
    """
    for position in book.positions.values():
        if position.instrument.symbol == symbol:
            return position.instrument
    return instrument_get(symbol=symbol)


@computed_exactly
def order_place(
    *,
    portfolio_id: int | None = None,
    symbol: str,
    side: str,
    order_type: str,
    quantity: Decimal,
    price: Decimal | None = None,
    stop_price: Decimal | None = None,
    client_order_id: str | None = None,
    actor: Actor,
) -> Order:
    """Place an order, execute it if the market allows, and return it.

    The portfolio is `portfolio_id`, or without it the actor's user's first one; an actor with a
    user may trade only in a portfolio that user sees (`NotFound` otherwise). The portfolio and
    the instrument are read once, under the portfolio's lock.

    A repeat with a known `client_order_id` and the same parameters returns the original order
    and writes nothing. An order the portfolio cannot afford or cover is stored as rejected with
    its reason, announced as failed, and raised as `OrderRejected`.
    """
    params = order_params_validate(
        side=side, order_type=order_type, quantity=quantity, price=price, stop_price=stop_price
    )
    if client_order_id is not None and not CLIENT_ORDER_ID_RE.fullmatch(client_order_id):
        raise ValidationFailed(
            "invalid_client_order_id",
            "'client_order_id' is 1 to 64 letters, digits or the characters _ . : -",
            field="client_order_id",
        )
    symbol = symbol_normalize(symbol)
    try:
        order = _order_place(
            portfolio_id=portfolio_id, symbol=symbol, params=params, client_order_id=client_order_id, actor=actor
        )
    except IntegrityError:
        # The user's client order id is taken (unique per user): by an earlier request, or by
        # another transaction just now. Nothing of this attempt was written; answer as a repeat.
        if client_order_id is None:
            raise
        if portfolio_id is None:
            portfolio_id = portfolio_get_visible(user=actor.user).pk
        order = _repeat(
            actor=actor, client_order_id=client_order_id, portfolio_id=portfolio_id, symbol=symbol, params=params
        )
        if order is None:
            raise
    if order.status == OrderStatus.REJECTED:
        raise OrderRejected(
            order.reason_code, order.reason, order_id=str(order.pk), status=order.status, params=order.reason_params
        )
    return order


@transaction.atomic
def _order_place(
    *, portfolio_id: int | None, symbol: str, params: OrderParams, client_order_id: str | None, actor: Actor
) -> Order:
    book = portfolio_lock(portfolio_id=portfolio_id, visible_to=actor.user)
    instrument = _instrument_now(book=book, symbol=symbol)
    if client_order_id is not None and actor.user is None:
        # A user's repeat is caught by the unique constraint when the order is inserted (see
        # `order_place`); the constraint does not cover orders without a user, so look first.
        existing = _repeat(
            actor=actor, client_order_id=client_order_id, portfolio_id=book.portfolio.pk, symbol=symbol, params=params
        )
        if existing is not None:
            return existing
    order = Order(
        portfolio=book.portfolio,
        instrument=instrument,
        side=params.side,
        order_type=params.order_type,
        quantity=params.quantity,
        price=params.price,
        stop_price=params.stop_price,
        status=OrderStatus.PENDING,
        client_order_id=client_order_id,
        placed_by=actor.user,
        client_id=actor.client_id or "",
        correlation_id=actor.correlation_id or "",
        remote_addr=actor.remote_addr or "",
    )
    refusal = _refusal(book=book, order=order)
    if refusal is not None:
        order.status = OrderStatus.REJECTED
        order.reason_code, order.reason, order.reason_params = refusal.code, refusal.reason, refusal.params
    elif order.order_type != OrderType.MARKET:
        order.status = OrderStatus.OPEN
    order.save(force_insert=True)
    _audit(order=order, action=OrderAudit.Action.PLACE, actor=actor, details={"client_order_id": client_order_id})
    if order.status == OrderStatus.REJECTED:
        order_failed_announce(order=order, audience=book.member_ids, correlation_id=actor.correlation_id)
        return order
    order_created_announce(order=order, audience=book.member_ids, correlation_id=actor.correlation_id)
    order_execute_if_crossed(order=order, book=book, price=instrument.last_price, correlation_id=actor.correlation_id)
    return order


def _lock_order(*, order_id: int) -> tuple[PortfolioBook, Order]:
    """Lock an order's portfolio, then the order itself (the one lock order of this app)."""
    portfolio_id = Order.objects.filter(pk=order_id).values_list("portfolio_id", flat=True).first()
    if portfolio_id is None:
        raise NotFound("order_not_found", f"Order {order_id} does not exist.")
    book = portfolio_lock(portfolio_id=portfolio_id)
    order = Order.objects.select_for_update().select_related("instrument").get(pk=order_id)
    order.portfolio = book.portfolio
    return book, order


def request_id_validate(*, request_id: str | None, actor: Actor) -> str | None:
    """Return a valid request id (or None) or raise `ValidationFailed` saying what is wrong with it."""
    if request_id is None:
        return None
    if not CLIENT_ORDER_ID_RE.fullmatch(request_id):
        raise ValidationFailed(
            "invalid_request_id", "'request_id' is 1 to 64 letters, digits or the characters _ . : -", field="request_id"
        )
    if actor.user is None:
        # Request ids are unique per user; without a user there is nothing to keep them apart by.
        raise ValidationFailed("invalid_request_id", "'request_id' needs a signed-in user.", field="request_id")
    return request_id


def _decimal_key(value: Decimal | None) -> str | None:
    """Return one spelling per number (10, 10.0 and 1E+1 all give "10"), for comparing requests."""
    if value is None:
        return None
    return format(value.normalize(), "f") if isinstance(value, Decimal) and value.is_finite() else str(value)


def _request_repeat(*, actor: Actor, request_id: str, action: str, order_id: int, params: dict) -> bool:
    """Tell whether `request_id` already did this; raise `OrderConflict` if it named something else."""
    earlier = OrderRequest.objects.filter(user=actor.user, request_id=request_id).first()
    if earlier is None:
        return False
    if (earlier.action, earlier.order_id, earlier.params) != (action, order_id, params):
        raise OrderConflict(
            "request_id_conflict",
            f"request_id {request_id!r} already names a {earlier.action} of order {earlier.order_id} "
            "with other parameters.",
            order_id=str(earlier.order_id),
        )
    return True


def _request_record(*, actor: Actor, request_id: str | None, action: str, order: Order, params: dict) -> None:
    if request_id is not None:
        OrderRequest.objects.create(user=actor.user, request_id=request_id, action=action, order=order, params=params)


def _once(write, *, actor: Actor, request_id: str | None, action: str, order_id: int, params: dict) -> Order:
    """Run `write` (one transaction that records `request_id`); answer a concurrent twin's repeat with the order.

    The twin that commits second fails to insert its request on the unique constraint; nothing
    of its transaction was written, so it is answered as a repeat of the first.
    """
    try:
        return write()
    except IntegrityError:
        if request_id is None:
            raise
        if not _request_repeat(actor=actor, request_id=request_id, action=action, order_id=order_id, params=params):
            raise
        return Order.objects.select_related("instrument").get(pk=order_id)


CANCEL_REASONS = {
    "cancelled_by_user": "cancelled by user",
    "cancelled_by_admin": "cancelled in the admin",
}


def order_cancel(
    *, order_id: int, actor: Actor, reason_code: str = "cancelled_by_user", request_id: str | None = None
) -> Order:
    """Cancel a resting order for one of `CANCEL_REASONS`; what was filled stays filled.

    A repeat of an applied `request_id` for the same order returns the order as it is now and
    changes nothing; the id reused for anything else is an `OrderConflict`.
    """
    request_id = request_id_validate(request_id=request_id, actor=actor)
    action = OrderRequest.Action.CANCEL
    return _once(
        lambda: _order_cancel(order_id=order_id, actor=actor, reason_code=reason_code, request_id=request_id),
        actor=actor, request_id=request_id, action=action, order_id=order_id, params={},
    )


@transaction.atomic
def _order_cancel(*, order_id: int, actor: Actor, reason_code: str, request_id: str | None) -> Order:
    book, order = _lock_order(order_id=order_id)
    action = OrderRequest.Action.CANCEL
    if request_id and _request_repeat(actor=actor, request_id=request_id, action=action, order_id=order.pk, params={}):
        return order
    if order.status not in RESTING_STATUSES:
        raise OrderConflict(
            "order_not_cancellable",
            f"Order {order.pk} is {order.status}; only open or partially filled orders can be cancelled.",
            order_id=str(order.pk),
            status=order.status,
        )
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = timezone.now()
    order.reason_code = reason_code
    order.reason = CANCEL_REASONS[reason_code]
    order.reason_params = {}
    order.save(update_fields=["status", "cancelled_at", "reason_code", "reason", "reason_params", "updated_at"])
    _request_record(actor=actor, request_id=request_id, action=action, order=order, params={})
    details = {"reason": order.reason, **({"request_id": request_id} if request_id else {})}
    _audit(order=order, action=OrderAudit.Action.CANCEL, actor=actor, details=details)
    order_cancelled_announce(order=order, audience=book.member_ids, correlation_id=actor.correlation_id)
    return order


@computed_exactly
def order_modify(
    *,
    order_id: int,
    actor: Actor,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
    request_id: str | None = None,
) -> Order:
    """Change the quantity or price of a resting order; it executes at once if the new price is crossed.

    `price` is the limit price of a limit order and the stop price of a stop order. A repeat of
    an applied `request_id` with the same order and values returns the order as it is now and
    applies nothing; the id reused for anything else is an `OrderConflict`.
    """
    request_id = request_id_validate(request_id=request_id, actor=actor)
    params = {"quantity": _decimal_key(quantity), "price": _decimal_key(price)}
    return _once(
        lambda: _order_modify(
            order_id=order_id, actor=actor, quantity=quantity, price=price, request_id=request_id, params=params
        ),
        actor=actor, request_id=request_id, action=OrderRequest.Action.MODIFY, order_id=order_id, params=params,
    )


@transaction.atomic
def _order_modify(
    *,
    order_id: int,
    actor: Actor,
    quantity: Decimal | None,
    price: Decimal | None,
    request_id: str | None,
    params: dict,
) -> Order:
    if quantity is None and price is None:
        raise ValidationFailed("nothing_to_modify", "Give a new 'quantity', a new 'price', or both.")
    if quantity is not None:
        quantity = quantity_validate(quantity=quantity)
    if price is not None:
        price = price_validate(price=price, field="price")
    book, order = _lock_order(order_id=order_id)
    action = OrderRequest.Action.MODIFY
    if request_id and _request_repeat(actor=actor, request_id=request_id, action=action, order_id=order.pk, params=params):
        return order
    if order.status not in RESTING_STATUSES:
        raise OrderConflict(
            "order_not_modifiable",
            f"Order {order.pk} is {order.status}; only open or partially filled orders can be modified.",
            order_id=str(order.pk),
            status=order.status,
        )
    if quantity is not None and quantity <= order.filled_quantity:
        raise ValidationFailed(
            "invalid_quantity",
            f"The new quantity must exceed the {order.filled_quantity} already filled.",
            field="quantity",
        )
    before = {"quantity": order.quantity, "price": order.price, "stop_price": order.stop_price}
    if quantity is not None:
        order.quantity = quantity
    if price is not None:
        if order.order_type == OrderType.LIMIT:
            order.price = price
        else:
            order.stop_price = price
    refusal = _refusal(book=book, order=order)
    if refusal is not None:
        raise OrderRejected(refusal.code, refusal.reason, order_id=str(order.pk), params=refusal.params)
    order.save(update_fields=["quantity", "price", "stop_price", "updated_at"])
    _request_record(actor=actor, request_id=request_id, action=action, order=order, params=params)
    after = {"quantity": order.quantity, "price": order.price, "stop_price": order.stop_price}
    details = {"before": before, "after": after, **({"request_id": request_id} if request_id else {})}
    _audit(order=order, action=OrderAudit.Action.MODIFY, actor=actor, details=details)
    order_execute_if_crossed(
        order=order, book=book, price=order.instrument.last_price, correlation_id=actor.correlation_id
    )
    return order

