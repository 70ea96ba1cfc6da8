"""The trading commands of the spec (section 3.2): place_order, cancel_order, modify_order."""

from __future__ import annotations

from typing import Any


from core.actor import Actor
from realtime.api import CommandContext, command, decimal_arg, id_arg, on_command_threads, text_arg

from .models import Order, OrderStatus
from .selectors import ORDER_CHANGE_PERMISSION, ORDER_PLACE_PERMISSION, order_get_visible
from .services import order_cancel, order_modify, order_place
from .validation import PRICE, QUANTITY

# What each command's answer says, by code: a client words the code in its own language with
# `message_params`; `message` is the English wording.
MESSAGES = {
    "order_placed_open": "Order placed; it rests until the price crosses it.",
    "order_placed_partially_filled": "Order placed and partially filled.",
    "order_placed_filled": "Order placed and filled.",
    "order_placed_failed": "Order placed but could not be executed.",
    "order_placed": "Order placed successfully.",
    "order_cancelled": "Order cancelled successfully.",
    "order_modified": "Order modified successfully.",
    "order_modified_filled": "Order modified and filled.",
}
PLACED_BY_STATUS = {
    OrderStatus.OPEN: "order_placed_open",
    OrderStatus.PARTIALLY_FILLED: "order_placed_partially_filled",
    OrderStatus.FILLED: "order_placed_filled",
    OrderStatus.FAILED: "order_placed_failed",
}


def _result(order: Order, message_code: str) -> dict[str, Any]:
    """Return the spec's answer (order_id, status, message) with the message's code and figures."""
    return {
        "order_id": str(order.pk),
        "status": order.status,
        "message": MESSAGES[message_code],
        "message_code": message_code,
        "message_params": {"order_id": str(order.pk), "symbol": order.instrument.symbol},
    }


@on_command_threads
def _place(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    symbol = text_arg(data, "symbol", max_length=16)
    side = text_arg(data, "side", max_length=16)
    order_type = text_arg(data, "order_type", required=False, max_length=16) or "market"
    quantity = decimal_arg(data, "quantity", digits=QUANTITY)
    price = decimal_arg(data, "price", digits=PRICE, required=False)
    stop_price = decimal_arg(data, "stop_price", digits=PRICE, required=False)
    client_order_id = text_arg(data, "client_order_id", required=False, max_length=64)
    portfolio_id = id_arg(data, "portfolio_id", required=False)
    order = order_place(
        portfolio_id=portfolio_id,
        symbol=symbol,
        side=side.lower(),
        order_type=order_type.lower(),
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        client_order_id=client_order_id,
        actor=Actor.from_command(ctx),
    )
    return _result(order, PLACED_BY_STATUS.get(order.status, "order_placed"))


@command("place_order", permission=ORDER_PLACE_PERMISSION)
async def place_order(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Place an order for one of your portfolios and execute it if the market allows."""
    return await _place(ctx, data)


@on_command_threads
def _cancel(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    order = order_get_visible(user=ctx.user, order_id=id_arg(data, "order_id"))
    request_id = text_arg(data, "request_id", required=False, max_length=64)
    order = order_cancel(order_id=order.pk, actor=Actor.from_command(ctx), request_id=request_id)
    return _result(order, "order_cancelled")


@command("cancel_order", permission=ORDER_CHANGE_PERMISSION)
async def cancel_order(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Cancel one of your resting orders; a repeat of its `request_id` is answered, not applied again."""
    return await _cancel(ctx, data)


@on_command_threads
def _modify(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    order = order_get_visible(user=ctx.user, order_id=id_arg(data, "order_id"))
    order = order_modify(
        order_id=order.pk,
        actor=Actor.from_command(ctx),
        quantity=decimal_arg(data, "quantity", digits=QUANTITY, required=False),
        price=decimal_arg(data, "price", digits=PRICE, required=False),
        request_id=text_arg(data, "request_id", required=False, max_length=64),
    )
    return _result(order, "order_modified_filled" if order.status == OrderStatus.FILLED else "order_modified")


@command("modify_order", permission=ORDER_CHANGE_PERMISSION)
async def modify_order(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Change the quantity or price of one of your resting orders; a repeated `request_id` applies once."""
    return await _modify(ctx, data)
