"""Whether a portfolio can afford or cover an order: its cash and holdings, less what its resting orders reserve."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.rows import Values
from portfolio.book import THE_PORTFOLIO, PortfolioBook
from portfolio.models import Instrument
from portfolio.selectors import money

from .execution import fee_for
from .models import RESTING_STATUSES, Order, OrderType, Side
from .selectors import buy_orders_reserve


# The remaining quantity and prices of a portfolio's resting orders on one side, by whether the
# statement also names the instrument and leaves one order out. Parameters: the portfolio, the
# side, the resting statuses, then the instrument and the order left out, where it has them. One
# statement per shape, built once: every order's check runs one, and the queryset it replaces was
# compiled anew each time.
_RESTING = (
    f"FROM {Order._meta.db_table} o WHERE o.portfolio_id = %s AND o.side = %s"
    f" AND o.status IN ({', '.join(['%s'] * len(RESTING_STATUSES))})"
)
_RESERVED_FIELDS = ("quantity", "filled_quantity", "price", "stop_price")
_RESERVING = {
    (False, False): Values(Order, "o", _RESERVED_FIELDS, tail=_RESTING),
    (True, False): Values(Order, "o", _RESERVED_FIELDS, tail=_RESTING + " AND o.instrument_id = %s"),
    (False, True): Values(Order, "o", _RESERVED_FIELDS, tail=_RESTING + " AND o.id <> %s"),
    (True, True): Values(Order, "o", _RESERVED_FIELDS, tail=_RESTING + " AND o.instrument_id = %s AND o.id <> %s"),
}


# Every resting order of a portfolio, both sides, with what tells them apart: read with the
# portfolio's lock when placing an order (`resting_orders_read`), in the lock's round trip.
_ALL_RESTING = Values(
    Order,
    "o",
    ("id", "side", "instrument_id", *_RESERVED_FIELDS),
    tail=f"FROM {Order._meta.db_table} o WHERE o.portfolio_id = %s"
    f" AND o.status IN ({', '.join(['%s'] * len(RESTING_STATUSES))})",
)

Resting = list[tuple[int, str, int, Decimal, Decimal, Decimal | None, Decimal | None]]


def resting_orders_read() -> tuple[Values, list]:
    """The read of the portfolio's resting orders, for `portfolio_lock(along=...)`; see `order_refusal`."""
    return _ALL_RESTING, [THE_PORTFOLIO, *RESTING_STATUSES]


def _resting_orders(
    *,
    book: PortfolioBook,
    side: str,
    excluding: int | None,
    instrument: Instrument | None = None,
    resting: Resting | None = None,
) -> list[tuple[Decimal, Decimal, Decimal | None, Decimal | None]]:
    """(quantity, filled quantity, price, stop price) of the portfolio's resting orders on `side`,
    of `instrument` if given, leaving out the order `excluding`: from `resting` if given."""
    if resting is not None:
        return [
            (quantity, filled, price, stop_price)
            for pk, order_side, instrument_id, quantity, filled, price, stop_price in resting
            if order_side == side and pk != excluding and (instrument is None or instrument_id == instrument.pk)
        ]
    params: list = [book.portfolio.pk, side, *RESTING_STATUSES]
    if instrument is not None:
        params.append(instrument.pk)
    if excluding is not None:
        params.append(excluding)
    return _RESERVING[instrument is not None, excluding is not None].read(params)


# `Side.BUY` and `Side.SELL` are TextChoices members, each a str at run time; without Django's
# type stubs mypy reads one as its (value, label) tuple, hence the ignores naming the one code.


def _reserved_cash(*, book: PortfolioBook, excluding: int | None = None, resting: Resting | None = None) -> Decimal:
    """Return the cash the portfolio's resting buy orders may still spend, fees included."""
    return buy_orders_reserve(_resting_orders(book=book, side=Side.BUY, excluding=excluding, resting=resting))  # type: ignore[arg-type]


def _reserved_quantity(
    *, book: PortfolioBook, instrument: Instrument, excluding: int | None = None, resting: Resting | None = None
) -> Decimal:
    """Return the units of an instrument the portfolio's resting sell orders may still sell."""
    total = Decimal("0")
    orders = _resting_orders(book=book, side=Side.SELL, excluding=excluding, instrument=instrument, resting=resting)  # type: ignore[arg-type]
    for quantity, filled, _, _ in orders:
        total += quantity - filled
    return total


@dataclass(frozen=True)
class Refusal:
    """Why a portfolio cannot take an order: a code, the reason in words, and the figures it names."""

    code: str
    reason: str
    params: dict


def order_refusal(*, book: PortfolioBook, order: Order, resting: Resting | None = None) -> Refusal | None:
    """Return why the portfolio cannot afford or cover `order`, or None if it can.

    `resting` is what `resting_orders_read` read under the portfolio's lock in this transaction,
    before any order of it was written; without it the resting orders are read now.
    """
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
        available = money(
            max(book.portfolio.cash - _reserved_cash(book=book, excluding=order.pk, resting=resting), Decimal("0"))
        )
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
        available = max(
            held - _reserved_quantity(book=book, instrument=instrument, excluding=order.pk, resting=resting),
            Decimal("0"),
        )
        if remaining > available:
            return Refusal(
                "insufficient_position",
                f"Selling {remaining} {instrument.symbol} exceeds the {available} "
                "held and not already offered for sale.",
                {"symbol": instrument.symbol, "quantity": remaining, "available": available},
            )
    return None
