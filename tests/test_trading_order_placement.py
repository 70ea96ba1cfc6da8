"""Placing an order with the paper broker, on the real database: fills at market, refusals, reservations, client order ids."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from core.actor import Actor
from core.exceptions import NotFound, ValidationFailed
from portfolio.models import Portfolio, Position
from portfolio.services import portfolio_create
from tests.fixtures.trading import place, written
from trading.models import Fill, Order, OrderStatus
from trading.services import OrderConflict, OrderRejected, order_place

pytestmark = pytest.mark.django_db

D = Decimal


def test_market_buy_fills_at_last_price_and_books_cash_position_and_fee(
    portfolio, sap, actor, published, django_capture_on_commit_callbacks
):
    # given 10 000 EUR cash and SAP at 200
    # when buying 10 SAP at market
    with django_capture_on_commit_callbacks(execute=True):
        order = place(portfolio, sap, actor)

    # then the order is filled at 200 with a fee of 0.1 % of 2 000 = 2 EUR
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.average_fill_price, order.fees) == (
        OrderStatus.FILLED,
        D("10"),
        D("200"),
        D("2.00"),
    )
    fill = order.fills.get()
    assert (fill.quantity, fill.price, fill.fees) == (D("10"), D("200"), D("2.00"))
    portfolio.refresh_from_db()
    assert portfolio.cash == D("7998.00")
    position = Position.objects.get(portfolio=portfolio, instrument=sap)
    assert position.quantity == D("10")
    assert position.avg_cost == D("200.2")  # the fee is part of the cost

    # and the events went out in order, each matching its schema, to the portfolio's members only
    assert published.types() == [
        "trading.order_created",
        "portfolio.position_changed",
        "trading.order_filled",
        "portfolio.value_changed",
        "portfolio.update",
    ]
    created = published.data("trading.order_created")[0]
    assert (created["order_id"], created["status"], created["symbol"], created["price"]) == (
        str(order.pk),
        "pending",
        "SAP",
        None,
    )
    filled = published.data("trading.order_filled")[0]
    assert (
        filled["filled_quantity"],
        filled["fill_price"],
        filled["total_value"],
        filled["fees"],
        filled["status"],
    ) == (D("10"), D("200"), D("2000.00"), D("2.00"), "filled")
    changed = published.data("portfolio.position_changed")[0]
    assert (changed["action"], changed["quantity"], changed["change"], changed["isin"]) == (
        "buy",
        D("10"),
        D("10"),
        "DE0007164600",
    )
    value = published.data("portfolio.value_changed")[0]
    assert (value["previous_value"], value["current_value"], value["change"], value["trigger_reason"]) == (
        D("10000.00"),
        D("9998.00"),
        D("-2.00"),
        "order_filled",
    )
    update = published.data("portfolio.update")[0]
    assert (update["total_value"], update["positions_count"]) == (D("9998.00"), 1)
    assert {tuple(a) for t in set(published.types()) for a in published.audiences(t)} == {(actor.user.pk,)}
    assert {frame["correlation_id"] for frame in published.frames("trading.order_filled")} == {"corr-1"}


def test_market_order_that_fills_at_once_takes_at_most_12_queries(
    portfolio, sap, actor, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    # given a portfolio with cash and no positions, and a client order id as clients send one
    # when a market buy fills at once
    # then it takes: the savepoint of its transaction (2), the portfolio lock with its members,
    # its positions, the instrument with its price, the portfolio's resting orders, the order, its
    # audit row, the position, the cash with the new value, the fill, and the order's filled state
    # (on PostgreSQL the reads go in one round trip and the writes after the order in one statement)
    with django_assert_max_num_queries(12), django_capture_on_commit_callbacks(execute=True):
        order = place(portfolio, sap, actor, client_order_id="fast-1")

    assert order.status == OrderStatus.FILLED


def test_limit_order_that_rests_takes_at_most_8_queries(
    portfolio, sap, actor, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    # when a limit buy below the market is placed, it rests after: the savepoint (2), the
    # portfolio lock with its members, its positions, the instrument with its price, the
    # portfolio's resting orders, the order and its audit row
    with django_assert_max_num_queries(8), django_capture_on_commit_callbacks(execute=True):
        order = place(portfolio, sap, actor, order_type="limit", price=D("190"), client_order_id="rest-1")

    assert order.status == OrderStatus.OPEN


def test_a_sell_is_checked_against_the_resting_orders_read_with_the_lock(
    portfolio_with_position, sap, actor, django_assert_max_num_queries
):
    # given units already offered, so the check has resting sells to count
    place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("4"), price=D("250"))

    # when another sell rests: the same 8 statements as a buy, no read of the resting sells of its own
    with django_assert_max_num_queries(8):
        order = place(
            portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("6"), price=D("260")
        )

    assert order.status == OrderStatus.OPEN


def test_placing_an_order_records_who_placed_it_from_where(portfolio, sap, actor):
    order = place(portfolio, sap, actor, client_order_id="my-1")

    order.refresh_from_db()
    assert (order.placed_by, order.client_id, order.correlation_id, order.remote_addr) == (
        actor.user,
        "client-a",
        "corr-1",
        "10.0.0.7",
    )
    audit = order.audit.get()
    assert (audit.action, audit.user, audit.client_id, audit.correlation_id, audit.remote_addr) == (
        "place",
        actor.user,
        "client-a",
        "corr-1",
        "10.0.0.7",
    )


def test_an_order_without_portfolio_goes_to_the_users_first_portfolio(portfolio, sap, actor, trader):
    # given the trader is a member of two portfolios
    later = portfolio_create(name="Zweitdepot", cash=D("500.00"), members=[trader])

    # when an order names no portfolio
    order = order_place(symbol="sap", side="buy", order_type="market", quantity=D("1"), actor=actor)

    # then it is placed in the first one (the symbol in any case)
    assert (order.portfolio_id, order.instrument_id, order.status) == (portfolio.pk, sap.pk, OrderStatus.FILLED)
    assert Order.objects.filter(portfolio=later).count() == 0


@pytest.mark.parametrize(
    ("target", "symbol", "code"),
    [("other", "SAP", "portfolio_not_found"), ("none", "SAP", "no_portfolio"), ("own", "NOPE", "unknown_symbol")],
)
def test_an_order_in_a_portfolio_not_visible_or_for_an_unknown_symbol_is_not_found_and_writes_nothing(
    portfolio, other_portfolio, sap, actor, other_trader, target, symbol, code
):
    # given the trader's own portfolio, another trader's, and a staff member without any
    actor = Actor(user=get_user_model().objects.create_user("ohne", is_staff=True)) if target == "none" else actor
    portfolio_id = {"other": other_portfolio.pk, "none": None, "own": portfolio.pk}[target]

    with pytest.raises(NotFound) as not_found:
        order_place(
            portfolio_id=portfolio_id, symbol=symbol, side="buy", order_type="market", quantity=D("1"), actor=actor
        )

    assert not_found.value.code == code
    assert written() == (0, 0, 0, 0)


def test_a_repeat_without_portfolio_returns_the_order_placed_in_the_first_portfolio(portfolio, sap, actor):
    first = order_place(
        symbol="SAP", side="buy", order_type="market", quantity=D("1"), client_order_id="r-1", actor=actor
    )

    again = order_place(
        symbol="SAP", side="buy", order_type="market", quantity=D("1"), client_order_id="r-1", actor=actor
    )

    assert again.pk == first.pk and first.portfolio_id == portfolio.pk


def test_market_sell_of_whole_position_closes_it_and_credits_proceeds_less_fee(portfolio_with_position, sap, actor):
    # given 10 SAP held, SAP at 200
    place(portfolio_with_position, sap, actor, side="sell", quantity=D("10"))

    portfolio_with_position.refresh_from_db()
    assert portfolio_with_position.cash == D("10000.00") + D("2000.00") - D("2.00")
    assert not Position.objects.filter(portfolio=portfolio_with_position).exists()


def test_partial_sell_keeps_average_cost(portfolio_with_position, sap, actor):
    place(portfolio_with_position, sap, actor, side="sell", quantity=D("4"))

    position = Position.objects.get(portfolio=portfolio_with_position)
    assert (position.quantity, position.avg_cost) == (D("6"), D("150"))


def test_selling_more_than_held_is_rejected_with_reason_and_books_nothing(
    portfolio_with_position, sap, actor, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(OrderRejected) as refused:
        place(portfolio_with_position, sap, actor, side="sell", quantity=D("11"))

    assert refused.value.code == "insufficient_position"
    order = Order.objects.get()
    assert (order.status, order.reason_code) == (OrderStatus.REJECTED, "insufficient_position")
    assert "10" in order.reason
    assert refused.value.details["order_id"] == str(order.pk)
    assert not Fill.objects.exists()
    assert Position.objects.get().quantity == D("10")
    portfolio_with_position.refresh_from_db()
    assert portfolio_with_position.cash == D("10000.00")
    failed = published.data("trading.order_failed")
    assert [(f["order_id"], f["error_code"]) for f in failed] == [(str(order.pk), "insufficient_position")]
    assert "trading.order_created" not in published.types()


def test_buying_beyond_cash_is_rejected_with_reason_and_books_nothing(portfolio, sap, actor):
    # 50 SAP at 200 = 10 000 EUR plus 10 EUR fee > 10 000 EUR cash
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, actor, quantity=D("50"))

    assert refused.value.code == "insufficient_cash"
    assert Order.objects.get().status == OrderStatus.REJECTED
    portfolio.refresh_from_db()
    assert portfolio.cash == D("10000.00")
    assert not Position.objects.exists() and not Fill.objects.exists()


def test_resting_buy_orders_reserve_cash_for_later_orders(portfolio, sap, actor):
    # given a resting limit buy that would spend 9 000 EUR plus fees
    place(portfolio, sap, actor, order_type="limit", quantity=D("50"), price=D("180"))

    # then a market buy of 1 000 EUR more no longer fits
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, actor, quantity=D("5"))
    assert refused.value.code == "insufficient_cash"


def test_resting_sell_orders_reserve_their_units(portfolio_with_position, sap, actor):
    place(portfolio_with_position, sap, actor, side="sell", order_type="limit", quantity=D("8"), price=D("250"))

    with pytest.raises(OrderRejected) as refused:
        place(portfolio_with_position, sap, actor, side="sell", quantity=D("3"))
    assert refused.value.code == "insufficient_position"


def test_market_order_for_instrument_without_price_is_rejected(portfolio, unpriced_instrument, actor):
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, unpriced_instrument, actor)
    assert refused.value.code == "no_market_price"


def test_repeated_client_order_id_with_same_parameters_returns_original_and_writes_nothing(
    portfolio, sap, actor, published, django_capture_on_commit_callbacks
):
    first = place(portfolio, sap, actor, client_order_id="abc-1")
    before = written()
    cash = Portfolio.objects.get(pk=portfolio.pk).cash

    with django_capture_on_commit_callbacks(execute=True):
        again = place(portfolio, sap, actor, client_order_id="abc-1")

    assert again.pk == first.pk
    assert written() == before
    assert Portfolio.objects.get(pk=portfolio.pk).cash == cash
    assert published.messages == []


def test_a_repeated_client_order_id_is_answered_in_at_most_9_queries_with_its_instrument_and_portfolio(
    portfolio, sap, actor, django_assert_max_num_queries, django_assert_num_queries
):
    place(portfolio, sap, actor, client_order_id="abc-1")

    # the savepoint (3: its insert fails), the portfolio lock with its members and, in the same
    # round trip, its positions, the instrument and its resting orders; the insert refused on the
    # client order id, and the order it names read with its instrument and portfolio
    with django_assert_max_num_queries(9):
        again = place(portfolio, sap, actor, client_order_id="abc-1")

    with django_assert_num_queries(0):
        assert (again.instrument.symbol, again.portfolio.pk) == ("SAP", portfolio.pk)


def test_repeated_client_order_id_with_other_parameters_is_an_error_and_writes_nothing(portfolio, sap, actor):
    place(portfolio, sap, actor, client_order_id="abc-1")
    before = written()

    with pytest.raises(OrderConflict) as conflict:
        place(portfolio, sap, actor, client_order_id="abc-1", quantity=D("11"))

    assert conflict.value.code == "client_order_id_conflict"
    assert written() == before


def test_repeated_client_order_id_without_a_user_returns_original_and_writes_nothing(portfolio, sap):
    # given an order placed by no user (the unique constraint on user and client order id does not cover it)
    first = place(portfolio, sap, Actor.system(), client_order_id="sys-1")
    before = written()

    # when the same request comes again
    again = place(portfolio, sap, Actor.system(), client_order_id="sys-1")

    # then it names the same order and nothing more is written
    assert again.pk == first.pk
    assert written() == before


def test_client_order_ids_of_different_users_do_not_collide(portfolio, other_portfolio, sap, actor, other_trader):
    mine = place(portfolio, sap, actor, client_order_id="same")
    theirs = place(other_portfolio, sap, Actor(user=other_trader), client_order_id="same", quantity=D("1"))

    assert mine.pk != theirs.pk


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"side": "hold"}, "invalid_side"),
        ({"order_type": "iceberg"}, "invalid_order_type"),
        ({"quantity": D("0")}, "invalid_quantity"),
        ({"quantity": D("-5")}, "invalid_quantity"),
        ({"quantity": D("1e12")}, "invalid_quantity"),
        ({"quantity": D("1.00001")}, "validation_error"),
        ({"quantity": D("NaN")}, "validation_error"),
        ({"order_type": "limit"}, "price_required"),
        ({"order_type": "limit", "price": D("0")}, "invalid_price"),
        ({"order_type": "limit", "price": D("-1")}, "invalid_price"),
        ({"order_type": "limit", "price": D("199.12345")}, "validation_error"),
        ({"order_type": "limit", "price": D("1e9")}, "invalid_price"),
        ({"order_type": "stop"}, "stop_price_required"),
        ({"order_type": "stop", "stop_price": D("210"), "price": D("211")}, "invalid_price"),
        ({"price": D("200")}, "invalid_price"),
        ({"client_order_id": "has spaces"}, "invalid_client_order_id"),
        ({"client_order_id": "x" * 65}, "invalid_client_order_id"),
    ],
)
def test_invalid_order_is_refused_with_code_and_writes_nothing(portfolio, sap, actor, overrides, code):
    with pytest.raises(ValidationFailed) as refused:
        place(portfolio, sap, actor, **overrides)

    assert refused.value.code == code
    assert refused.value.message
    assert written() == (0, 0, 0, 0)
