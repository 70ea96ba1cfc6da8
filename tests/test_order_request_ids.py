"""Request ids of cancels and modifies: how a bad one is refused, what a request records, how a twin is answered."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from core.actor import Actor
from core.exceptions import ValidationFailed
from trading import services
from trading.models import Order, OrderRequest, OrderStatus
from trading.requests import request_once
from trading.services import OrderConflict, order_cancel, order_modify

from tests.fixtures.trading import place

pytestmark = pytest.mark.django_db

D = Decimal


def refused(call) -> tuple[str, str, dict]:
    with pytest.raises(ValidationFailed) as error:
        call()
    return error.value.code, error.value.message, error.value.details


@pytest.mark.parametrize("action", ["cancel", "modify"])
def test_a_malformed_request_id_is_refused_saying_what_one_looks_like(portfolio, sap, actor, action):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    arguments = {"quantity": D("12")} if action == "modify" else {}
    service = order_modify if action == "modify" else order_cancel

    assert refused(lambda: service(order_id=order.pk, actor=actor, request_id="no spaces", **arguments)) == (
        "invalid_request_id",
        "'request_id' is 1 to 64 letters, digits or the characters _ . : -",
        {"field": "request_id"},
    )


@pytest.mark.parametrize("action", ["cancel", "modify"])
def test_a_request_id_without_a_user_is_refused_saying_it_needs_one(portfolio, sap, actor, action):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    arguments = {"quantity": D("12")} if action == "modify" else {}
    service = order_modify if action == "modify" else order_cancel
    system = Actor(user=None, channel="system")

    assert refused(lambda: service(order_id=order.pk, actor=system, request_id="r-1", **arguments)) == (
        "invalid_request_id",
        "'request_id' needs a signed-in user.",
        {"field": "request_id"},
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN


def test_a_modify_records_its_numbers_in_one_plain_spelling(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    order_modify(order_id=order.pk, actor=actor, quantity=D("20.0"), price=D("1E+2"), request_id="m-1")

    request = OrderRequest.objects.get(request_id="m-1")
    assert (request.action, request.order_id, request.params) == (
        "modify",
        order.pk,
        {"quantity": "20", "price": "100"},
    )
    # the same numbers spelled otherwise are the same request
    assert (
        order_modify(order_id=order.pk, actor=actor, quantity=D("2E+1"), price=D("100.00"), request_id="m-1").pk
        == order.pk
    )


def test_a_modify_with_a_number_that_is_no_decimal_is_refused_as_a_validation_error(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    for arguments in ({"quantity": 12}, {"price": 140}):
        code, message, details = refused(
            lambda arguments=arguments: order_modify(order_id=order.pk, actor=actor, request_id="m-1", **arguments)
        )
        field = next(iter(arguments))
        assert (code, message, details) == ("validation_error", f"'{field}' must be a number.", {"field": field})
    assert not OrderRequest.objects.exists()


# The twin that lost the race: two requests under one id were both past the look-up for the id
# when the first committed, so the second fails to record the id on the unique constraint. What
# its transaction does last is that insert; `losing_twin` is that insert, against the real table.


def losing_twin(*, actor, request_id, action, order, params):
    def write():
        with transaction.atomic():
            OrderRequest.objects.create(
                user=actor.user, request_id=request_id, action=action, order=order, params=params
            )
        raise AssertionError("the insert should have failed on the unique request id")

    return write


@pytest.fixture
def cancelled_under_twin_id(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    order_cancel(order_id=order.pk, actor=actor, request_id="twin-1")  # the twin that won
    return order


def test_a_twin_that_lost_the_race_for_its_request_id_is_answered_with_the_order_as_it_is_now(
    cancelled_under_twin_id, actor, django_assert_num_queries
):
    order = cancelled_under_twin_id
    write = losing_twin(actor=actor, request_id="twin-1", action="cancel", order=order, params={})

    answer = request_once(write, actor=actor, request_id="twin-1", action="cancel", order_id=order.pk, params={})

    assert (answer.pk, answer.status, answer.reason) == (order.pk, OrderStatus.CANCELLED, "cancelled by user")
    with django_assert_num_queries(0):  # the answer comes with its instrument, as every service's does
        assert answer.instrument.symbol == "SAP"
    assert OrderRequest.objects.filter(request_id="twin-1").count() == 1


def test_a_cancel_that_lost_the_race_for_its_request_id_is_answered_with_the_order(
    cancelled_under_twin_id, actor, monkeypatch
):
    order = cancelled_under_twin_id
    # the cancel's transaction as the losing twin runs it: all it gets to is its request's insert
    twin = losing_twin(actor=actor, request_id="twin-1", action="cancel", order=order, params={})
    monkeypatch.setattr(services, "_order_cancel", lambda **arguments: twin())

    answer = order_cancel(order_id=order.pk, actor=actor, request_id="twin-1")

    assert (answer.pk, answer.status, answer.reason) == (order.pk, OrderStatus.CANCELLED, "cancelled by user")
    assert OrderRequest.objects.filter(request_id="twin-1").count() == 1


@pytest.mark.parametrize(
    ("action", "params", "other_order"),
    [("modify", {}, False), ("cancel", {"quantity": "12", "price": None}, False), ("cancel", {}, True)],
)
def test_a_twin_whose_id_names_another_request_is_a_conflict(
    cancelled_under_twin_id, portfolio, sap, actor, action, params, other_order
):
    order = cancelled_under_twin_id
    target = place(portfolio, sap, actor, order_type="limit", price=D("140")) if other_order else order
    write = losing_twin(actor=actor, request_id="twin-1", action=action, order=target, params=params)

    with pytest.raises(OrderConflict) as conflict:
        request_once(write, actor=actor, request_id="twin-1", action=action, order_id=target.pk, params=params)

    assert (conflict.value.code, conflict.value.message, conflict.value.details) == (
        "request_id_conflict",
        f"request_id 'twin-1' already names a cancel of order {order.pk} with other parameters.",
        {"order_id": str(order.pk)},
    )


def test_an_integrity_error_that_is_no_twins_is_raised(cancelled_under_twin_id, actor, other_trader):
    order = cancelled_under_twin_id
    other = Actor(user=other_trader)
    # other_trader never used "twin-1": the failed insert below is not theirs to answer as a repeat
    write = losing_twin(actor=actor, request_id="twin-1", action="cancel", order=order, params={})

    with pytest.raises(IntegrityError):
        request_once(write, actor=other, request_id="twin-1", action="cancel", order_id=order.pk, params={})
    with pytest.raises(IntegrityError):  # a request without an id has no twin
        request_once(write, actor=actor, request_id=None, action="cancel", order_id=order.pk, params={})
