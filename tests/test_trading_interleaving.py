"""The re-checks under the lock, with the competing write placed exactly in the gap they guard.

Two workers racing for one order are tested with threads on PostgreSQL
(`test_trading_concurrency.py`); whether a thread lands in the gap there is luck. Here the
competing tick or cancellation runs at the one moment that matters, after a worker picked its
candidates and before it takes the portfolio's lock, so the outcome does not depend on timing or
on the database.
"""

from decimal import Decimal

import pytest

from portfolio.models import Position
from trading import execution
from trading.execution import resting_orders_execute
from trading.models import Fill, Order, OrderStatus
from trading.services import order_cancel, order_place

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def before_lock(monkeypatch):
    """Run a given call once, right before the execution path takes a portfolio's lock."""
    pending = []
    lock = execution.portfolio_lock

    def lock_after_competitor(**kwargs):
        while pending:
            pending.pop(0)()
        return lock(**kwargs)

    monkeypatch.setattr(execution, "portfolio_lock", lock_after_competitor)
    return pending.append


@pytest.fixture
def resting_buy(portfolio, sap, actor):
    """A resting limit buy of 10 SAP at 190 while SAP trades at 200."""
    return order_place(
        portfolio_id=portfolio.pk,
        symbol="SAP",
        side="buy",
        order_type="limit",
        quantity=D("10"),
        price=D("190"),
        actor=actor,
    )


def test_a_tick_does_not_fill_an_order_another_tick_filled_after_it_was_picked(
    portfolio, sap, resting_buy, before_lock
):
    # given a competing tick that fills the order after this tick picked it as a candidate
    competitor = []
    before_lock(lambda: competitor.extend(resting_orders_execute(instrument=sap, price=D("189"))))

    # when this tick executes
    touched = resting_orders_execute(instrument=sap, price=D("188"))

    # then only the competitor filled it: one fill, one booking of cash and position
    assert [o.pk for o in competitor] == [resting_buy.pk]
    assert touched == []
    assert list(Fill.objects.filter(order=resting_buy).values_list("price", flat=True)) == [D("189")]
    assert Position.objects.get(portfolio=portfolio, instrument=sap).quantity == D("10")
    assert Order.objects.get(pk=resting_buy.pk).status == OrderStatus.FILLED


def test_a_tick_does_not_fill_an_order_cancelled_after_it_was_picked(portfolio, sap, actor, resting_buy, before_lock):
    # given a cancellation that lands after this tick picked the order
    before_lock(lambda: order_cancel(order_id=resting_buy.pk, actor=actor))

    # when the tick executes
    touched = resting_orders_execute(instrument=sap, price=D("189"))

    # then the order stays cancelled and nothing was booked
    assert touched == []
    assert Order.objects.get(pk=resting_buy.pk).status == OrderStatus.CANCELLED
    assert not Fill.objects.filter(order=resting_buy).exists()
    assert not Position.objects.filter(portfolio=portfolio, instrument=sap).exists()
