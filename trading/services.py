"""Placing, modifying and cancelling orders: validated, written in one transaction, audited.

Each service locks the portfolio row first (then the order), so every write touching a
portfolio's cash, positions or orders is serialised the same way and cannot deadlock. What
happened to an order goes out as `trading.signals` inside its transaction (`trading.receivers`
publish them on commit).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actor import Actor
from core.exceptions import NotFound, ValidationFailed
from core.numbers import computed_exactly
from core.rows import batched_writes, row_insert, row_update
from portfolio.book import PortfolioBook, portfolio_lock
from portfolio.models import Instrument
from portfolio.selectors import instrument_get, instrument_read, portfolio_get_visible, symbol_normalize

from . import signals
from .execution import order_execute_if_crossed
from .funds import order_refusal, resting_orders_read
from .errors import OrderConflict, OrderRejected
from .models import RESTING_STATUSES, Order, OrderAudit, OrderRequest, OrderStatus, OrderType
from .requests import decimal_key, request_once, request_record, request_repeat
from .validation import (
    CLIENT_ORDER_ID_RE,
    OrderParams,
    order_params_validate,
    price_validate,
    quantity_validate,
    request_id_validate,
)


# The `Action` members passed on as `action: str` below are TextChoices members, each a str at run
# time; without Django's type stubs mypy reads one as its (value, label) tuple, hence the ignores
# each naming the one code.


def _audit(*, order: Order, action: str, actor: Actor, details: dict | None = None) -> None:
    row_insert(
        OrderAudit(
            order=order,
            action=action,
            user=actor.user,
            client_id=actor.client_id or "",
            correlation_id=actor.correlation_id or "",
            remote_addr=actor.remote_addr or "",
            channel=actor.channel,
            details=details or {},
        )
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
    existing = (
        Order.objects.select_related("instrument", "portfolio")
        .filter(placed_by=actor.user, client_order_id=client_order_id)
        .first()
    )
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

    A held instrument came with the positions; any other was read with the lock.
    """
    for position in book.positions.values():
        if position.instrument.symbol == symbol:
            return position.instrument
    return instrument_get(symbol=symbol, found=book.read_along["instrument"])


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
@batched_writes()
def _order_place(
    *, portfolio_id: int | None, symbol: str, params: OrderParams, client_order_id: str | None, actor: Actor
) -> Order:
    # Everything the order is checked against, read in the lock's round trip.
    book = portfolio_lock(
        portfolio_id=portfolio_id,
        visible_to=actor.user,
        positions=True,
        along={"instrument": instrument_read(symbol=symbol), "resting": resting_orders_read()},
    )
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
    refusal = order_refusal(book=book, order=order, resting=book.read_along["resting"])
    if refusal is not None:
        order.status = OrderStatus.REJECTED
        order.reason_code, order.reason, order.reason_params = refusal.code, refusal.reason, refusal.params
    elif order.order_type != OrderType.MARKET:
        order.status = OrderStatus.OPEN
    row_insert(order)
    _audit(
        order=order,
        action=OrderAudit.Action.PLACE,  # type: ignore[arg-type]  # TextChoices member: a str (see above)
        actor=actor,
        details={"client_order_id": client_order_id},
    )
    if order.status == OrderStatus.REJECTED:
        signals.order_failed.send(Order, order=order, member_ids=book.member_ids, correlation_id=actor.correlation_id)
        return order
    signals.order_created.send(Order, order=order, member_ids=book.member_ids, correlation_id=actor.correlation_id)
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


CANCEL_REASONS = {"cancelled_by_user": "cancelled by user", "cancelled_by_admin": "cancelled in the admin"}


def order_cancel(
    *, order_id: int, actor: Actor, reason_code: str = "cancelled_by_user", request_id: str | None = None
) -> Order:
    """Cancel a resting order for one of `CANCEL_REASONS`; what was filled stays filled.

    A repeat of an applied `request_id` for the same order returns the order as it is now and
    changes nothing; the id reused for anything else is an `OrderConflict`.
    """
    request_id = request_id_validate(request_id=request_id, actor=actor)
    action: str = OrderRequest.Action.CANCEL  # type: ignore[assignment]  # TextChoices member: a str (see above)
    return request_once(
        lambda: _order_cancel(order_id=order_id, actor=actor, reason_code=reason_code, request_id=request_id),
        actor=actor,
        request_id=request_id,
        action=action,
        order_id=order_id,
        params={},
    )


@transaction.atomic
@batched_writes()
def _order_cancel(*, order_id: int, actor: Actor, reason_code: str, request_id: str | None) -> Order:
    book, order = _lock_order(order_id=order_id)
    action: str = OrderRequest.Action.CANCEL  # type: ignore[assignment]  # TextChoices member: a str (see above)
    if request_id and request_repeat(actor=actor, request_id=request_id, action=action, order_id=order.pk, params={}):
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
    row_update(order, ["status", "cancelled_at", "reason_code", "reason", "reason_params", "updated_at"])
    request_record(actor=actor, request_id=request_id, action=action, order=order, params={})
    details = {"reason": order.reason, **({"request_id": request_id} if request_id else {})}
    _audit(order=order, action=OrderAudit.Action.CANCEL, actor=actor, details=details)  # type: ignore[arg-type]  # TextChoices member: a str (see above)
    signals.order_cancelled.send(Order, order=order, member_ids=book.member_ids, correlation_id=actor.correlation_id)
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
    params = {"quantity": decimal_key(quantity), "price": decimal_key(price)}
    return request_once(
        lambda: _order_modify(
            order_id=order_id, actor=actor, quantity=quantity, price=price, request_id=request_id, params=params
        ),
        actor=actor,
        request_id=request_id,
        action=OrderRequest.Action.MODIFY,  # type: ignore[arg-type]  # TextChoices member: a str (see above)
        order_id=order_id,
        params=params,
    )


@transaction.atomic
@batched_writes()
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
    action: str = OrderRequest.Action.MODIFY  # type: ignore[assignment]  # TextChoices member: a str (see above)
    if request_id and request_repeat(
        actor=actor, request_id=request_id, action=action, order_id=order.pk, params=params
    ):
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
    refusal = order_refusal(book=book, order=order)
    if refusal is not None:
        raise OrderRejected(refusal.code, refusal.reason, order_id=str(order.pk), params=refusal.params)
    row_update(order, ["quantity", "price", "stop_price", "updated_at"])
    request_record(actor=actor, request_id=request_id, action=action, order=order, params=params)
    after = {"quantity": order.quantity, "price": order.price, "stop_price": order.stop_price}
    details = {"before": before, "after": after, **({"request_id": request_id} if request_id else {})}
    _audit(order=order, action=OrderAudit.Action.MODIFY, actor=actor, details=details)  # type: ignore[arg-type]  # TextChoices member: a str (see above)
    order_execute_if_crossed(
        order=order, book=book, price=order.instrument.last_price, correlation_id=actor.correlation_id
    )
    return order
