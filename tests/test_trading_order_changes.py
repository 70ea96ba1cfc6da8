"""Cancelling and modifying an order with the paper broker, on the real database, and repeating either under a request id."""

from decimal import Decimal

import pytest

from core.actor import Actor
from core.exceptions import NotFound, ValidationFailed
from tests.fixtures.trading import place
from trading.execution import resting_orders_execute
from trading.models import Order, OrderStatus
from trading.services import OrderConflict, OrderRejected, order_cancel, order_modify

pytestmark = pytest.mark.django_db

D = Decimal


def test_cancel_resting_order_announces_remaining_quantity(
    portfolio, sap, actor, published, django_capture_on_commit_callbacks
):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=order.pk, actor=actor)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and order.cancelled_at is not None
    assert order.audit.filter(action="cancel", client_id="client-a").exists()
    cancelled = published.data("trading.order_cancelled")
    assert [(c["order_id"], c["remaining_quantity"]) for c in cancelled] == [(str(order.pk), D("10"))]
    # a cancelled order no longer fills
    assert resting_orders_execute(instrument=sap, price=D("100")) == []


def test_a_cancel_takes_at_most_7_queries_and_answers_with_its_instrument(
    portfolio, sap, actor, django_assert_max_num_queries, django_assert_num_queries, django_capture_on_commit_callbacks
):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    # the savepoint (2), the order's portfolio, the portfolio lock with its members, the order
    # locked with its instrument, its update and its audit row
    with django_assert_max_num_queries(7), django_capture_on_commit_callbacks(execute=True):
        answer = order_cancel(order_id=order.pk, actor=actor)

    with django_assert_num_queries(0):
        assert (answer.status, answer.instrument.symbol) == (OrderStatus.CANCELLED, "SAP")


def test_cancelling_a_filled_order_is_refused(portfolio, sap, actor):
    order = place(portfolio, sap, actor)

    with pytest.raises(OrderConflict) as refused:
        order_cancel(order_id=order.pk, actor=actor)
    assert refused.value.code == "order_not_cancellable"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FILLED


def test_cancelling_an_unknown_order_is_not_found(portfolio, actor):
    with pytest.raises(NotFound):
        order_cancel(order_id=999999, actor=actor)


def test_modify_changes_quantity_and_limit_and_is_audited(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    order_modify(order_id=order.pk, actor=actor, quantity=D("12"), price=D("160"))

    order.refresh_from_db()
    assert (order.quantity, order.price, order.status) == (D("12"), D("160"), OrderStatus.OPEN)
    audit = order.audit.get(action="modify")
    assert audit.details["before"]["quantity"] == "10.0000" and audit.details["after"]["price"] == "160"


def test_modify_to_a_crossed_limit_fills_at_once(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    order_modify(order_id=order.pk, actor=actor, price=D("201"))

    order.refresh_from_db()
    assert (order.status, order.average_fill_price) == (OrderStatus.FILLED, D("200"))


def test_modify_beyond_cash_is_rejected_and_leaves_order_unchanged(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    with pytest.raises(OrderRejected) as refused:
        order_modify(order_id=order.pk, actor=actor, quantity=D("100"))

    assert refused.value.code == "insufficient_cash"
    order.refresh_from_db()
    assert order.quantity == D("10")
    assert not order.audit.filter(action="modify").exists()


@pytest.mark.parametrize(
    ("changes", "code"),
    [({}, "nothing_to_modify"), ({"quantity": D("0")}, "invalid_quantity"), ({"price": D("-3")}, "invalid_price")],
)
def test_invalid_modification_is_refused(portfolio, sap, actor, changes, code):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    with pytest.raises(ValidationFailed) as refused:
        order_modify(order_id=order.pk, actor=actor, **changes)
    assert refused.value.code == code
    order.refresh_from_db()
    assert (order.quantity, order.price) == (D("10"), D("150"))


def test_modifying_a_filled_order_is_refused(portfolio, sap, actor):
    order = place(portfolio, sap, actor)

    with pytest.raises(OrderConflict):
        order_modify(order_id=order.pk, actor=actor, quantity=D("5"))


# Request ids: a cancel or modify repeated under the same request_id applies once


def test_cancel_repeated_with_its_request_id_succeeds_with_the_order_and_announces_once(
    portfolio, sap, actor, published, django_capture_on_commit_callbacks
):
    # given a resting order cancelled under request id "c-1"
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    with django_capture_on_commit_callbacks(execute=True):
        first = order_cancel(order_id=order.pk, actor=actor, request_id="c-1")

    # when the same cancel comes again (its answer was lost)
    with django_capture_on_commit_callbacks(execute=True):
        repeat = order_cancel(order_id=order.pk, actor=actor, request_id="c-1")

    # then it succeeds with the cancelled order, and nothing was cancelled, audited or announced twice
    assert repeat.pk == first.pk and repeat.status == OrderStatus.CANCELLED
    assert order.audit.filter(action="cancel").count() == 1
    assert order.audit.get(action="cancel").details["request_id"] == "c-1"
    assert len(published.data("trading.order_cancelled")) == 1


def test_cancel_of_a_cancelled_order_under_a_new_request_id_is_still_refused(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    order_cancel(order_id=order.pk, actor=actor, request_id="c-1")

    with pytest.raises(OrderConflict) as refused:
        order_cancel(order_id=order.pk, actor=actor, request_id="c-2")
    assert refused.value.code == "order_not_cancellable"


def test_modify_repeated_with_its_request_id_applies_once(portfolio, sap, actor):
    # given a resting order whose quantity was raised under request id "m-1"
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    order_modify(order_id=order.pk, actor=actor, quantity=D("12"), request_id="m-1")
    order_modify(order_id=order.pk, actor=actor, quantity=D("11"))

    # when "m-1" comes again, spelled differently but the same number
    repeat = order_modify(order_id=order.pk, actor=actor, quantity=D("12.000"), request_id="m-1")

    # then it answers with the order as it is and does not set the quantity back to 12
    assert repeat.pk == order.pk and repeat.quantity == D("11")
    assert order.audit.filter(action="modify").count() == 2


@pytest.mark.parametrize(
    ("second", "what"),
    [
        ({"action": "modify", "quantity": D("13")}, "other values"),
        ({"action": "modify", "price": D("12")}, "other field"),
        ({"action": "cancel"}, "other action"),
        ({"action": "modify", "quantity": D("12"), "other_order": True}, "other order"),
    ],
)
def test_request_id_reused_for_a_different_request_is_a_conflict_and_changes_nothing(
    portfolio, sap, actor, second, what
):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    other = place(portfolio, sap, actor, order_type="limit", price=D("140"))
    order_modify(order_id=order.pk, actor=actor, quantity=D("12"), request_id="r-1")
    second = dict(second)  # the parameter is shared by every run of this test in the process
    target = other if second.pop("other_order", False) else order
    before = [(o.quantity, o.price, o.status) for o in Order.objects.filter(pk__in=[order.pk, other.pk]).order_by("pk")]

    with pytest.raises(OrderConflict) as refused:
        if second.pop("action") == "cancel":
            order_cancel(order_id=target.pk, actor=actor, request_id="r-1")
        else:
            order_modify(order_id=target.pk, actor=actor, request_id="r-1", **second)

    assert refused.value.code == "request_id_conflict", what
    after = [(o.quantity, o.price, o.status) for o in Order.objects.filter(pk__in=[order.pk, other.pk]).order_by("pk")]
    assert after == before


def test_the_same_request_id_of_two_users_names_two_requests(portfolio, sap, actor, other_trader):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    second = place(portfolio, sap, actor, order_type="limit", price=D("140"))
    portfolio.members.add(other_trader)
    other = Actor(user=other_trader, client_id="client-b")

    order_cancel(order_id=order.pk, actor=actor, request_id="same")
    order_cancel(order_id=second.pk, actor=other, request_id="same")

    assert Order.objects.filter(status=OrderStatus.CANCELLED).count() == 2


def test_a_refused_modify_records_no_request_so_its_retry_is_judged_afresh(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    with pytest.raises(OrderRejected):
        order_modify(order_id=order.pk, actor=actor, quantity=D("100"), request_id="m-big")
    with pytest.raises(OrderRejected):
        order_modify(order_id=order.pk, actor=actor, quantity=D("100"), request_id="m-big")

    order.refresh_from_db()
    assert order.quantity == D("10") and not order.requests.exists()


@pytest.mark.parametrize("request_id", ["", "has space", "x" * 65, "ümlaut", "semi;colon"])
def test_invalid_request_id_is_refused_and_changes_nothing(portfolio, sap, actor, request_id):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    for call in (
        lambda: order_cancel(order_id=order.pk, actor=actor, request_id=request_id),
        lambda: order_modify(order_id=order.pk, actor=actor, quantity=D("12"), request_id=request_id),
    ):
        with pytest.raises(ValidationFailed) as refused:
            call()
        assert (refused.value.code, refused.value.details["field"]) == ("invalid_request_id", "request_id")
    order.refresh_from_db()
    assert (order.status, order.quantity) == (OrderStatus.OPEN, D("10"))


def test_request_id_without_a_user_is_refused(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    with pytest.raises(ValidationFailed) as refused:
        order_cancel(order_id=order.pk, actor=Actor(user=None, channel="system"), request_id="c-1")
    assert refused.value.code == "invalid_request_id"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN


def test_a_modified_buy_counts_the_cash_the_other_resting_buys_reserve_but_not_its_own(portfolio, sap, actor):
    # given 10 000 EUR and two resting buys below the market: 30 at 190 (5705.70 with its fee)
    # and 10 at 150 (1501.50)
    place(portfolio, sap, actor, order_type="limit", quantity=D("30"), price=D("190"))
    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("150"))

    # when the second asks for 29 at 150 (4354.35), more than the 4294.30 the first leaves
    with pytest.raises(OrderRejected) as refused:
        order_modify(order_id=order.pk, actor=actor, quantity=D("29"))

    # then it is refused; 28 (4204.20) fits, as its own earlier reservation is no longer counted
    assert refused.value.code == "insufficient_cash"
    assert order_modify(order_id=order.pk, actor=actor, quantity=D("28")).quantity == D("28")


def test_a_modified_sell_counts_the_units_the_other_resting_sells_offer_but_not_its_own(
    portfolio_with_position, sap, actor
):
    # given 10 SAP held and two resting sells above the market: 6 and 2 at 300
    place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("6"), price=D("300"))
    order = place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("2"), price=D("300"))

    # when the second asks to sell 5, more than the 4 the first leaves
    with pytest.raises(OrderRejected) as refused:
        order_modify(order_id=order.pk, actor=actor, quantity=D("5"))

    # then it is refused; 4 fits, as its own 2 are no longer counted
    assert refused.value.code == "insufficient_position"
    assert order_modify(order_id=order.pk, actor=actor, quantity=D("4")).quantity == D("4")
