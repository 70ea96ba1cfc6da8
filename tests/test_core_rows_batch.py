"""core.rows.batched_writes(): the writes of a block go out together, and nothing reads around them.

PostgreSQL only: elsewhere each write goes out when it is made.
"""

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core import rows
from core.rows import row_insert, row_update
from portfolio.models import Instrument, Portfolio, Position
from portfolio.services import portfolio_create
from tests.fixtures.trading import place
from trading.models import Order, OrderAudit, OrderStatus

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def postgresql():
    """Fail on any other database: the writes are batched on PostgreSQL only."""
    if connection.vendor != "postgresql":
        pytest.fail("batched_writes() batches on PostgreSQL only (`make test` provides one).")


@pytest.fixture
def portfolio():
    """A portfolio of nobody's: the rows are written directly, not by the services."""
    return Portfolio.objects.create(name="Rows", cash=D("1000.00"))


def _order(portfolio, sap, **fields):
    values = {"side": "buy", "order_type": "limit", "quantity": D("3.5"), "price": D("199.25"), **fields}
    return Order(portfolio=portfolio, instrument=sap, status=OrderStatus.OPEN, **values)


def _statements(queries):
    """The statements sent, without those of the transaction and its savepoints."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"] not in ("BEGIN", "COMMIT") and "SAVEPOINT" not in query["sql"]
    ]


def test_writes_to_different_tables_go_out_as_one_statement_when_the_block_ends(portfolio, sap):
    order = _order(portfolio, sap)
    row_insert(order)
    position = Position(portfolio=portfolio, instrument=sap, quantity=D("2"), avg_cost=D("10"))
    audit = OrderAudit(order=order, action=OrderAudit.Action.PLACE, details={})

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        with rows.batched_writes():
            row_insert(position)
            portfolio.cash = D("980.00")
            row_update(portfolio, ["cash"])
            row_insert(audit)
            order.status = OrderStatus.FILLED
            row_update(order, ["status"])
            assert position.pk is None and audit.pk is None  # held: no key yet
            assert _statements(queries) == []
        sent = _statements(queries)

    assert len(sent) == 1 and sent[0].startswith("WITH ")
    assert Position.objects.get(pk=position.pk).quantity == D("2")
    assert OrderAudit.objects.get(pk=audit.pk).order_id == order.pk
    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("980.00")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FILLED
    assert not position._state.adding and position._state.db == "default"


def test_any_other_statement_sees_the_held_writes(portfolio, sap):
    with transaction.atomic(), rows.batched_writes():
        portfolio.cash = D("1.50")
        row_update(portfolio, ["cash"])
        position = Position(portfolio=portfolio, instrument=sap, quantity=D("3"), avg_cost=D("1"))
        row_insert(position)

        assert Portfolio.objects.values_list("cash", flat=True).get(pk=portfolio.pk) == D("1.50")
        assert position.pk is not None
        assert Position.objects.filter(portfolio=portfolio).count() == 1


def test_a_second_write_to_a_table_sends_the_held_ones_first(portfolio, sap):
    first, second = _order(portfolio, sap), _order(portfolio, sap)
    row_insert(first)
    row_insert(second)

    with CaptureQueriesContext(connection) as queries, transaction.atomic(), rows.batched_writes():
        first.status = OrderStatus.FILLED
        row_update(first, ["status"])
        second.status = OrderStatus.CANCELLED
        row_update(second, ["status"])
        assert len(_statements(queries)) == 1

    assert len(_statements(queries)) == 2
    assert dict(Order.objects.values_list("pk", "status")) == {
        first.pk: OrderStatus.FILLED,
        second.pk: OrderStatus.CANCELLED,
    }


def test_a_row_inserted_and_then_updated_in_one_block_ends_as_updated(portfolio, sap):
    order = _order(portfolio, sap)

    with transaction.atomic(), rows.batched_writes():
        row_insert(order)
        order.status = OrderStatus.FILLED
        row_update(order, ["status"])

    assert Order.objects.get(pk=order.pk).status == OrderStatus.FILLED


def test_an_insert_related_to_a_held_insert_gets_its_key(portfolio, sap):
    order = _order(portfolio, sap)

    with transaction.atomic(), rows.batched_writes():
        row_insert(order)
        audit = OrderAudit(order=order, action=OrderAudit.Action.PLACE, details={})
        row_insert(audit)

    assert order.pk is not None and audit.order_id == order.pk
    assert OrderAudit.objects.get(pk=audit.pk).order_id == order.pk


def test_a_held_update_that_finds_no_row_raises_at_the_end_and_nothing_of_the_block_is_kept(portfolio, sap):
    order = _order(portfolio, sap)
    row_insert(order)
    Order.objects.filter(pk=order.pk).delete()

    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
        with rows.batched_writes():
            portfolio.cash = D("1.00")
            row_update(portfolio, ["cash"])
            row_update(order, ["status"])

    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("1000.00")


def test_a_held_insert_that_breaks_a_constraint_raises_the_integrity_error(portfolio, sap):
    row_insert(Position(portfolio=portfolio, instrument=sap, quantity=D("1"), avg_cost=D("1")))

    with pytest.raises(IntegrityError), transaction.atomic(), rows.batched_writes():
        row_insert(Position(portfolio=portfolio, instrument=sap, quantity=D("1"), avg_cost=D("1")))

    assert Position.objects.filter(portfolio=portfolio).count() == 1


def test_an_exception_that_leaves_the_block_drops_the_held_writes_and_the_transaction(portfolio):
    with transaction.atomic():
        try:
            with rows.batched_writes():
                portfolio.cash = D("2.00")
                row_update(portfolio, ["cash"])
                raise LookupError("the caller's own failure")
        except LookupError:
            pass
        # The transaction can no longer commit what was held: it rolls back when the block ends.
        with pytest.raises(transaction.TransactionManagementError):
            Portfolio.objects.count()

    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("1000.00")


@pytest.mark.django_db(transaction=True)
def test_a_block_outside_a_transaction_is_refused():
    with pytest.raises(transaction.TransactionManagementError), rows.batched_writes():
        pass


def test_a_block_inside_another_joins_it(portfolio, sap):
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), rows.batched_writes():
        portfolio.cash = D("3.00")
        row_update(portfolio, ["cash"])
        with rows.batched_writes():
            row_insert(Position(portfolio=portfolio, instrument=sap, quantity=D("1"), avg_cost=D("1")))
        assert _statements(queries) == []

    assert len(_statements(queries)) == 1


def test_a_deleted_row_is_gone_and_its_instance_has_no_key(portfolio, sap):
    other = Instrument.objects.create(symbol="SIE", isin="DE0007236101", name="Siemens", last_price=D("1"))
    kept = Position(portfolio=portfolio, instrument=sap, quantity=D("1"), avg_cost=D("1"))
    gone = Position(portfolio=portfolio, instrument=other, quantity=D("1"), avg_cost=D("1"))
    row_insert(kept)
    row_insert(gone)
    gone_pk = gone.pk

    with transaction.atomic(), rows.batched_writes():
        rows.row_delete(gone)
        assert gone.pk == gone_pk  # held

    assert gone.pk is None
    assert list(Position.objects.values_list("pk", flat=True)) == [kept.pk]
    again = Position(pk=gone_pk, portfolio=portfolio, instrument=other, quantity=D("1"), avg_cost=D("1"))
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        rows.row_delete(again)


def test_a_filled_market_order_writes_in_two_statements(sap, trader, actor, trading_settings):
    # The order goes in first (its key is the others' reference); its audit entry, the position,
    # the cash, the fill and the order's new state go out together.
    portfolio = portfolio_create(name="Batched", cash=D("10000.00"), members=[trader])
    with CaptureQueriesContext(connection) as queries:
        place(portfolio, sap, actor)
        place(portfolio, sap, actor, side="sell")

    writes = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith(("INSERT", "UPDATE", "DELETE", "WITH"))
    ]
    parts = [statement.count(" AS (") for statement in writes]
    assert parts == [1, 5, 1, 5]  # the buy opens the position, the sell deletes it
    assert all(statement.startswith('WITH w0 AS (INSERT INTO "trading_order"') for statement in writes[::2])
    assert not Position.objects.filter(portfolio=portfolio).exists()
    assert Order.objects.filter(status=OrderStatus.FILLED).count() == 2
