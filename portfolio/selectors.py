"""Reads of portfolios: who may see which, what they are worth, and their `portfolio.update` data.

Who may see which portfolio is decided here for every surface (WebSocket, REST, desk, admin):
a member sees and trades in their own portfolios; a supervisor (`SUPERVISE_PERMISSION`, which a
superuser holds too) reaches every portfolio where a surface offers supervision (the admin,
position corrections). What a user may do with what they reach is a Django permission, checked
by `core.permissions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import QuerySet

from core.exceptions import NotFound
from core.numbers import ARITHMETIC, computed_exactly
from core.permissions import staff_may
from core.rows import Rows
from core.times import isoformat

from .models import Instrument, Portfolio, Position

CENT = Decimal("0.01")

PORTFOLIO_VIEW_PERMISSION = "portfolio.view_portfolio"  # read portfolio data: events, refresh, desk
POSITION_CORRECT_PERMISSION = "portfolio.change_position"  # correct a position by hand
SUPERVISE_PERMISSION = "portfolio.supervise_portfolios"  # reach every portfolio, not only one's own


def money(value: Decimal) -> Decimal:
    """Round an amount to cents, half up, as a bank statement would."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=ARITHMETIC)


def percent(part: Decimal, whole: Decimal) -> Decimal:
    """Return `part` as a percentage of `whole` to two places; 0 when `whole` is not positive."""
    if whole <= 0:
        return Decimal("0.00")
    return money(ARITHMETIC.divide(ARITHMETIC.multiply(part, 100), whole))


def user_sees_portfolios(*, user) -> bool:
    """Return whether `user` may see portfolios at all (active staff); which ones, memberships say."""
    return user is not None and user.is_authenticated and user.is_active and user.is_staff


def portfolios_visible(*, user) -> QuerySet[Portfolio]:
    """Return the portfolios `user` is a member of."""
    if not user_sees_portfolios(user=user):
        return Portfolio.objects.none()
    return Portfolio.objects.filter(members=user).order_by("pk")


def portfolio_not_visible(*, portfolio_id: int | None) -> NotFound:
    """Return the error for a portfolio the user may not see: `portfolio_id`, or without it any."""
    if portfolio_id is None:
        return NotFound("no_portfolio", "You are not a member of any portfolio.")
    return NotFound("portfolio_not_found", f"Portfolio {portfolio_id} does not exist or is not yours.")


def portfolio_get_visible(*, user, portfolio_id: int | None = None) -> Portfolio:
    """Return the portfolio `portfolio_id` if `user` may see it, else the user's first portfolio."""
    visible = portfolios_visible(user=user)
    portfolio = visible.filter(pk=portfolio_id).first() if portfolio_id is not None else visible.first()
    if portfolio is None:
        raise portfolio_not_visible(portfolio_id=portfolio_id)
    return portfolio


def user_supervises(*, user, held: Set[str] | None = None) -> bool:
    """Return whether `user` reaches every portfolio (a supervisor or a superuser)."""
    return staff_may(user, SUPERVISE_PERMISSION, held=held)


def portfolios_supervised(*, user, held: Set[str] | None = None) -> QuerySet[Portfolio]:
    """Return every portfolio for a supervisor, else the portfolios `user` is a member of."""
    if user_supervises(user=user, held=held):
        return Portfolio.objects.order_by("pk")
    return portfolios_visible(user=user)


def portfolio_get_supervised(*, user, portfolio_id: int | None = None, held: Set[str] | None = None) -> Portfolio:
    """Return the portfolio `portfolio_id` if `user` supervises or is a member of it; else as `portfolio_get_visible`.

    Without `portfolio_id` it is the user's own first portfolio: a supervisor names the one meant.
    """
    if portfolio_id is None or not user_supervises(user=user, held=held):
        return portfolio_get_visible(user=user, portfolio_id=portfolio_id)
    portfolio = Portfolio.objects.filter(pk=portfolio_id).first()
    if portfolio is None:
        raise portfolio_not_visible(portfolio_id=portfolio_id)
    return portfolio


def supervised_only(queryset: QuerySet, *, user, portfolio_field: str = "") -> QuerySet:
    """Narrow `queryset` to the rows of the portfolios `user` reaches as `portfolios_supervised` says.

    `portfolio_field` leads from a row to its portfolio ("portfolio", "order__portfolio"); empty
    for portfolios themselves.
    """
    if user_supervises(user=user):
        return queryset
    if not user_sees_portfolios(user=user):
        return queryset.none()
    members = f"{portfolio_field}__members" if portfolio_field else "members"
    return queryset.filter(**{members: user})


def portfolio_member_ids(*, portfolio: Portfolio) -> list[int]:
    """Return the ids of the users who receive this portfolio's events."""
    return sorted(Portfolio.members.through.objects.filter(portfolio_id=portfolio.pk).values_list("user_id", flat=True))


def position_mark_price(position: Position) -> Decimal:
    """Return the price a position is valued at: the last price, or its cost while none is known."""
    return position.instrument.last_price if position.instrument.last_price is not None else position.avg_cost


@dataclass(frozen=True)
class Valuation:
    cash: Decimal
    market_value: Decimal  # of the positions
    cost_basis: Decimal  # of the positions, fees included
    positions: list[dict[str, Any]]

    @property
    def total_value(self) -> Decimal:
        return money(self.cash + self.market_value)

    @property
    def total_change(self) -> Decimal:
        return money(self.market_value - self.cost_basis)


@computed_exactly
def portfolio_valuation(*, portfolio: Portfolio, positions: Iterable[Position] | None = None) -> Valuation:
    """Value a portfolio's cash and positions at the instruments' last prices.

    `positions` (each with its instrument) spares reading them again when the caller holds them.
    """
    rows = []
    market_value = cost_basis = Decimal("0")
    if positions is None:
        positions = (
            Position.objects.filter(portfolio=portfolio).select_related("instrument").order_by("instrument__symbol")
        )
    else:
        positions = sorted(positions, key=lambda position: position.instrument.symbol)
    for position in positions:
        price = position_mark_price(position)
        value = position.quantity * price
        cost = position.quantity * position.avg_cost
        market_value += value
        cost_basis += cost
        rows.append(
            {
                "symbol": position.instrument.symbol,
                "isin": position.instrument.isin,
                "name": position.instrument.name,
                "currency": position.instrument.currency,
                "quantity": position.quantity,
                "avg_cost": position.avg_cost,
                "last_price": position.instrument.last_price,
                # When that price was ticked: a desk keeps a newer tick's price over an older snapshot's.
                "last_price_at": (
                    isoformat(position.instrument.last_price_at) if position.instrument.last_price_at else None
                ),
                "market_value": money(value),
                "unrealized_pnl": money(value - cost),
                "unrealized_pnl_percent": percent(value - cost, cost),
            }
        )
    return Valuation(cash=portfolio.cash, market_value=market_value, cost_basis=cost_basis, positions=rows)


def portfolio_value(*, portfolio: Portfolio, positions: Iterable[Position] | None = None) -> Decimal:
    """Return cash plus the positions at their last prices, in cents."""
    return portfolio_valuation(portfolio=portfolio, positions=positions).total_value


def portfolio_snapshot(*, portfolio: Portfolio, positions: Iterable[Position] | None = None) -> dict[str, Any]:
    """Return the data of a `portfolio.update` event for `portfolio`.

    `total_change` is the unrealised gain of the positions over what they cost (fees included);
    `total_change_percent` relates it to that cost.
    """
    valuation = portfolio_valuation(portfolio=portfolio, positions=positions)
    return {
        "portfolio_id": str(portfolio.pk),
        "total_value": valuation.total_value,
        "total_change": valuation.total_change,
        "total_change_percent": percent(valuation.total_change, valuation.cost_basis),
        "positions_count": len(valuation.positions),
        "last_updated": isoformat(portfolio.updated_at),
        "positions": valuation.positions,
    }


def portfolios_holding(*, instrument: Instrument) -> QuerySet[Portfolio]:
    """Return the portfolios with a position in `instrument`."""
    return Portfolio.objects.filter(positions__instrument=instrument).distinct().order_by("pk")


def symbol_normalize(symbol: str) -> str:
    """Return a symbol as instruments store it (upper case, no surrounding blanks)."""
    return symbol.strip().upper()


# Read for every order of an instrument the portfolio does not hold: a statement built once.
_INSTRUMENT_BY_SYMBOL = Rows((Instrument, "ins"), tail=f"FROM {Instrument._meta.db_table} ins WHERE ins.symbol = %s")


def instrument_read(*, symbol: str) -> tuple[Rows, list[str]]:
    """The read of the instrument with this symbol, for `read_together` or `portfolio_lock(along=...)`."""
    return _INSTRUMENT_BY_SYMBOL, [symbol_normalize(symbol)]


def instrument_get(*, symbol: str, found: list | None = None) -> Instrument:
    """Return the instrument with this symbol (case-insensitive), or raise `NotFound`.

    `found` is what `instrument_read` read already, if it ran.
    """
    if found is None:
        statement, params = instrument_read(symbol=symbol)
        found = statement.read(params)  # the symbol is unique: one row or none
    if not found:
        raise NotFound("unknown_symbol", f"Unknown symbol {symbol[:32]!r}.")
    instrument = found[0][0]
    assert isinstance(instrument, Instrument)  # the row of the FROM table: never absent
    return instrument
