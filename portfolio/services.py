"""Writes to portfolios: fills booked into cash and positions, audited corrections, revaluation.

Every change is announced on commit through `realtime.delivery.dispatch`, addressed to the portfolio's
members only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any

from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from core.actor import Actor
from core.exceptions import DomainError, ValidationFailed
from core.numbers import ARITHMETIC, Digits, computed_exactly, decimal_validate
from realtime.api import send_event_on_commit
from core.times import utc_now_iso

from .models import Instrument, Portfolio, Position, PositionCorrection
from .selectors import (
    money,
    percent,
    portfolio_member_ids,
    portfolio_not_visible,
    portfolio_snapshot,
    portfolio_value,
    portfolios_holding,
    position_mark_price,
    user_sees_portfolios,
)

# What a position's quantity and cost and a portfolio's cash may be is what their columns store (docs/trading.md).
QUANTITY = Digits.of(Position, "quantity")
COST = Digits.of(Position, "avg_cost")
MONEY = Digits.of(Portfolio, "cash")
COST_STEP = COST.step

logger = logging.getLogger(__name__)


class BookingRefused(DomainError):
    """A fill or correction that would leave cash or a position negative."""


@dataclass(frozen=True)
class Revaluation:
    """A portfolio's value as last announced and as it is now."""

    previous: Decimal
    current: Decimal


def portfolio_create(*, name: str, cash: Decimal, members: Iterable = ()) -> Portfolio:
    """Create a portfolio with starting cash, visible to `members`."""
    cash = decimal_validate(cash, digits=MONEY, field="cash")
    if cash < 0:
        raise ValidationFailed("invalid_cash", "Cash cannot be negative.")
    portfolio = Portfolio.objects.create(name=name, cash=cash, last_value=cash)
    portfolio.members.add(*members)
    return portfolio


class PortfolioBook:
    """A portfolio with its positions and its members, each read once, when first needed.

    The services of one transaction share a book instead of reading the same rows again. Under
    the portfolio's lock (`portfolio_lock`) nothing else changes its cash or positions, so the
    services booking into it keep the book current themselves.
    """

    def __init__(self, portfolio: Portfolio, *, member_ids: list[int] | None = None) -> None:
        self.portfolio = portfolio
        if member_ids is not None:  # read with the portfolio (`portfolio_lock`): no query of their own
            self.member_ids = member_ids

    @cached_property
    def positions(self) -> dict[int, Position]:
        """The positions by instrument id, each with its instrument."""
        positions = Position.objects.filter(portfolio_id=self.portfolio.pk).select_related("instrument").order_by()
        return {position.instrument_id: position for position in positions}

    @cached_property
    def member_ids(self) -> list[int]:
        """The ids of the users who receive the portfolio's events."""
        return portfolio_member_ids(portfolio=self.portfolio)


def portfolio_lock(*, portfolio_id: int | None = None, visible_to=None) -> PortfolioBook:
    """Lock the portfolio row for update until the transaction ends; return its book.

    With `visible_to`, the portfolio must be one that user may see: `portfolio_id`, or without
    it the user's first; else `NotFound`, as from `portfolio_get_visible`. The members come in
    the same statement, a row per member, as every service that locks a portfolio announces to
    them.

    The statement is written out in SQL: every write to a portfolio starts with it, and the ORM
    spent about 0.9 ms of the database thread's CPU building it (the member join, the subquery
    for the user's first portfolio), five times what running it costs.
    """
    if connection.get_autocommit():
        raise TransactionManagementError("portfolio_lock() locks until the transaction ends: call it in one.")
    if visible_to is not None and not user_sees_portfolios(user=visible_to):
        raise portfolio_not_visible(portfolio_id=portfolio_id)
    members = Portfolio.members.through._meta.db_table
    if portfolio_id is None and visible_to is not None:
        which = f"(SELECT portfolio_id FROM {members} WHERE user_id = %s ORDER BY portfolio_id LIMIT 1)"
        params = [visible_to.pk]
    else:
        which, params = "%s", [portfolio_id]
    # FOR UPDATE OF the portfolio alone: its members are read, not locked. (SQLite, which knows no
    # row locks, serialises writers by IMMEDIATE transactions instead; see settings.)
    for_update = connection.ops.for_update_sql(of=("portfolio",)) if connection.features.has_select_for_update else ""
    # The columns by name, not `portfolio.*`: a prepared statement whose columns a migration
    # changed would fail ("cached plan must not change result type").
    columns = ", ".join(f"portfolio.{connection.ops.quote_name(field.column)}" for field in Portfolio._meta.concrete_fields)
    rows = list(
        Portfolio.objects.raw(
            f"SELECT {columns}, member.user_id AS member_id FROM {Portfolio._meta.db_table} portfolio"
            f" LEFT JOIN {members} member ON member.portfolio_id = portfolio.id"
            f" WHERE portfolio.id = {which} {for_update}",
            params,
        )
    )
    member_ids = sorted(row.member_id for row in rows if row.member_id is not None)
    if visible_to is not None and visible_to.pk not in member_ids:
        raise portfolio_not_visible(portfolio_id=portfolio_id)
    if not rows:
        raise Portfolio.DoesNotExist(f"Portfolio {portfolio_id} does not exist.")
    return PortfolioBook(rows[0], member_ids=member_ids)


@computed_exactly
def position_apply_fill(
    *,
    book: PortfolioBook,
    instrument: Instrument,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fees: Decimal,
    correlation_id: str | None = None,
) -> Revaluation:
    """Book a fill into the portfolio's cash and position; the caller holds the portfolio's lock.

    A buy adds to the position at a cost that includes the fees; a sell reduces it and removes
    it when nothing is left. Raises `BookingRefused` before writing anything, so the caller
    needs no savepoint.

    The fill changes the portfolio's value. The new value is written with the cash, in one
    update, as the baseline of the next announcement, and returned: the caller announces it
    (`portfolio_value_changed_announce`) once the events that come before it are out.
    """
    portfolio = book.portfolio
    gross = money(quantity * price)
    position = book.positions.get(instrument.pk)
    previous_quantity = position.quantity if position else Decimal("0")
    if side == "buy":
        cash_after = portfolio.cash - gross - fees
        if cash_after < 0:
            raise BookingRefused(
                "insufficient_cash",
                f"The portfolio has {portfolio.cash} EUR; this buy needs {gross + fees} EUR.",
                symbol=instrument.symbol,
                quantity=quantity,
                needed=gross + fees,
                available=portfolio.cash,
            )
        new_quantity = previous_quantity + quantity
        previous_cost = position.quantity * position.avg_cost if position else Decimal("0")
        avg_cost = ((previous_cost + gross + fees) / new_quantity).quantize(
            COST_STEP, rounding=ROUND_HALF_UP, context=ARITHMETIC
        )
        if position is None:
            position = Position(portfolio=portfolio, instrument=instrument, quantity=new_quantity, avg_cost=avg_cost)
            position.save(force_insert=True)
            book.positions[instrument.pk] = position
        else:
            position.quantity, position.avg_cost = new_quantity, avg_cost
            position.save(update_fields=["quantity", "avg_cost", "updated_at"])
    else:
        if quantity > previous_quantity:
            raise BookingRefused(
                "insufficient_position",
                f"The portfolio holds {previous_quantity} {instrument.symbol}; cannot sell {quantity}.",
                symbol=instrument.symbol,
                quantity=quantity,
                available=previous_quantity,
            )
        cash_after = portfolio.cash + gross - fees
        if cash_after < 0:
            raise BookingRefused(
                "proceeds_below_fees",
                "The proceeds of this sale do not cover its fees.",
                symbol=instrument.symbol,
                proceeds=gross,
                fees=fees,
            )
        if MONEY.fault(cash_after) is not None:
            raise BookingRefused(
                "cash_out_of_range",
                f"The proceeds would take the cash beyond what a portfolio holds ({cash_after} EUR).",
                cash_after=cash_after,
            )
        new_quantity = previous_quantity - quantity
        if new_quantity == 0:
            position.delete()
            del book.positions[instrument.pk]
            position = None
        else:
            position.quantity = new_quantity
            position.save(update_fields=["quantity", "updated_at"])
    portfolio.cash = cash_after
    revaluation = _revalue(book)
    portfolio.save(update_fields=["cash", "last_value", "updated_at"])
    _announce_position(
        book=book,
        instrument=instrument,
        action=side,
        previous_quantity=previous_quantity,
        quantity=new_quantity,
        price=price,
        correlation_id=correlation_id,
    )
    return revaluation


def _announce_position(
    *,
    book: PortfolioBook,
    instrument: Instrument,
    action: str,
    previous_quantity: Decimal,
    quantity: Decimal,
    price: Decimal,
    correlation_id: str | None,
) -> None:
    change = quantity - previous_quantity
    send_event_on_commit(
        "portfolio.position_changed",
        {
            "portfolio_id": str(book.portfolio.pk),
            "symbol": instrument.symbol,
            "isin": instrument.isin,
            "action": action,
            "quantity": quantity,
            "price": price,
            "value": money(quantity * price),
            "change": change,
            "change_percent": percent(change, previous_quantity),
            "timestamp": utc_now_iso(),
        },
        audience=book.member_ids,
        correlation_id=correlation_id,
    )


def _revalue(book: PortfolioBook) -> Revaluation:
    """Value the portfolio of `book` and remember the value (in memory) as the last announced one."""
    portfolio = book.portfolio
    current = portfolio_value(portfolio=portfolio, positions=book.positions.values())
    previous = portfolio.last_value if portfolio.last_value is not None else current
    portfolio.last_value = current
    return Revaluation(previous=previous, current=current)


def portfolio_value_changed_announce(
    *, book: PortfolioBook, revaluation: Revaluation, trigger_reason: str, correlation_id: str | None = None
) -> None:
    """Emit `portfolio.value_changed` from the last announced value to the current one."""
    change = revaluation.current - revaluation.previous
    send_event_on_commit(
        "portfolio.value_changed",
        {
            "portfolio_id": str(book.portfolio.pk),
            "previous_value": revaluation.previous,
            "current_value": revaluation.current,
            "change": change,
            "change_percent": percent(change, revaluation.previous),
            "trigger_reason": trigger_reason,
            "timestamp": utc_now_iso(),
        },
        audience=book.member_ids,
        correlation_id=correlation_id,
    )


@computed_exactly
def portfolio_value_announce(*, book: PortfolioBook, trigger_reason: str, correlation_id: str | None = None) -> Decimal:
    """Emit `portfolio.value_changed` against the last announced value and remember the new one.

    The caller holds the portfolio's lock, so two announcements never share a baseline.
    """
    revaluation = _revalue(book)
    portfolio_value_changed_announce(
        book=book, revaluation=revaluation, trigger_reason=trigger_reason, correlation_id=correlation_id
    )
    Portfolio.objects.filter(pk=book.portfolio.pk).update(last_value=revaluation.current)
    return revaluation.current


def portfolios_revalue(*, instrument: Instrument, trigger_reason: str = "price_update") -> None:
    """Announce the new value of every portfolio holding `instrument` after its price moved.

    Each portfolio is revalued in its own transaction; one that fails is logged and the others
    are still revalued.
    """
    for portfolio_id in portfolios_holding(instrument=instrument).values_list("pk", flat=True):
        try:
            with transaction.atomic():
                portfolio_value_announce(book=portfolio_lock(portfolio_id=portfolio_id), trigger_reason=trigger_reason)
        except Exception:
            logger.exception("portfolio %s could not be revalued after a %s price", portfolio_id, instrument.symbol)


def _correction_number(value: Decimal, *, digits: Digits, field: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed("validation_error", f"'{field}' must be a number.", field=field)
    return decimal_validate(value, digits=digits, field=field)


def portfolio_refresh(*, book: PortfolioBook, correlation_id: str | None = None) -> dict[str, Any]:
    """Send the whole portfolio as `portfolio.update` to its members and return that data."""
    snapshot = portfolio_snapshot(portfolio=book.portfolio, positions=book.positions.values())
    send_event_on_commit("portfolio.update", snapshot, audience=book.member_ids, correlation_id=correlation_id)
    return snapshot


@computed_exactly
@transaction.atomic
def portfolio_refresh_revalue(*, portfolio_id: int, correlation_id: str | None = None) -> dict[str, Any]:
    """Revalue a portfolio on request and send it as `portfolio.update`; return that data.

    The members get `portfolio.value_changed` with `trigger_reason` "manual_refresh" against the
    last announced value, even when it did not move: the refresh asked for the value now, and
    the event says when it was taken. The portfolio's lock keeps a fill or a price tick from
    announcing from the same baseline meanwhile.
    """
    book = portfolio_lock(portfolio_id=portfolio_id)
    portfolio_value_announce(book=book, trigger_reason="manual_refresh", correlation_id=correlation_id)
    return portfolio_refresh(book=book, correlation_id=correlation_id)


@computed_exactly
@transaction.atomic
def position_correct(
    *,
    portfolio_id: int,
    instrument: Instrument,
    quantity: Decimal,
    avg_cost: Decimal | None,
    reason: str,
    actor: Actor,
) -> PositionCorrection:
    """Set a position to `quantity` (0 removes it) by hand, and record who did it, from where and why.

    A quantity or cost its column would not store exactly, or one that would give the portfolio
    a value its cash column cannot hold, is `validation_error` and changes nothing.
    """
    quantity = _correction_number(quantity, digits=QUANTITY, field="quantity")
    if quantity < 0:
        raise ValidationFailed("invalid_quantity", "A position cannot be negative.", field="quantity")
    if avg_cost is not None:
        avg_cost = _correction_number(avg_cost, digits=COST, field="avg_cost")
        if avg_cost < 0:
            raise ValidationFailed("invalid_avg_cost", "An average cost cannot be negative.", field="avg_cost")
    if not reason.strip():
        raise ValidationFailed("reason_required", "A manual correction needs a reason.")
    book = portfolio_lock(portfolio_id=portfolio_id)
    portfolio = book.portfolio
    position = book.positions.get(instrument.pk)
    previous_quantity = position.quantity if position else Decimal("0")
    previous_avg_cost = position.avg_cost if position else None
    if quantity > 0 and avg_cost is None and position is None:
        if instrument.last_price is None:
            raise ValidationFailed("avg_cost_required", "Give avg_cost: the instrument has no price to start from.")
        avg_cost = instrument.last_price
    new_avg_cost = None
    if quantity == 0:
        if position is not None:
            position.delete()
            del book.positions[instrument.pk]
    else:
        if position is None:
            position = book.positions[instrument.pk] = Position(portfolio=portfolio, instrument=instrument)
        position.quantity = quantity
        position.avg_cost = avg_cost if avg_cost is not None else position.avg_cost
        position.save()
        new_avg_cost = position.avg_cost
    correction = PositionCorrection.objects.create(
        portfolio=portfolio,
        instrument=instrument,
        user=actor.user,
        client_id=actor.client_id or "",
        correlation_id=actor.correlation_id or "",
        remote_addr=actor.remote_addr or "",
        previous_quantity=previous_quantity,
        quantity=quantity,
        previous_avg_cost=previous_avg_cost,
        avg_cost=new_avg_cost,
        reason=reason.strip()[:500],
    )
    if MONEY.fault(portfolio_value(portfolio=portfolio, positions=book.positions.values())) is not None:
        # Raised inside the transaction: the position written above is rolled back with it.
        raise ValidationFailed(
            "validation_error",
            f"'quantity' {quantity} would make the portfolio worth more than its cash column holds "
            f"({MONEY.integer_digits} digits before the decimal point).",
            field="quantity",
        )
    portfolio.save(update_fields=["updated_at"])
    mark = position_mark_price(position) if position is not None else (instrument.last_price or previous_avg_cost or Decimal("0"))
    _announce_position(
        book=book,
        instrument=instrument,
        action="update",
        previous_quantity=previous_quantity,
        quantity=quantity,
        price=mark,
        correlation_id=actor.correlation_id,
    )
    portfolio_value_announce(book=book, trigger_reason="position_change", correlation_id=actor.correlation_id)
    portfolio_refresh(book=book, correlation_id=actor.correlation_id)
    return correction
