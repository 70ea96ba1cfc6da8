"""Numbers from clients: only what a column stores exactly, only in JSON-number syntax, refused before any write.

The command tests send real JSON text through the protocol's decoder and the registered
command handlers, as a socket frame would arrive; the WebSocket tests at the end send the
quoted cases over a socket.
"""

from __future__ import annotations

import json
import logging
from decimal import Context, Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.exceptions import ValidationFailed
from core.numbers import Digits, decimal_from_input
from market.alerts import THRESHOLD
from market.models import AlertRule
from portfolio.models import Portfolio, Position, PositionCorrection
from portfolio.services import COST
from portfolio.services import QUANTITY as POSITION_QUANTITY
from realtime.connection.commands import CommandContext, registry
from realtime.wire.protocol import parse_client_message
from tests.fixtures.ws import login_cookie
from trading import execution
from trading.execution import resting_orders_execute
from trading.models import Fill, Order, OrderAudit, OrderStatus
from trading.services import order_place
from trading.validation import PRICE, QUANTITY

# Transactional: the handlers' database work runs through database_sync_to_async, as on a socket.
pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# The tester's cases, and the class each stands for.
QUOTED = ["1.123456789", "1.00000000000000000000000000001", "0.99999999999999999999999999999", "1e400", "1e-400"]
BAD_TEXT = ["1_0", "١٠", "１０", "1 0", " 5", "5 ", "+5", "5.", ".5", "0x10", "1e", "NaN", "Infinity", "-", "", "٣.٥"]


# What a column stores, worked out exactly


def stores_exactly(value: Decimal, digits: Digits) -> bool:
    """The oracle: scaled to the column's places the value is a whole number that fits the column."""
    wide = Context(prec=100_000)
    scaled = wide.scaleb(value, digits.decimal_places)
    return scaled == wide.to_integral_value(scaled) and abs(value) < wide.power(10, digits.integer_digits)


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=-60, max_value=60))
def test_a_value_fits_its_column_exactly_when_the_column_stores_it_unchanged(coefficient, exponent):
    value = Decimal(coefficient).scaleb(exponent)
    assert (QUANTITY.fault(value) is None) == stores_exactly(value, QUANTITY)


@pytest.mark.parametrize("text", QUOTED)
def test_the_quoted_values_do_not_fit_a_quantity(text):
    assert QUANTITY.fault(Decimal(text)) is not None


@pytest.mark.parametrize(
    "text", ["1", "1.1235", "0.0001", "99999999999999.9999", "1E+2", "-0", "0.000", "0E-50", "5.10000000"]
)
def test_values_a_quantity_column_holds_fit(text):
    assert QUANTITY.fault(Decimal(text)) is None


@pytest.mark.parametrize("text", BAD_TEXT)
def test_only_ascii_json_number_text_is_a_number(text):
    assert decimal_from_input(text) is None


@pytest.mark.parametrize(
    "value", [True, 1.5, float("nan"), Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), [1], {}]
)
def test_booleans_floats_and_non_finite_values_are_not_numbers(value):
    assert decimal_from_input(value) is None


# The command path: JSON text in, a refusal naming the field out, nothing written


def run(user, command: str, data_json: str) -> Any:
    """Decode a frame with `data_json` as its data, as the socket does, and run the command's handler."""
    message = parse_client_message(f'{{"type":"user","event":"{command}","data":{data_json}}}')
    context = CommandContext(
        user=user, client_id="client-a", correlation_id="c-1", remote_addr="10.0.0.7", permissions=frozenset()
    )
    registered = registry.get(command)
    assert registered is not None, command
    return async_to_sync(registered.handler)(context, message.data)


def refused(user, command: str, data_json: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as refusal:
        run(user, command, data_json)
    return refusal.value


def written() -> tuple[int, ...]:
    return (
        Order.objects.count(),
        Fill.objects.count(),
        OrderAudit.objects.count(),
        Position.objects.count(),
        PositionCorrection.objects.count(),
        AlertRule.objects.count(),
    )


def json_literal(text: str) -> st.SearchStrategy[str]:
    """The number as a JSON number and as a JSON string."""
    return st.sampled_from([text, json.dumps(text)])


def unrepresentable(digits: Digits) -> st.SearchStrategy[str]:
    """Numbers, as JSON numbers and strings, with more places or integer digits than `digits` hold."""
    places, integer_digits = digits.decimal_places, digits.integer_digits
    over_precise = st.builds(
        lambda whole, fraction, last: f"{whole}.{fraction}{last}",
        st.integers(min_value=0, max_value=999_999),
        st.text(alphabet="0123456789", min_size=places, max_size=40),
        st.sampled_from("123456789"),
    )
    huge = st.one_of(
        st.integers(min_value=10**integer_digits, max_value=10**60).map(str),
        st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 9), st.integers(integer_digits, 100_000)),
        st.builds(lambda m, e: f"{m}E+{e}", st.integers(1, 9), st.integers(integer_digits, 400)),
    )
    tiny = st.one_of(
        st.builds(lambda m, e: f"{m}e-{e}", st.integers(1, 9), st.integers(places + 1, 100_000)),
        st.integers(min_value=places, max_value=60).map(lambda zeros: "0." + "0" * zeros + "1"),
    )
    return st.one_of(over_precise, huge, tiny).flatmap(json_literal)


non_ascii_digits = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())
not_plain_text = st.one_of(
    st.text(alphabet=non_ascii_digits, min_size=1, max_size=6),
    st.builds(lambda a, b: f"{a}_{b}", st.integers(0, 999), st.integers(0, 999)),
    st.builds(lambda a, d: f"{a}{d}", st.integers(0, 999), non_ascii_digits),
    st.sampled_from(BAD_TEXT),
).map(json.dumps)


def bad_number_for(field_digits: tuple[str, Digits]) -> st.SearchStrategy[tuple[str, str]]:
    """A field with a number its column does not store or that is no plain ASCII number."""
    field, digits = field_digits
    return st.tuples(st.just(field), st.one_of(unrepresentable(digits), not_plain_text))


@EXAMPLES
@given(case=st.sampled_from([("quantity", QUANTITY), ("price", PRICE), ("stop_price", PRICE)]).flatmap(bad_number_for))
def test_place_order_refuses_a_number_no_column_stores_naming_the_field_and_writes_nothing(
    portfolio, sap, trader, case
):
    field, number = case
    order = {"quantity": "1", "price": None, "stop_price": None, "order_type": "market"}
    if field != "quantity":
        order["order_type"] = "limit" if field == "price" else "stop"
    data = {"symbol": "SAP", "side": "buy", **{key: value for key, value in order.items() if value is not None}}
    text = json.dumps(data)[:-1] + f', "{field}": {number}}}'
    before = written()

    refusal = refused(trader, "place_order", text)

    assert (refusal.code, refusal.details.get("field")) == ("validation_error", field)
    assert written() == before


@EXAMPLES
@given(case=st.sampled_from([("quantity", QUANTITY), ("price", PRICE)]).flatmap(bad_number_for))
def test_modify_order_refuses_a_number_no_column_stores_and_leaves_the_order(portfolio, sap, trader, actor, case):
    field, number = case
    resting = Order.objects.filter(status=OrderStatus.OPEN).first() or order_place(
        symbol="SAP", side="buy", order_type="limit", quantity=D("2"), price=D("150"), actor=actor
    )
    before = (written(), Order.objects.values_list("quantity", "price", "updated_at").get(pk=resting.pk))

    refusal = refused(trader, "modify_order", f'{{"order_id": {resting.pk}, "{field}": {number}}}')

    assert (refusal.code, refusal.details.get("field")) == ("validation_error", field)
    assert (written(), Order.objects.values_list("quantity", "price", "updated_at").get(pk=resting.pk)) == before


@EXAMPLES
@given(case=st.sampled_from([("quantity", POSITION_QUANTITY), ("avg_cost", COST)]).flatmap(bad_number_for))
def test_update_position_refuses_a_number_no_column_stores_and_changes_nothing(portfolio_with_position, trader, case):
    field, number = case
    data = {"symbol": "SAP", "quantity": "5", "avg_cost": "150", "reason": "Depotabgleich"}
    data.pop(field)
    text = json.dumps(data)[:-1] + f', "{field}": {number}}}'
    before = (written(), Position.objects.values_list("quantity", "avg_cost").get())

    refusal = refused(trader, "update_position", text)

    assert (refusal.code, refusal.details.get("field")) == ("validation_error", field)
    assert (written(), Position.objects.values_list("quantity", "avg_cost").get()) == before


@EXAMPLES
@given(number=st.one_of(unrepresentable(THRESHOLD), not_plain_text))
def test_an_alert_threshold_no_column_stores_is_refused(sap, trader, number):
    refusal = refused(trader, "subscribe_alerts", f'{{"symbol": "SAP", "condition": "above", "threshold": {number}}}')

    assert (refusal.code, refusal.details.get("field")) == ("validation_error", "threshold")
    assert AlertRule.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "number"),
    [
        ("quantity", "0.000000000000000000000000000001"),  # tiny
        ("quantity", "1e30"),  # huge
        ("quantity", "1.123456789"),  # over-precise: was answered as sent and stored as 1.1235
        ("quantity", "99999999999999"),  # fits the column, but its value no portfolio can hold
        ("avg_cost", "1e-30"),
        ("avg_cost", "1e30"),
        ("avg_cost", "1.1234567"),
    ],
)
def test_update_position_answers_tiny_huge_and_over_precise_numbers_with_validation_error(
    portfolio_with_position, trader, field, number
):
    data = {"symbol": "SAP", "quantity": 5, "avg_cost": 150, "reason": "Depotabgleich"}
    data.pop(field)
    before = (written(), Position.objects.values_list("quantity", "avg_cost").get(), Portfolio.objects.get().last_value)

    refusal = refused(trader, "update_position", json.dumps(data)[:-1] + f', "{field}": {number}}}')

    assert (refusal.code, refusal.details.get("field")) == ("validation_error", field)
    assert (
        written(),
        Position.objects.values_list("quantity", "avg_cost").get(),
        Portfolio.objects.get().last_value,
    ) == before


@pytest.mark.parametrize("number", ["5", "5.0", "5.1234", "-0", "1E+1", '"7.5"', '"0.0001"'])
def test_what_is_answered_is_what_is_stored(portfolio_with_position, trader, number):
    result = run(trader, "update_position", f'{{"symbol": "SAP", "quantity": {number}, "reason": "Abgleich"}}')

    stored = PositionCorrection.objects.get().quantity
    assert result["quantity"] == stored == Decimal(json.loads(number) if number.startswith('"') else number)
    assert "E" not in str(result["quantity"]) and not str(result["quantity"]).startswith("-")


def test_the_finest_order_the_columns_hold_is_stored_as_placed(portfolio, sap, trader):
    result = run(
        trader,
        "place_order",
        '{"symbol": "SAP", "side": "buy", "order_type": "limit", "quantity": 0.0001, "price": 0.0001}',
    )

    order = Order.objects.get(pk=int(result["order_id"]))
    assert (order.quantity, order.price) == (D("0.0001"), D("0.0001"))
    assert (QUANTITY.step, PRICE.step) == (D("0.0001"), D("0.0001"))


# One bad order affects no other


def test_an_order_whose_execution_fails_does_not_stop_the_others_of_the_tick(
    portfolio, other_portfolio, sap, actor, other_trader, monkeypatch, caplog
):
    from core.actor import Actor

    first = order_place(symbol="SAP", side="buy", order_type="limit", quantity=D("1"), price=D("190"), actor=actor)
    second = order_place(
        symbol="SAP", side="buy", order_type="limit", quantity=D("1"), price=D("190"), actor=Actor(user=other_trader)
    )
    real_fill = execution.order_fill

    def fill(*, order, **kwargs):
        if order.pk == first.pk:
            raise ArithmeticError("a broken order")
        return real_fill(order=order, **kwargs)

    monkeypatch.setattr(execution, "order_fill", fill)

    with caplog.at_level(logging.ERROR, logger="trading.execution"):
        touched = resting_orders_execute(instrument=sap, price=D("189"))

    assert [order.pk for order in touched] == [second.pk]
    assert Order.objects.get(pk=second.pk).status == OrderStatus.FILLED
    assert (Order.objects.get(pk=first.pk).status, Fill.objects.filter(order=first).count()) == (OrderStatus.OPEN, 0)
    assert f"order {first.pk} could not be executed" in caplog.text


# Over a socket


async def test_quoted_numbers_sent_over_a_socket_get_validation_error_with_the_field(
    ws_connect, trader, portfolio, sap
):
    client, connected = await ws_connect(cookie=await login_cookie(trader))
    assert connected
    for index, number in enumerate([*QUOTED, '"1_0"', '"١٠"', "1" + "0" * 5000, "-0"]):
        await client.send(
            f'{{"type":"user","event":"place_order","correlation_id":"n-{index}",'
            f'"data":{{"symbol":"SAP","side":"buy","quantity":{number}}}}}'
        )
        response = await client.receive_event("place_order.response")
        assert response["correlation_id"] == f"n-{index}"
        result = response["data"]["result"]
        expected = "invalid_quantity" if number == "-0" else "validation_error"
        assert (response["data"]["status"], result["code"], result["field"]) == ("error", expected, "quantity"), number
    assert await Order.objects.acount() == 0
