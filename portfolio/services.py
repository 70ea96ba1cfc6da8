"""Writes to portfolios: fills booked into cash and positions, audited corrections, revaluation.

Every change sends its `portfolio.signals` inside its transaction, with the portfolio's members;
`portfolio.receivers` publish them as events on commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction

from core.actor import Actor
from core.exceptions import DomainError, ValidationFailed
from core.numbers import ARITHMETIC, Digits, computed_exactly, decimal_validate
from core.rows import row_delete, row_insert, row_update

from . import signals
from .book import PortfolioBook, portfolio_lock
from .models import Instrument, Portfolio, Position, PositionCorrection
from .selectors import money, portfolio_snapshot, portfolio_value, portfolios_holding, position_mark_price

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
            row_insert(position)
            book.positions[instrument.pk] = position
        else:
            position.quantity, position.avg_cost = new_quantity, avg_cost
            row_update(position, ["quantity", "avg_cost", "updated_at"])
    else:
        if position is None or quantity > previous_quantity:  # nothing held, or less than the sale
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
            row_delete(position)
            del book.positions[instrument.pk]
            position = None
        else:
            position.quantity = new_quantity
            row_update(position, ["quantity", "updated_at"])
    portfolio.cash = cash_after
    revaluation = _revalue(book)
    row_update(portfolio, ["cash", "last_value", "updated_at"])
    _position_changed(
        book=book,
        instrument=instrument,
        action=side,
        previous_quantity=previous_quantity,
        quantity=new_quantity,
        price=price,
        correlation_id=correlation_id,
    )
    return revaluation


def _position_changed(
    *,
    book: PortfolioBook,
    instrument: Instrument,
    action: str,
    previous_quantity: Decimal,
    quantity: Decimal,
    price: Decimal,
    correlation_id: str | None,
) -> None:
    signals.position_changed.send(
        Portfolio,
        portfolio=book.portfolio,
        instrument=instrument,
        action=action,
        previous_quantity=previous_quantity,
        quantity=quantity,
        price=price,
        member_ids=book.member_ids,
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
    """Send `value_changed` from the last announced value to the current one."""
    signals.value_changed.send(
        Portfolio,
        portfolio=book.portfolio,
        previous=revaluation.previous,
        current=revaluation.current,
        trigger_reason=trigger_reason,
        member_ids=book.member_ids,
        correlation_id=correlation_id,
    )


@computed_exactly
def portfolio_value_announce(*, book: PortfolioBook, trigger_reason: str, correlation_id: str | None = None) -> Decimal:
    """Send `value_changed` against the last announced value and remember the new one.

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
    """Send the whole portfolio (`portfolio_updated`, the `portfolio.update` event) and return that data."""
    snapshot = portfolio_snapshot(portfolio=book.portfolio, positions=book.positions.values())
    signals.portfolio_updated.send(
        Portfolio,
        portfolio=book.portfolio,
        snapshot=snapshot,
        member_ids=book.member_ids,
        correlation_id=correlation_id,
    )
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
    *, portfolio_id: int, instrument: Instrument, quantity: Decimal, avg_cost: Decimal | None, reason: str, actor: Actor
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
            row_delete(position)
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
    mark = (
        position_mark_price(position)
        if position is not None
        else (instrument.last_price or previous_avg_cost or Decimal("0"))
    )
    _position_changed(
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
