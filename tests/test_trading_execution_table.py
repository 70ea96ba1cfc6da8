"""Execution rules as a table: every order type and side against a price below, at and above its trigger.

The rule lives twice, in Python (`order_crossed_by`, checked when an order is placed or modified)
and in SQL (`crossed_orders_filter`, which picks the resting orders a tick may fill). Both are
checked here against the same table and against each other, and each row is executed for real.
"""

from decimal import Decimal

import pytest

from portfolio.models import Position
from trading.execution import crossed_orders_filter, order_crossed_by, resting_orders_execute
from trading.models import Order, OrderStatus
from trading.services import order_modify, order_place

pytestmark = pytest.mark.django_db

D = Decimal
TRIGGER = D("200.00")
STEP = D("0.01")

# (order type, side, price relative to the trigger, crossed?)
RULES = [
    ("limit", "buy", "below", True),
    ("limit", "buy", "at", True),
    ("limit", "buy", "above", False),
    ("limit", "sell", "below", False),
    ("limit", "sell", "at", True),
    ("limit", "sell", "above", True),
    ("stop", "buy", "below", False),
    ("stop", "buy", "at", True),
    ("stop", "buy", "above", True),
    ("stop", "sell", "below", True),
    ("stop", "sell", "at", True),
    ("stop", "sell", "above", False),
]
OFFSET = {"below": -STEP, "at": D("0"), "above": STEP}
QUANTITY = D("5")


def rest(portfolio, instrument, actor, *, order_type, side, trigger=TRIGGER, quantity=QUANTITY):
    """Place a resting order while the last price is far from `trigger` on the side that does not cross it."""
    crossing_away = {("limit", "buy"): 1, ("limit", "sell"): -1, ("stop", "buy"): -1, ("stop", "sell"): 1}
    instrument.last_price = trigger + crossing_away[(order_type, side)] * D("50")
    instrument.save(update_fields=["last_price"])
    price_field = "price" if order_type == "limit" else "stop_price"
    order = order_place(
        portfolio_id=portfolio.pk,
        symbol=instrument.symbol,
        side=side,
        order_type=order_type,
        quantity=quantity,
        actor=actor,
        **{price_field: trigger},
    )
    assert order.status == OrderStatus.OPEN
    return order


@pytest.mark.parametrize(("order_type", "side", "where", "crossed"), RULES)
def test_python_and_sql_crossing_rules_agree_with_the_table(
    portfolio_with_position, sap, actor, order_type, side, where, crossed
):
    # given a resting order with its trigger at 200.00
    order = rest(portfolio_with_position, sap, actor, order_type=order_type, side=side)
    price = TRIGGER + OFFSET[where]

    # then the Python rule, the SQL rule and the table say the same
    assert order_crossed_by(order=order, price=price) is crossed
    in_sql = Order.objects.filter(pk=order.pk).filter(crossed_orders_filter(price=price)).exists()
    assert in_sql is crossed


@pytest.mark.parametrize(("order_type", "side", "where", "crossed"), RULES)
def test_a_tick_executes_a_resting_order_exactly_when_the_table_says(
    portfolio_with_position, sap, actor, order_type, side, where, crossed
):
    # given a resting order for 5 units with its trigger at 200.00
    order = rest(portfolio_with_position, sap, actor, order_type=order_type, side=side)
    price = TRIGGER + OFFSET[where]

    # when a trade at the price comes in
    touched = resting_orders_execute(instrument=sap, price=price)

    # then it fills completely at that price, or nothing happens to it
    order.refresh_from_db()
    if crossed:
        assert [o.pk for o in touched] == [order.pk]
        assert (order.status, order.filled_quantity, order.average_fill_price) == (OrderStatus.FILLED, D("5"), price)
        assert order.fills.get().price == price
    else:
        assert touched == []
        assert (order.status, order.filled_quantity, order.fills.count()) == (OrderStatus.OPEN, D("0"), 0)


def test_a_stop_buy_fills_at_the_stop_and_books_the_position(portfolio, sap, actor):
    # given no SAP held and a stop buy for 3 at 200.00 while SAP trades at 150
    order = rest(portfolio, sap, actor, order_type="stop", side="buy", quantity=D("3"))

    # when SAP trades exactly at the stop
    resting_orders_execute(instrument=sap, price=TRIGGER)

    # then the order is filled at 200.00 and the position holds the 3 units
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.average_fill_price) == (OrderStatus.FILLED, D("3"), TRIGGER)
    assert Position.objects.get(portfolio=portfolio, instrument=sap).quantity == D("3")


def test_one_tick_executes_every_order_it_crosses_and_no_other(portfolio_with_position, sap, actor):
    # given a limit buy at 200, a stop sell at 205, a limit buy at 190 and a stop buy at 210
    sap.last_price = D("250")
    sap.save(update_fields=["last_price"])
    crossed = [
        order_place(
            portfolio_id=portfolio_with_position.pk,
            symbol="SAP",
            side="buy",
            order_type="limit",
            quantity=D("1"),
            price=D("200"),
            actor=actor,
        )
    ]
    sap.last_price = D("240")
    sap.save(update_fields=["last_price"])
    crossed.append(
        order_place(
            portfolio_id=portfolio_with_position.pk,
            symbol="SAP",
            side="sell",
            order_type="stop",
            quantity=D("1"),
            stop_price=D("205"),
            actor=actor,
        )
    )
    untouched = [
        order_place(
            portfolio_id=portfolio_with_position.pk,
            symbol="SAP",
            side="buy",
            order_type="limit",
            quantity=D("1"),
            price=D("190"),
            actor=actor,
        )
    ]
    sap.last_price = D("150")
    sap.save(update_fields=["last_price"])
    untouched.append(
        order_place(
            portfolio_id=portfolio_with_position.pk,
            symbol="SAP",
            side="buy",
            order_type="stop",
            quantity=D("1"),
            stop_price=D("210"),
            actor=actor,
        )
    )

    # when one trade at 200 comes in
    touched = resting_orders_execute(instrument=sap, price=D("200"))

    # then exactly the two orders it crosses are filled, in the order they were placed
    assert [o.pk for o in touched] == [o.pk for o in crossed]
    assert {o.pk: o.status for o in Order.objects.filter(pk__in=[o.pk for o in crossed + untouched])} == {
        crossed[0].pk: OrderStatus.FILLED,
        crossed[1].pk: OrderStatus.FILLED,
        untouched[0].pk: OrderStatus.OPEN,
        untouched[1].pk: OrderStatus.OPEN,
    }


def test_a_modified_stop_triggers_at_its_new_stop_price_and_not_at_the_old_one(portfolio_with_position, sap, actor):
    # given a stop sell at 200 while SAP trades at 250
    order = rest(portfolio_with_position, sap, actor, order_type="stop", side="sell")

    # when its stop is moved down to 180
    order_modify(order_id=order.pk, actor=actor, price=D("180"))
    order.refresh_from_db()
    assert (order.stop_price, order.status) == (D("180"), OrderStatus.OPEN)

    # then a trade at the old stop leaves it resting, and one at the new stop fills it there
    assert resting_orders_execute(instrument=sap, price=D("200")) == []
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    resting_orders_execute(instrument=sap, price=D("180"))
    order.refresh_from_db()
    assert (order.status, order.average_fill_price) == (OrderStatus.FILLED, D("180"))


def test_modifying_a_stop_to_a_price_the_market_already_crossed_fills_it_at_once(portfolio_with_position, sap, actor):
    # given a stop sell at 200 while SAP trades at 250
    order = rest(portfolio_with_position, sap, actor, order_type="stop", side="sell")

    # when its stop is raised to exactly the last price
    order = order_modify(order_id=order.pk, actor=actor, price=D("250"))

    # then it is crossed at the last price and fills there
    assert (order.status, order.average_fill_price) == (OrderStatus.FILLED, D("250"))
