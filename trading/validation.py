"""An order's parameters checked one by one: side, type, quantity, prices, client and request ids.

Each check returns the value as it will be stored or raises `ValidationFailed` naming the field;
nothing here reads the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core.actor import Actor
from core.exceptions import ValidationFailed
from core.numbers import Digits, decimal_validate

from .models import Order, OrderType, Side

CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# What an order's quantity and prices may be is what their columns store (docs/trading.md).
QUANTITY = Digits.of(Order, "quantity")
PRICE = Digits.of(Order, "price")


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
    return _positive_bounded(
        quantity, digits=QUANTITY, field=field, code="invalid_quantity", limit="MAX_ORDER_QUANTITY"
    )


def price_validate(*, price: Decimal, field: str) -> Decimal:
    """Return a valid price or raise `ValidationFailed` saying what is wrong with it.

    A price its column would not store exactly is `validation_error`; one out of range `invalid_price`.
    """
    return _positive_bounded(price, digits=PRICE, field=field, code="invalid_price", limit="MAX_PRICE")


def _positive_bounded(value: Decimal, *, digits: Digits, field: str, code: str, limit: str) -> Decimal:
    """A finite number its column stores exactly (else `validation_error`), above zero and at most
    the `settings.TRADING[limit]` (else `code`)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed("validation_error", f"'{field}' must be a number.", field=field)
    value = decimal_validate(value, digits=digits, field=field)
    if value <= 0:
        raise ValidationFailed(code, f"'{field}' must be greater than zero.", field=field)
    maximum = settings.TRADING[limit]
    if value > maximum:
        raise ValidationFailed(code, f"'{field}' may be at most {maximum}.", field=field, max=maximum)
    return value


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
                "invalid_price",
                "A market order takes no price or stop_price; use a limit or stop order.",
                field="price",
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


def request_id_validate(*, request_id: str | None, actor: Actor) -> str | None:
    """Return a valid request id (or None) or raise `ValidationFailed` saying what is wrong with it."""
    if request_id is None:
        return None
    if not CLIENT_ORDER_ID_RE.fullmatch(request_id):
        raise ValidationFailed(
            "invalid_request_id",
            "'request_id' is 1 to 64 letters, digits or the characters _ . : -",
            field="request_id",
        )
    if actor.user is None:
        # Request ids are unique per user; without a user there is nothing to keep them apart by.
        raise ValidationFailed("invalid_request_id", "'request_id' needs a signed-in user.", field="request_id")
    return request_id
