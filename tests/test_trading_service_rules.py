"""The order services' rules one by one: which parameters an order takes, its bounds, what it may cost or sell."""

from decimal import Decimal

import pytest

from core.actor import Actor
from core.exceptions import NotFound, ValidationFailed
from portfolio.models import Portfolio, Position
from tests.fixtures.trading import place
from trading.models import Order
from trading.services import OrderConflict, OrderRejected, order_cancel, order_modify
from trading.validation import OrderParams, order_params_validate, price_validate, quantity_validate

D = Decimal
LIMIT = D("1000000")


def refusal(function, **arguments) -> tuple[str, str, dict]:
    with pytest.raises(ValidationFailed) as refused:
        function(**arguments)
    return refused.value.code, refused.value.message, refused.value.details


@pytest.fixture
def bounds(settings):
    settings.TRADING = {**settings.TRADING, "MAX_ORDER_QUANTITY": LIMIT, "MAX_PRICE": LIMIT}


@pytest.mark.parametrize(
    ("value", "returned"),
    [(D("0.0001"), D("0.0001")), (LIMIT, LIMIT), (D("5.5000"), D("5.5000")), (D("1E+2"), D("100"))],
)
def test_a_quantity_or_price_within_bounds_is_returned(bounds, value, returned):
    assert quantity_validate(quantity=value) == returned
    assert price_validate(price=value, field="price") == returned


@pytest.mark.parametrize(
    ("value", "code", "message", "limit"),
    [
        (D("0"), "invalid_{}", "'{}' must be greater than zero.", {}),
        (D("-1"), "invalid_{}", "'{}' must be greater than zero.", {}),
        (LIMIT + D("0.0001"), "invalid_{}", "'{}' may be at most 1000000.", {"max": LIMIT}),
        (D("NaN"), "validation_error", "'{}' must be a number.", {}),
        (D("Infinity"), "validation_error", "'{}' must be a number.", {}),
        (5, "validation_error", "'{}' must be a number.", {}),
        ("5", "validation_error", "'{}' must be a number.", {}),
    ],
)
def test_a_quantity_or_price_out_of_bounds_is_refused_naming_its_field(bounds, value, code, message, limit):
    assert refusal(quantity_validate, quantity=value, field="amount") == (
        code.format("quantity"),
        message.format("amount"),
        {"field": "amount", **limit},
    )
    assert refusal(quantity_validate, quantity=value)[1:] == (
        message.format("quantity"),
        {"field": "quantity", **limit},
    )
    assert refusal(price_validate, price=value, field="stop_price") == (
        code.format("price"),
        message.format("stop_price"),
        {"field": "stop_price", **limit},
    )


def test_a_number_no_column_stores_is_a_validation_error(bounds):
    assert refusal(quantity_validate, quantity=D("0.00001"))[0] == "validation_error"
    assert refusal(price_validate, price=D("0.00001"), field="price")[0] == "validation_error"


# (side, type, price, stop price, code, message, field)
PARAMS_REFUSED = [
    ("hold", "market", None, None, "invalid_side", "'side' must be one of buy, sell.", "side"),
    (
        "buy",
        "stop_limit",
        None,
        None,
        "invalid_order_type",
        "'order_type' must be one of market, limit, stop.",
        "order_type",
    ),
    (
        "buy",
        "market",
        D("1"),
        None,
        "invalid_price",
        "A market order takes no price or stop_price; use a limit or stop order.",
        "price",
    ),
    (
        "buy",
        "market",
        None,
        D("1"),
        "invalid_price",
        "A market order takes no price or stop_price; use a limit or stop order.",
        "price",
    ),
    ("buy", "limit", None, None, "price_required", "A limit order needs a 'price'.", "price"),
    ("sell", "limit", D("1"), D("1"), "invalid_price", "A limit order takes no 'stop_price'.", "stop_price"),
    ("buy", "limit", D("0"), None, "invalid_price", "'price' must be greater than zero.", "price"),
    ("buy", "stop", None, None, "stop_price_required", "A stop order needs a 'stop_price'.", "stop_price"),
    (
        "sell",
        "stop",
        D("1"),
        D("1"),
        "invalid_price",
        "Stop-limit orders are not supported: a stop order takes no 'price'.",
        "price",
    ),
    ("buy", "stop", None, D("0"), "invalid_price", "'stop_price' must be greater than zero.", "stop_price"),
]


@pytest.mark.parametrize(("side", "order_type", "price", "stop_price", "code", "message", "field"), PARAMS_REFUSED)
def test_order_parameters_that_do_not_fit_together_are_refused(
    bounds, side, order_type, price, stop_price, code, message, field
):
    found = refusal(
        order_params_validate, side=side, order_type=order_type, quantity=D("1"), price=price, stop_price=stop_price
    )

    assert found == (code, message, {"field": field})


def test_an_order_quantity_is_checked_with_its_parameters(bounds):
    assert refusal(
        order_params_validate, side="buy", order_type="market", quantity=D("0"), price=None, stop_price=None
    )[:2] == ("invalid_quantity", "'quantity' must be greater than zero.")


@pytest.mark.parametrize(
    ("order_type", "price", "stop_price"),
    [("market", None, None), ("limit", D("1E+1"), None), ("stop", None, D("1E+1"))],
)
def test_valid_order_parameters_are_returned_checked(bounds, order_type, price, stop_price):
    params = order_params_validate(
        side="sell", order_type=order_type, quantity=D("2E+0"), price=price, stop_price=stop_price
    )

    assert params == OrderParams(
        side="sell", order_type=order_type, quantity=D("2"), price=price and D("10"), stop_price=stop_price and D("10")
    )
    assert str(params.quantity) == "2" and (params.price or params.stop_price or D("10")).as_tuple().exponent == 0


def cash_to(portfolio, amount: str) -> None:
    Portfolio.objects.filter(pk=portfolio.pk).update(cash=D(amount))


@pytest.mark.django_db
def test_a_buy_may_spend_exactly_the_cash_left_after_resting_buys_and_fees(portfolio, sap, actor):
    # a resting stop buy of 2 at 250 holds 500 + 1 fee; a limit buy of 10 at 100 needs 1000 + 1 fee
    place(portfolio, sap, actor, order_type="stop", quantity=D("2"), stop_price=D("250"))
    cash_to(portfolio, "1502.00")

    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("100"))

    assert order.status == "open"
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, actor, order_type="limit", quantity=D("1"), price=D("0.01"))
    assert (refused.value.code, refused.value.message) == (
        "insufficient_cash",
        "Buying 1 SAP needs about 1.01 EUR including fees; 0.00 EUR are available.",
    )


@pytest.mark.django_db
def test_a_buy_over_the_cash_is_refused_saying_what_it_needs_and_what_is_there(portfolio, sap, actor):
    cash_to(portfolio, "1000.99")  # 10 at 100 is 1000 + 1 fee

    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("100"))

    assert refused.value.message == "Buying 10 SAP needs about 1001.00 EUR including fees; 1000.99 EUR are available."


@pytest.mark.django_db
def test_a_market_buy_is_priced_at_the_last_price(portfolio, sap, actor):
    cash_to(portfolio, "2001.99")  # 10 at 200 is 2000 + 2 fee

    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, actor, quantity=D("10"))

    assert refused.value.message == "Buying 10 SAP needs about 2002.00 EUR including fees; 2001.99 EUR are available."


@pytest.mark.django_db
def test_a_modified_buy_does_not_reserve_cash_against_itself(portfolio, sap, actor):
    cash_to(portfolio, "1001.00")
    order = place(portfolio, sap, actor, order_type="limit", quantity=D("10"), price=D("100"))

    modified = order_modify(order_id=order.pk, actor=actor, price=D("99"))

    assert modified.price == D("99")


@pytest.mark.django_db
def test_a_sell_may_offer_exactly_what_is_held_and_not_yet_offered(portfolio_with_position, sap, actor):
    held = Position.objects.get(portfolio=portfolio_with_position, instrument=sap).quantity
    place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=held - 1, price=D("900"))

    last = place(
        portfolio_with_position, sap, actor, side="sell", order_type="stop", quantity=D("1"), stop_price=D("10")
    )

    assert last.status == "open"
    with pytest.raises(OrderRejected) as refused:
        place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("0.5"), price=D("900"))
    assert (refused.value.code, refused.value.message) == (
        "insufficient_position",
        "Selling 0.5 SAP exceeds the 0.0000 held and not already offered for sale.",
    )


@pytest.mark.django_db
def test_a_sell_of_what_is_not_held_names_the_shortfall(portfolio, sap, actor):
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, actor, side="sell", order_type="limit", quantity=D("3"), price=D("900"))

    assert refused.value.message == "Selling 3 SAP exceeds the 0 held and not already offered for sale."


@pytest.mark.django_db
def test_a_market_order_without_a_price_is_refused(portfolio, unpriced_instrument, actor):
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, unpriced_instrument, actor, quantity=D("1"))

    assert (refused.value.code, refused.value.message) == (
        "no_market_price",
        "NEW has no price yet; a market order cannot be executed.",
    )


@pytest.mark.django_db
def test_a_client_order_id_reused_with_other_parameters_names_the_order_it_belongs_to(portfolio, sap, actor):
    first = place(portfolio, sap, actor, client_order_id="abc-1")

    with pytest.raises(OrderConflict) as conflict:
        place(portfolio, sap, actor, client_order_id="abc-1", quantity=D("11"))

    assert (conflict.value.message, conflict.value.details) == (
        f"client_order_id 'abc-1' already names order {first.pk} with other parameters.",
        {"order_id": str(first.pk)},
    )
    assert place(portfolio, sap, actor, client_order_id="abc-1").pk == first.pk


@pytest.mark.django_db
def test_a_client_order_id_names_an_order_of_its_own_user_only(portfolio, sap, actor, other_trader):
    first = place(portfolio, sap, actor, client_order_id="abc-1")
    portfolio.members.add(other_trader)
    other = Actor(user=other_trader, client_id="client-b")

    second = place(portfolio, sap, other, client_order_id="abc-1")

    assert second.pk != first.pk and Order.objects.count() == 2


@pytest.mark.django_db
def test_a_request_id_reused_for_another_order_names_the_first(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))
    other = place(portfolio, sap, actor, order_type="limit", price=D("140"))
    order_cancel(order_id=order.pk, actor=actor, request_id="r-1")

    with pytest.raises(OrderConflict) as conflict:
        order_cancel(order_id=other.pk, actor=actor, request_id="r-1")

    assert (conflict.value.code, conflict.value.message, conflict.value.details) == (
        "request_id_conflict",
        f"request_id 'r-1' already names a cancel of order {order.pk} with other parameters.",
        {"order_id": str(order.pk)},
    )


@pytest.mark.django_db
def test_a_cancelled_order_says_it_was_cancelled_by_its_user(portfolio, sap, actor):
    order = place(portfolio, sap, actor, order_type="limit", price=D("150"))

    order_cancel(order_id=order.pk, actor=actor)

    order.refresh_from_db()
    assert (order.status, order.reason_code, order.reason) == ("cancelled", "cancelled_by_user", "cancelled by user")


@pytest.mark.django_db
def test_an_unknown_order_is_not_found_by_its_number(actor):
    with pytest.raises(NotFound) as missing:
        order_cancel(order_id=987654, actor=actor)

    assert (missing.value.code, missing.value.message) == ("order_not_found", "Order 987654 does not exist.")


@pytest.mark.django_db
def test_only_the_unfilled_part_of_resting_sells_of_the_same_instrument_is_reserved(
    portfolio_with_position, sap, siemens, actor
):
    held = Position.objects.get(portfolio=portfolio_with_position, instrument=sap).quantity
    resting = place(
        portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("4"), price=D("900")
    )
    Order.objects.filter(pk=resting.pk).update(filled_quantity=D("1"), status="partially_filled")
    Order.objects.create(  # a sell of another instrument reserves none of this one
        portfolio=portfolio_with_position,
        instrument=siemens,
        side="sell",
        order_type="limit",
        quantity=D("50"),
        price=D("900"),
        status="open",
    )

    rest = place(
        portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=held - 3, price=D("900")
    )

    assert rest.status == "open"
    # a modified sell does not reserve against itself
    assert order_modify(order_id=rest.pk, actor=actor, price=D("950")).price == D("950")
