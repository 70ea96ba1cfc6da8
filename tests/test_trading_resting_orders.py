"""Resting limit and stop orders with the paper broker, on the real database: what a price tick fills, fails or refuses."""

from decimal import Decimal

import pytest

from portfolio.models import Portfolio, Position
from tests.fixtures.trading import place
from trading.execution import resting_orders_execute
from trading.models import Fill, Order, OrderStatus

pytestmark = pytest.mark.django_db

D = Decimal


def test_limit_buy_rests_until_a_price_crosses_it(portfolio, sap, actor, published, django_capture_on_commit_callbacks):
    # given a limit buy at 190 with SAP at 200
    with django_capture_on_commit_callbacks(execute=True):
        order = place(portfolio, sap, actor, order_type="limit", price=D("190"))
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert published.data("trading.order_created")[0]["status"] == "open"

    # when prices above the limit trade, nothing happens
    assert resting_orders_execute(instrument=sap, price=D("190.01")) == []
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN and not order.fills.exists()

    # when a price at or below the limit trades, it fills at that price
    with django_capture_on_commit_callbacks(execute=True):
        executed = resting_orders_execute(instrument=sap, price=D("189.50"))
    assert [o.pk for o in executed] == [order.pk]
    order.refresh_from_db()
    assert (order.status, order.average_fill_price) == (OrderStatus.FILLED, D("189.50"))
    assert Position.objects.get(portfolio=portfolio).quantity == D("10")
    portfolio.refresh_from_db()
    assert portfolio.cash == D("10000.00") - D("1895.00") - D("1.90")
    assert published.data("trading.order_filled")[0]["fill_price"] == D("189.50")


def test_limit_sell_fills_when_price_rises_to_it(portfolio_with_position, sap, actor):
    order = place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("5"), price=D("210"))

    assert resting_orders_execute(instrument=sap, price=D("209.99")) == []
    assert [o.pk for o in resting_orders_execute(instrument=sap, price=D("210"))] == [order.pk]
    assert Position.objects.get().quantity == D("5")


def test_marketable_limit_order_fills_at_once_at_the_last_price(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("205"))

    order.refresh_from_db()
    assert (order.status, order.average_fill_price) == (OrderStatus.FILLED, D("200"))


def test_stop_sell_triggers_when_price_falls_to_stop(portfolio_with_position, sap, actor):
    order = place(
        portfolio_with_position, sap, actor, side="sell", order_type="stop", quantity=D("10"), stop_price=D("180")
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN

    assert resting_orders_execute(instrument=sap, price=D("181")) == []
    resting_orders_execute(instrument=sap, price=D("179"))

    order.refresh_from_db()
    assert (order.status, order.average_fill_price) == (OrderStatus.FILLED, D("179"))
    assert not Position.objects.exists()


def test_stop_buy_that_can_no_longer_be_paid_fails_with_event(
    portfolio, sap, actor, published, django_capture_on_commit_callbacks
):
    # given a stop buy of 40 SAP at 210 (8 400 EUR reserved) and cash later reduced by hand
    order = place(portfolio, sap, actor, order_type="stop", quantity=D("40"), stop_price=D("210"))
    Portfolio.objects.filter(pk=portfolio.pk).update(cash=D("5000.00"))

    # when the price jumps through the stop
    with django_capture_on_commit_callbacks(execute=True):
        executed = resting_orders_execute(instrument=sap, price=D("215"))

    # then the order fails with the reason and nothing is booked
    assert [o.pk for o in executed] == [order.pk]
    order.refresh_from_db()
    assert (order.status, order.reason_code) == (OrderStatus.FAILED, "insufficient_cash")
    assert not Fill.objects.exists() and not Position.objects.exists()
    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("5000.00")
    assert [f["error_code"] for f in published.data("trading.order_failed")] == ["insufficient_cash"]


def test_capped_fills_make_an_order_partially_filled_then_filled(
    portfolio, sap, actor, settings, published, django_capture_on_commit_callbacks
):
    # given at most 4 units fill per tick
    settings.TRADING = {**settings.TRADING, "MAX_FILL_PER_TICK": D("4")}
    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("190"))

    with django_capture_on_commit_callbacks(execute=True):
        resting_orders_execute(instrument=sap, price=D("190"))
        order.refresh_from_db()
        assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, D("4"))
        resting_orders_execute(instrument=sap, price=D("189"))
        resting_orders_execute(instrument=sap, price=D("188"))

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, D("10"))
    assert [f.quantity for f in order.fills.all()] == [D("4"), D("4"), D("2")]
    assert order.average_fill_price == D("189.2")  # (4*190 + 4*189 + 2*188) / 10
    events = published.data("trading.order_filled")
    assert [(e["filled_quantity"], e["status"]) for e in events] == [
        (D("4"), "partially_filled"),
        (D("8"), "partially_filled"),
        (D("10"), "filled"),
    ]
    assert Position.objects.get().quantity == D("10")


def test_tick_price_given_as_float_or_with_extra_places_fills_at_the_stored_precision(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("190"))

    resting_orders_execute(instrument=sap, price=189.9)

    order.refresh_from_db()
    assert order.fills.get().price == D("189.9")


@pytest.mark.parametrize("price", [D("0"), D("-1"), D("NaN")])
def test_tick_with_impossible_price_is_refused_and_fills_nothing(portfolio, sap, actor, price):
    place(portfolio, sap, actor, order_type="limit", price=D("190"))

    with pytest.raises(ValueError):
        resting_orders_execute(instrument=sap, price=price)
    assert not Fill.objects.exists()
