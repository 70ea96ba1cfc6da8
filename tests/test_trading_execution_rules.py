"""Execution rules beyond the crossing table: which price field an order type reads, fill sizes, failures."""

from decimal import Decimal

import pytest

from portfolio.book import portfolio_lock
from tests.fixtures.trading import place
from trading.execution import crossed_orders_filter, order_crossed_by, order_execute_if_crossed, order_fail
from trading.models import Fill, Order, OrderStatus

pytestmark = pytest.mark.django_db

D = Decimal
TICK = D("200.00")

# An order of one type that also carries the other type's price field (the table allows it), set
# where that field alone would cross the tick at 200: the type decides which field counts.
STRAY_FIELDS = [
    ("stop", "buy", {"stop_price": D("210"), "price": D("250")}),
    ("stop", "sell", {"stop_price": D("190"), "price": D("150")}),
    ("limit", "buy", {"price": D("190"), "stop_price": D("150")}),
    ("limit", "sell", {"price": D("210"), "stop_price": D("250")}),
]


@pytest.mark.parametrize(("order_type", "side", "prices"), STRAY_FIELDS)
def test_an_order_is_crossed_by_its_own_types_price_field_only(portfolio, sap, order_type, side, prices):
    order = Order.objects.create(
        portfolio=portfolio,
        instrument=sap,
        side=side,
        order_type=order_type,
        quantity=D("1"),
        status=OrderStatus.OPEN,
        **prices,
    )

    picked = Order.objects.filter(pk=order.pk).filter(crossed_orders_filter(price=TICK)).exists()

    assert (picked, order_crossed_by(order=order, price=TICK)) == (False, False)


def test_a_market_order_fills_whole_even_where_resting_fills_are_capped(portfolio, sap, actor, settings):
    settings.TRADING = {**settings.TRADING, "MAX_FILL_PER_TICK": D("4")}

    order = place(portfolio, sap, actor, quantity=D("10"))

    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, D("10"))
    assert [fill.quantity for fill in order.fills.all()] == [D("10")]


def test_nothing_is_left_to_fill_of_an_order_whose_quantity_is_filled(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    book = portfolio_lock(portfolio_id=portfolio.pk)
    order.filled_quantity = order.quantity  # filled, as a concurrent tick may have left it

    assert order_execute_if_crossed(order=order, book=book, price=D("140")) is None
    assert not Fill.objects.exists()


def test_a_failed_order_keeps_the_first_500_characters_and_goes_to_the_members_with_its_correlation(
    portfolio, sap, actor, published, django_capture_on_commit_callbacks
):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    Order.objects.filter(pk=order.pk).update(client_order_id="set-elsewhere")
    book = portfolio_lock(portfolio_id=portfolio.pk)
    reason = "x" * 499 + "yz"

    with django_capture_on_commit_callbacks(execute=True):
        order_fail(order=order, book=book, code="broker_down", reason=reason, correlation_id="corr-9")

    order.refresh_from_db()
    assert (order.status, order.reason_code, order.reason) == (OrderStatus.FAILED, "broker_down", "x" * 499 + "y")
    # only the failure's fields are written: a change made meanwhile to another field stays
    assert order.client_order_id == "set-elsewhere"
    assert published.audiences("trading.order_failed") == [[actor.user.pk]]
    assert [frame["correlation_id"] for frame in published.frames("trading.order_failed")] == ["corr-9"]
