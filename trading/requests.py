"""Request ids: a cancel or modify sent again under its `request_id` applies once.

The first request's id is recorded (`OrderRequest`, unique per user) in the transaction of its
change; a repeat with the same action, order and parameters is answered with the order as it
is, one with anything else is refused (`request_id_conflict`); a concurrent twin fails on the
unique constraint and is answered as a repeat (`request_once`).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError

from core.actor import Actor
from core.rows import row_insert

from .errors import OrderConflict
from .models import Order, OrderRequest


def decimal_key(value: Decimal | None) -> str | None:
    """Return one spelling per number (10, 10.0 and 1E+1 all give "10"), for comparing requests."""
    if value is None:
        return None
    return format(value.normalize(), "f") if isinstance(value, Decimal) and value.is_finite() else str(value)


def request_repeat(*, actor: Actor, request_id: str, action: str, order_id: int, params: dict) -> bool:
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


def request_record(*, actor: Actor, request_id: str | None, action: str, order: Order, params: dict) -> None:
    if request_id is not None:
        row_insert(OrderRequest(user=actor.user, request_id=request_id, action=action, order=order, params=params))


def request_once(write, *, actor: Actor, request_id: str | None, action: str, order_id: int, params: dict) -> Order:
    """Run `write` (one transaction that records `request_id`); answer a concurrent twin's repeat with the order.

    The twin that commits second fails to insert its request on the unique constraint; nothing
    of its transaction was written, so it is answered as a repeat of the first.
    """
    try:
        return write()
    except IntegrityError:
        if request_id is None:
            raise
        if not request_repeat(actor=actor, request_id=request_id, action=action, order_id=order_id, params=params):
            raise
        return Order.objects.select_related("instrument").get(pk=order_id)
