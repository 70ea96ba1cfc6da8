"""portfolio.book: the lock reads the book's positions and the caller's reads in its round trip, for a portfolio the user sees."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.exceptions import NotFound
from core.rows import Values, read_together
from portfolio.book import portfolio_lock
from portfolio.models import Portfolio, Position
from portfolio.selectors import instrument_read
from trading.funds import order_refusal, resting_orders_read
from trading.models import Order, OrderStatus

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def pipelines(monkeypatch):
    """Count the psycopg pipelines the connection enters (the reads still run against the database)."""
    if connection.vendor != "postgresql":
        pytest.fail("the reads go out together on PostgreSQL only (`make test` provides one).")
    connection.ensure_connection()
    raw = connection.connection
    entered = []
    original = raw.pipeline

    def counted():
        entered.append(1)
        return original()

    monkeypatch.setattr(raw, "pipeline", counted)
    return entered


def _limit(portfolio, instrument, side, quantity, price, status=OrderStatus.PENDING):
    """A limit order, not saved."""
    return Order(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        order_type="limit",
        quantity=D(quantity),
        price=D(price),
        status=status,
    )


def _resting(portfolio, instrument, side, quantity, price):
    order = _limit(portfolio, instrument, side, quantity, price, OrderStatus.OPEN)
    order.save()
    return order


def test_reads_together_give_what_each_gives_alone_in_one_pipeline(portfolio_with_position, sap, siemens, pipelines):
    _resting(portfolio_with_position, sap, "sell", "2", "250")
    positions = Values(
        Position, "p", ["instrument_id", "quantity"], tail="FROM portfolio_position p WHERE p.portfolio_id = %s"
    )
    reads = [(positions, [portfolio_with_position.pk]), instrument_read(symbol="sie"), instrument_read(symbol="NOPE")]

    with transaction.atomic():
        together = read_together(reads)
    alone = [select.read(params) for select, params in reads]

    assert len(pipelines) == 1
    assert together == alone
    assert together[0] == [(sap.pk, D("10"))]
    assert [instrument.pk for (instrument,) in together[1]] == [siemens.pk]
    assert together[2] == []


def test_a_read_that_fails_raises_djangos_error_and_the_transaction_is_not_kept(portfolio, pipelines):
    failing = Values(Portfolio, "f", ["cash"], tail="FROM portfolio_portfolio f WHERE f.id = 1 / %s")

    with pytest.raises(DatabaseError), transaction.atomic():
        read_together([(failing, [0]), (failing, [1])])

    assert len(pipelines) == 1
    assert Portfolio.objects.filter(pk=portfolio.pk).exists()  # the connection answers again


@pytest.mark.parametrize("by_id", [True, False], ids=["by id", "the user's first"])
def test_the_lock_reads_positions_and_what_the_caller_names_after_locking(
    portfolio_with_position, sap, siemens, trader, by_id, pipelines
):
    resting = _resting(portfolio_with_position, siemens, "buy", "3", "100")

    with transaction.atomic():
        book = portfolio_lock(
            portfolio_id=portfolio_with_position.pk if by_id else None,
            visible_to=trader,
            positions=True,
            along={"instrument": instrument_read(symbol="SIE"), "resting": resting_orders_read()},
        )
        with CaptureQueriesContext(connection) as later:
            assert set(book.positions) == {sap.pk}
            assert book.positions[sap.pk].instrument.symbol == "SAP"
        assert later.captured_queries == []  # the positions came with the lock

    assert book.portfolio.pk == portfolio_with_position.pk
    assert [instrument.pk for (instrument,) in book.read_along["instrument"]] == [siemens.pk]
    assert [row[0] for row in book.read_along["resting"]] == [resting.pk]
    assert len(pipelines) == 1  # by id: with the lock; the user's first: right after it


def test_a_portfolio_the_user_does_not_see_is_not_found_with_reads_along(portfolio, other_trader):
    with pytest.raises(NotFound), transaction.atomic():
        portfolio_lock(portfolio_id=portfolio.pk, visible_to=other_trader, along={"resting": resting_orders_read()})


@pytest.mark.parametrize(
    ("side", "quantity", "price", "refused"),
    [
        ("buy", "30", "200", None),
        ("buy", "45", "200", "insufficient_cash"),
        ("sell", "7", "300", None),
        ("sell", "8", "300", "insufficient_position"),
    ],
)
def test_the_refusal_from_the_resting_orders_read_with_the_lock_is_the_one_read_alone(
    portfolio_with_position, sap, side, quantity, price, refused
):
    # 10 SAP held and 3 offered; cash 8000 of which 2 x 100 x 1.002 and more is reserved by buys
    _resting(portfolio_with_position, sap, "sell", "3", "400")
    _resting(portfolio_with_position, sap, "buy", "2", "100")
    Portfolio.objects.filter(pk=portfolio_with_position.pk).update(cash=D("8000.00"))
    order = _limit(portfolio_with_position, sap, side, quantity, price)

    with transaction.atomic():
        book = portfolio_lock(
            portfolio_id=portfolio_with_position.pk, positions=True, along={"resting": resting_orders_read()}
        )
        with_lock = order_refusal(book=book, order=order, resting=book.read_along["resting"])
        alone = order_refusal(book=book, order=order)

    assert with_lock == alone
    assert (with_lock.code if with_lock else None) == refused
