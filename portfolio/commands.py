"""The portfolio commands of the spec (section 3.2): refresh_portfolio and update_position."""

from __future__ import annotations

from typing import Any


from core.actor import Actor
from realtime.api import CommandContext, command, decimal_arg, id_arg, on_command_threads, text_arg

from .selectors import (
    PORTFOLIO_VIEW_PERMISSION,
    POSITION_CORRECT_PERMISSION,
    instrument_get,
    portfolio_get_supervised,
    portfolio_get_visible,
    portfolios_visible,
)
from .services import COST, QUANTITY, portfolio_refresh_revalue, position_correct


@on_command_threads
def _refresh(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    portfolio_id = id_arg(data, "portfolio_id", required=False)
    if portfolio_id is None:
        portfolios = list(portfolios_visible(user=ctx.user))
        if not portfolios:
            portfolio_get_visible(user=ctx.user)  # raises: no portfolio
    else:
        portfolios = [portfolio_get_visible(user=ctx.user, portfolio_id=portfolio_id)]
    snapshots = [
        {
            **portfolio_refresh_revalue(portfolio_id=portfolio.pk, correlation_id=ctx.correlation_id),
            "name": portfolio.name,
            "cash": portfolio.cash,
        }
        for portfolio in portfolios
    ]
    return {
        "message": "Portfolio refreshed successfully",
        "message_code": "portfolio_refreshed",
        "portfolios": snapshots,
    }


@command("refresh_portfolio", permission=PORTFOLIO_VIEW_PERMISSION)
async def refresh_portfolio(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Revalue your portfolio (or all of yours), send it as portfolio.update and return it."""
    return await _refresh(ctx, data)


@on_command_threads
def _update_position(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    symbol = text_arg(data, "symbol", max_length=16)
    quantity = decimal_arg(data, "quantity", digits=QUANTITY)
    avg_cost = decimal_arg(data, "avg_cost", digits=COST, required=False)
    reason = text_arg(data, "reason", max_length=500)
    portfolio = portfolio_get_supervised(
        user=ctx.user, portfolio_id=id_arg(data, "portfolio_id", required=False), held=ctx.permissions
    )
    instrument = instrument_get(symbol=symbol)
    correction = position_correct(
        portfolio_id=portfolio.pk,
        instrument=instrument,
        quantity=quantity,
        avg_cost=avg_cost,
        reason=reason,
        actor=Actor.from_command(ctx),
    )
    return {
        "message": "Position corrected.",
        "message_code": "position_corrected",
        "correction_id": str(correction.pk),
        "portfolio_id": str(portfolio.pk),
        "symbol": instrument.symbol,
        "previous_quantity": correction.previous_quantity,
        "quantity": correction.quantity,
        "avg_cost": correction.avg_cost,
    }


@command("update_position", permission=POSITION_CORRECT_PERMISSION)
async def update_position(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Correct a position by hand (audited): {symbol, quantity, avg_cost?, reason, portfolio_id?}.

    Members correct their own portfolios; a supervisor names any portfolio by `portfolio_id`.
    """
    return await _update_position(ctx, data)
