"""core.rows: the order path's inserts and updates write the rows `save()` writes, with statements built once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import rows
from core.rows import row_insert, row_update
from portfolio.models import Instrument, Portfolio, Position
from trading.models import Order, OrderAudit, OrderStatus

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def portfolio():
    return Portfolio.objects.create(name="Rows", cash=D("1000.00"))


@pytest.fixture
def sap():
    return Instrument.objects.create(symbol="SAP", isin="DE0007164600", name="SAP SE", last_price=D("200"))


def _order(portfolio, sap, **fields):
    values = {"side": "buy", "order_type": "limit", "quantity": D("3.5"), "price": D("199.25"), **fields}
    return Order(portfolio=portfolio, instrument=sap, status=OrderStatus.OPEN, **values)


def _stored(model, pk):
    return model.objects.filter(pk=pk).values().get()


def test_an_inserted_row_is_the_row_save_would_have_written(portfolio, sap):
    user = get_user_model().objects.create_user("rows-trader", is_staff=True)
    ours = _order(portfolio, sap, placed_by=user, client_order_id="a-1", reason_params={"figure": D("1.5")})
    theirs = _order(portfolio, sap, placed_by=user, client_order_id="a-2", reason_params={"figure": D("1.5")})

    row_insert(ours)
    theirs.save(force_insert=True)

    assert ours.pk is not None and ours.pk != theirs.pk
    assert not ours._state.adding and ours._state.db == "default"
    # auto_now_add and auto_now were set on the instance, as save() sets them
    assert ours.created_at is not None and ours.updated_at is not None
    mine, other = _stored(Order, ours.pk), _stored(Order, theirs.pk)
    for row in (mine, other):
        del row["id"], row["client_order_id"], row["created_at"], row["updated_at"]
    assert mine == other
    assert _stored(Order, ours.pk)["created_at"] == ours.created_at


def test_an_update_writes_only_the_named_fields_and_sets_auto_now(portfolio, sap):
    order = _order(portfolio, sap)
    row_insert(order)
    before = order.updated_at
    order.status, order.filled_quantity, order.average_fill_price = OrderStatus.FILLED, D("3.5"), D("199.25")
    order.reason = "not named, not written"

    row_update(order, ["status", "filled_quantity", "average_fill_price", "updated_at"])

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.filled_quantity, stored.average_fill_price) == (
        OrderStatus.FILLED,
        D("3.5"),
        D("199.25"),
    )
    assert stored.reason == ""
    assert order.updated_at >= before and stored.updated_at == order.updated_at


def test_decimals_are_stored_at_their_columns_places_as_save_stores_them(portfolio, sap):
    position = Position(portfolio=portfolio, instrument=sap, quantity=D("2"), avg_cost=D("100.123456"))
    row_insert(position)
    position.avg_cost = D("99.5")
    row_update(position, ["avg_cost", "updated_at"])

    assert Position.objects.get(pk=position.pk).avg_cost == D("99.5")
    assert Position.objects.get(pk=position.pk).quantity == D("2")


def test_a_json_field_is_stored_as_json(portfolio, sap):
    order = _order(portfolio, sap)
    row_insert(order)
    audit = OrderAudit(order=order, action=OrderAudit.Action.PLACE, details={"client_order_id": None, "n": 1})

    row_insert(audit)

    assert OrderAudit.objects.get(pk=audit.pk).details == {"client_order_id": None, "n": 1}


def test_a_constraint_violation_raises_the_integrity_error_save_raises(portfolio, sap):
    row_insert(Position(portfolio=portfolio, instrument=sap, quantity=D("1"), avg_cost=D("1")))

    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(Position(portfolio=portfolio, instrument=sap, quantity=D("1"), avg_cost=D("1")))

    assert Position.objects.filter(portfolio=portfolio).count() == 1


def test_an_update_of_a_row_that_is_gone_raises_as_save_does(portfolio, sap):
    order = _order(portfolio, sap)
    row_insert(order)
    Order.objects.filter(pk=order.pk).delete()

    with pytest.raises(DatabaseError, match="did not affect any rows"):
        row_update(order, ["status"])


def test_an_instance_with_a_key_is_not_inserted_again(portfolio, sap):
    order = _order(portfolio, sap)
    row_insert(order)

    with pytest.raises(ValueError, match="primary key already"):
        row_insert(order)

    assert Order.objects.count() == 1


def test_a_field_that_is_no_column_is_refused(portfolio):
    with pytest.raises(ImproperlyConfigured):
        row_update(portfolio, ["members"])
    with pytest.raises(ImproperlyConfigured):
        row_update(portfolio, ["id"])


def test_a_model_with_a_database_default_is_refused():
    class Computed(models.Model):
        made_at = models.DateTimeField(db_default=models.functions.Now())

        class Meta:
            app_label = "portfolio"
            managed = False

    with pytest.raises(ImproperlyConfigured, match="computed by the database"):
        row_insert(Computed())


def test_each_statement_is_built_once_and_is_one_query(portfolio, sap):
    row_insert(_order(portfolio, sap))  # built here, if no test before built it
    built = dict(rows._INSERTS)

    with CaptureQueriesContext(connection) as queries:
        row_insert(_order(portfolio, sap))

    assert rows._INSERTS == built
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith('INSERT INTO "trading_order"')


def test_an_update_keeps_a_value_an_auto_now_field_was_not_asked_to_change(portfolio):
    stamp = timezone.now() - timedelta(days=3)
    Portfolio.objects.filter(pk=portfolio.pk).update(updated_at=stamp)
    portfolio.refresh_from_db()
    portfolio.cash = D("5.00")

    row_update(portfolio, ["cash"])

    stored = Portfolio.objects.get(pk=portfolio.pk)
    assert stored.cash == D("5.00") and stored.updated_at == stamp


def test_joined_rows_come_back_as_the_instances_a_queryset_builds(portfolio, sap):
    other = Instrument.objects.create(symbol="SIE", isin="DE0007236101", name="Siemens", last_price=None)
    Position.objects.create(portfolio=portfolio, instrument=sap, quantity=D("1.5"), avg_cost=D("10.123456"))
    Position.objects.create(portfolio=portfolio, instrument=other, quantity=D("2"), avg_cost=D("0"))
    Position.objects.create(
        portfolio=Portfolio.objects.create(name="Other"), instrument=sap, quantity=D("9"), avg_cost=D("1")
    )
    reader = rows.Rows(
        (Position, "p"),
        (Instrument, "i"),
        tail="FROM portfolio_position p JOIN portfolio_instrument i ON i.id = p.instrument_id WHERE p.portfolio_id = %s",
    )

    read = sorted(reader.read([portfolio.pk]), key=lambda pair: pair[1].symbol)

    expected = Position.objects.filter(portfolio=portfolio).select_related("instrument").order_by("instrument__symbol")
    assert [(position.pk, instrument.pk) for position, instrument in read] == [
        (position.pk, position.instrument_id) for position in expected
    ]
    for (position, instrument), queried in zip(read, expected, strict=True):
        for field in Position._meta.concrete_fields:
            assert getattr(position, field.attname) == getattr(queried, field.attname)
            assert type(getattr(position, field.attname)) is type(getattr(queried, field.attname))
        for field in Instrument._meta.concrete_fields:
            assert getattr(instrument, field.attname) == getattr(queried.instrument, field.attname)
        assert not position._state.adding and position._state.db == "default"
    assert read[0][0].avg_cost == D("10.123456") and read[1][1].last_price is None


def test_a_left_join_that_finds_nothing_gives_none_for_that_model(portfolio):
    reader = rows.Rows(
        (Portfolio, "f"),
        (Position, "p"),
        tail="FROM portfolio_portfolio f LEFT JOIN portfolio_position p ON p.portfolio_id = f.id WHERE f.id = %s",
    )

    ((found, position),) = reader.read([portfolio.pk])

    assert found.pk == portfolio.pk and found.cash == D("1000.00") and position is None
