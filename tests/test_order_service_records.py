"""What the order services write and weigh: audit rows, client order ids, reservations of one portfolio and side."""

from decimal import Decimal

import pytest

from core.actor import Actor
from core.exceptions import ValidationFailed
from portfolio.models import Portfolio, Position
from portfolio.services import portfolio_create
from trading.models import Order, OrderAudit, OrderStatus
from trading.services import (
    OrderConflict,
    OrderRejected,
    order_cancel,
    order_modify,
    order_place,
    price_validate,
    quantity_validate,
)

from tests.fixtures.trading import place

pytestmark = pytest.mark.django_db

D = Decimal


def cash_to(portfolio, amount: str) -> None:
    Portfolio.objects.filter(pk=portfolio.pk).update(cash=D(amount))


def test_an_actor_without_client_correlation_or_address_is_audited_with_empty_fields_and_its_channel(
    portfolio, sap, trader
):
    bare = Actor(user=trader, channel="rest")

    order = place(portfolio, sap, bare, order_type="limit", price=D("150"))
    order_cancel(order_id=order.pk, actor=bare)

    rows = list(
        OrderAudit.objects.filter(order=order).values_list(
            "action", "client_id", "correlation_id", "remote_addr", "channel"
        )
    )
    assert rows == [("place", "", "", "", "rest"), ("cancel", "", "", "", "rest")]
    order.refresh_from_db()
    assert (order.client_id, order.correlation_id, order.remote_addr) == ("", "", "")


def test_a_system_order_with_a_client_order_id_is_not_a_repeat_of_a_users_order_with_that_id(portfolio, sap, actor):
    users = place(portfolio, sap, actor, order_type="limit", price=D("150"), client_order_id="batch-1")

    system = place(portfolio, sap, Actor.system(), order_type="limit", price=D("150"), client_order_id="batch-1")

    assert system.pk != users.pk and system.placed_by is None
    # and the system's own id is its own: repeated, it names the system's order
    assert (
        place(portfolio, sap, Actor.system(), order_type="limit", price=D("150"), client_order_id="batch-1").pk
        == system.pk
    )


@pytest.mark.parametrize("who", ["user", "system"])
def test_a_repeated_client_order_id_names_its_own_order_among_the_placers_others(portfolio, sap, actor, who):
    placer = actor if who == "user" else Actor.system()
    place(portfolio, sap, placer, order_type="limit", price=D("120"), client_order_id="first")
    second = place(portfolio, sap, placer, order_type="limit", price=D("150"), client_order_id="second")
    place(portfolio, sap, placer, order_type="limit", price=D("130"))

    repeat = place(portfolio, sap, placer, order_type="limit", price=D("150"), client_order_id="second")

    assert repeat.pk == second.pk
    with pytest.raises(OrderConflict) as conflict:
        place(portfolio, sap, placer, order_type="limit", price=D("151"), client_order_id="second")
    assert conflict.value.details == {"order_id": str(second.pk)}


def test_resting_buys_of_another_portfolio_reserve_none_of_this_ones_cash(portfolio, sap, actor, trader):
    other = portfolio_create(name="Zweit", cash=D("10000.00"), members=[trader])
    place(other, sap, actor, order_type="limit", quantity=D("50"), price=D("150"))  # 7 500 + fee, there
    cash_to(portfolio, "1001.00")

    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("100"))

    assert order.status == OrderStatus.OPEN


def test_a_resting_sell_reserves_no_cash_and_a_resting_buy_no_holdings(portfolio_with_position, sap, actor):
    portfolio = portfolio_with_position
    cash_to(portfolio, "1001.00")
    place(portfolio, sap, actor, side="sell", order_type="limit", quantity=D("5"), price=D("900"))

    buy = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("100"))
    sell = place(portfolio, sap, actor, side="sell", order_type="limit", quantity=D("5"), price=D("900"))

    assert (buy.status, sell.status) == (OrderStatus.OPEN, OrderStatus.OPEN)


def test_a_modified_partially_filled_buy_needs_cash_for_what_is_left_of_it(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("100"))
    Order.objects.filter(pk=order.pk).update(filled_quantity=D("6"), status=OrderStatus.PARTIALLY_FILLED)
    cash_to(portfolio, "500.00")

    with pytest.raises(OrderRejected) as refused:
        order_modify(order_id=order.pk, actor=actor, quantity=D("11"))

    # 11 - 6 = 5 left at 100 is 500, and the fee (at least 1 EUR) on top
    assert (refused.value.code, refused.value.details["params"]) == (
        "insufficient_cash",
        {"symbol": "SAP", "quantity": D("5"), "needed": D("501.00"), "available": D("500.00")},
    )
    assert order_modify(order_id=order.pk, actor=actor, quantity=D("10.99")).quantity == D("10.99")


@pytest.mark.parametrize("service", ["cancel", "modify"])
def test_a_cancelled_or_modified_order_comes_back_with_its_portfolio_as_locked(portfolio, sap, actor, service):
    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("150"))
    cash_to(portfolio, "9000.00")  # the order's own object still has 10 000

    if service == "cancel":
        answer = order_cancel(order_id=order.pk, actor=actor)
    else:
        answer = order_modify(order_id=order.pk, actor=actor, quantity=D("11"))

    assert (answer.portfolio_id, answer.portfolio.cash) == (portfolio.pk, D("9000.00"))


@pytest.mark.parametrize(
    ("check", "arguments"),
    [(price_validate, {"price": D("0.00001"), "field": "stop_price"}), (quantity_validate, {"quantity": D("0.00001")})],
)
def test_a_number_its_column_cannot_store_is_refused_naming_its_field(check, arguments):
    field = arguments.get("field", "quantity")

    with pytest.raises(ValidationFailed) as refused:
        check(**arguments)

    assert (refused.value.code, refused.value.message, refused.value.details["field"]) == (
        "validation_error",
        f"'{field}' has more than 4 decimal places.",
        field,
    )


def test_an_order_placed_without_a_portfolio_goes_to_the_users_first(portfolio, sap, actor, trader):
    portfolio_create(name="Zweit", cash=D("10000.00"), members=[trader])

    order = order_place(symbol="sap", side="buy", order_type="limit", quantity=D("1"), price=D("150"), actor=actor)

    assert (order.portfolio_id, order.instrument.symbol) == (portfolio.pk, "SAP")
    assert not Position.objects.exists()


def test_a_refusal_names_its_figures_on_the_error_and_the_rejected_order(portfolio, sap, unpriced_instrument, actor):
    with pytest.raises(OrderRejected) as unpriced:
        place(portfolio, unpriced_instrument, actor, quantity=D("1"))
    with pytest.raises(OrderRejected) as unheld:
        place(portfolio, sap, actor, side="sell", order_type="limit", quantity=D("3"), price=D("900"))

    assert (unpriced.value.code, unpriced.value.details["params"]) == ("no_market_price", {"symbol": "NEW"})
    assert (unheld.value.code, unheld.value.details["params"]) == (
        "insufficient_position",
        {"symbol": "SAP", "quantity": D("3"), "available": D("0")},
    )
    rejected = Order.objects.get(pk=unheld.value.details["order_id"])
    assert (rejected.status, rejected.reason_code, sorted(rejected.reason_params)) == (
        OrderStatus.REJECTED,
        "insufficient_position",
        ["available", "quantity", "symbol"],
    )


def test_an_order_in_a_portfolio_holding_other_instruments_is_for_the_one_it_names(portfolio, sap, siemens, actor):
    Position.objects.create(portfolio=portfolio, instrument=siemens, quantity=D("5"), avg_cost=D("100"))

    order = place(portfolio, sap, actor, order_type="limit", quantity=D("1"), price=D("150"))
    sell = place(portfolio, siemens, actor, side="sell", order_type="limit", quantity=D("5"), price=D("900"))

    assert (order.instrument.symbol, sell.instrument.symbol) == ("SAP", siemens.symbol)
    assert list(Order.objects.order_by("pk").values_list("instrument__symbol", flat=True)) == ["SAP", siemens.symbol]
