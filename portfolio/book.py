"""A portfolio's book: the portfolio locked for one transaction, with its positions and members.

Every write to a portfolio's cash, positions or orders starts with `portfolio_lock`, so they are
serialised the same way and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from django.db import connection
from django.db.transaction import TransactionManagementError

from core.rows import Rows, read_together

from .models import Instrument, Portfolio, Position
from .selectors import portfolio_member_ids, portfolio_not_visible, user_sees_portfolios


# Every order reads its portfolio's positions with their instruments (for the price, the sale's
# cover and the revaluation): one statement, built once, instead of a queryset compiled per order.
_POSITIONS_WITH_INSTRUMENTS = Rows(
    (Position, "pos"),
    (Instrument, "ins"),
    tail=f"FROM {Position._meta.db_table} pos JOIN {Instrument._meta.db_table} ins ON ins.id = pos.instrument_id"
    " WHERE pos.portfolio_id = %s",
)


class PortfolioBook:
    """A portfolio with its positions and its members, each read once, when first needed.

    The services of one transaction share a book instead of reading the same rows again. Under
    the portfolio's lock (`portfolio_lock`) nothing else changes its cash or positions, so the
    services booking into it keep the book current themselves.
    """

    def __init__(self, portfolio: Portfolio, *, member_ids: list[int] | None = None) -> None:
        self.portfolio = portfolio
        self.read_along: dict[str, list] = {}
        if member_ids is not None:  # read with the portfolio (`portfolio_lock`): no query of their own
            self.member_ids = member_ids

    @cached_property
    def positions(self) -> dict[int, Position]:
        """The positions by instrument id, each with its instrument."""
        return _positions_of(_POSITIONS_WITH_INSTRUMENTS.read([self.portfolio.pk]))

    @cached_property
    def member_ids(self) -> list[int]:
        """The ids of the users who receive the portfolio's events."""
        return portfolio_member_ids(portfolio=self.portfolio)


def _positions_of(rows: list) -> dict[int, Position]:
    positions = {}
    for position, instrument in rows:
        assert isinstance(position, Position) and isinstance(instrument, Instrument)  # an inner join
        position.instrument = instrument
        positions[position.instrument_id] = position
    return positions


# The lock's statements by whether they pick the user's first portfolio and by the database's
# FOR UPDATE clause (none on SQLite, which serialises writers by IMMEDIATE transactions; see
# settings). FOR UPDATE OF the portfolio alone: its members are read, not locked.
_LOCKS: dict[tuple[bool, str], Rows] = {}


# The id of the first portfolio of the user given as its parameter.
_FIRST_OF_USER = (
    f"(SELECT portfolio_id FROM {Portfolio.members.through._meta.db_table} WHERE user_id = %s"
    " ORDER BY portfolio_id LIMIT 1)"
)


def _lock_statement(*, first_of_user: bool) -> Rows:
    """The portfolio with a row per member: by id, or the first one of the user given as parameter."""
    for_update = connection.ops.for_update_sql(of=("portfolio",)) if connection.features.has_select_for_update else ""
    statement = _LOCKS.get((first_of_user, for_update))
    if statement is None:
        members = Portfolio.members.through._meta.db_table
        which = _FIRST_OF_USER if first_of_user else "%s"
        statement = _LOCKS[first_of_user, for_update] = Rows(
            (Portfolio, "portfolio"),
            (Portfolio.members.through, "member"),
            tail=f"FROM {Portfolio._meta.db_table} portfolio LEFT JOIN {members} member"
            f" ON member.portfolio_id = portfolio.id WHERE portfolio.id = {which} {for_update}",
        )
    return statement


class _ThePortfolio:
    def __repr__(self) -> str:
        return "THE_PORTFOLIO"


# In the parameters of a read `portfolio_lock` runs along: the locked portfolio's id.
THE_PORTFOLIO: Any = _ThePortfolio()


def portfolio_lock(
    *,
    portfolio_id: int | None = None,
    visible_to=None,
    positions: bool = False,
    along: Mapping[str, tuple[Any, Sequence[Any]]] | None = None,
) -> PortfolioBook:
    """Lock the portfolio row for update until the transaction ends; return its book.

    With `visible_to`, the portfolio must be one that user may see: `portfolio_id`, or without
    it the user's first; else `NotFound`, as from `portfolio_get_visible`. The members come in
    the same statement, a row per member, as every service that locks a portfolio announces to
    them.

    With `positions`, the book's positions are read with the lock; `along` names more reads
    (`core.rows.Rows` or `Values`, with their parameters, `THE_PORTFOLIO` standing for the
    portfolio's id), whose results the book keeps in `read_along` under the same names. They run
    after the lock is held, in the lock's round trip when `portfolio_id` is given
    (`core.rows.read_together`), else in one round trip after it, and their results are given
    only for a portfolio the user may see.

    The statement is built once (`_lock_statement`): every write to a portfolio starts with it,
    and the ORM spent about 0.9 ms of the database thread's CPU building it (the member join, the
    subquery for the user's first portfolio), five times what running it costs.
    """
    if connection.get_autocommit():
        raise TransactionManagementError("portfolio_lock() locks until the transaction ends: call it in one.")
    if visible_to is not None and not user_sees_portfolios(user=visible_to):
        raise portfolio_not_visible(portfolio_id=portfolio_id)
    first_of_user = portfolio_id is None and visible_to is not None
    lock = (_lock_statement(first_of_user=first_of_user), [visible_to.pk if first_of_user else portfolio_id])
    along = along or {}
    names = list(along)
    reads: list[tuple[Any, Sequence[Any]]] = [(_POSITIONS_WITH_INSTRUMENTS, [THE_PORTFOLIO])] if positions else []
    reads += [along[name] for name in names]
    if portfolio_id is not None:
        found, *results = read_together([lock, *_bound(reads, portfolio_id)])
    else:
        # The reads need the id the lock found: in a round trip of their own.
        found, results = lock[0].read(lock[1]), []
    member_ids = sorted(member.user_id for _, member in found if member is not None)
    if visible_to is not None and visible_to.pk not in member_ids:
        raise portfolio_not_visible(portfolio_id=portfolio_id)
    if not found:
        raise Portfolio.DoesNotExist(f"Portfolio {portfolio_id} does not exist.")
    portfolio = found[0][0]
    assert isinstance(portfolio, Portfolio)  # the row of the FROM table: never absent
    if reads and portfolio_id is None:
        results = read_together(_bound(reads, portfolio.pk))
    book = PortfolioBook(portfolio, member_ids=member_ids)
    if positions:
        book.positions = _positions_of(results.pop(0))
    book.read_along = dict(zip(names, results, strict=True))
    return book


def _bound(reads: list[tuple[Any, Sequence[Any]]], portfolio_id: int) -> list[tuple[Any, list[Any]]]:
    return [
        (select, [portfolio_id if value is THE_PORTFOLIO else value for value in params]) for select, params in reads
    ]
