"""Simultaneous fills and repeated client order ids never book twice (real transactions, threads)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from core.exceptions import DomainError
from portfolio.models import Portfolio, Position
from trading.execution import resting_orders_execute
from trading.models import Fill, Order, OrderStatus
from trading.services import order_place

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql():
    """Fail on any other database: SQLite serialises every writer, so no race can happen there."""
    if connection.vendor != "postgresql":
        pytest.fail("The concurrency tests need PostgreSQL (`make test` provides one).")


D = Decimal


def run_together(*calls):
    """Start every call in its own thread at the same moment; return results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # the test inspects it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_two_simultaneous_ticks_fill_a_resting_order_once(portfolio, sap, actor):
    # given a resting limit buy of 10 SAP at 190
    order = order_place(
        portfolio_id=portfolio.pk,
        symbol="SAP",
        side="buy",
        order_type="limit",
        quantity=D("10"),
        price=D("190"),
        actor=actor,
    )

    # when two ticks crossing it are executed at the same time
    results = run_together(
        lambda: resting_orders_execute(instrument=sap, price=D("189")),
        lambda: resting_orders_execute(instrument=sap, price=D("189")),
    )

    # then exactly one of them filled it, and cash and position were booked once
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(len(r) for r in results) == [0, 1]
    assert Fill.objects.filter(order=order).count() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FILLED
    assert Position.objects.get(portfolio=portfolio).quantity == D("10")
    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("10000.00") - D("1890.00") - D("1.89")


def test_simultaneous_repeats_of_a_client_order_id_make_one_order(portfolio, sap, actor):
    def place():
        return order_place(
            portfolio_id=portfolio.pk,
            symbol="SAP",
            side="buy",
            order_type="market",
            quantity=D("5"),
            client_order_id="once-only",
            actor=actor,
        )

    results = run_together(place, place, place)

    assert not any(isinstance(r, Exception) for r in results), results
    assert len({order.pk for order in results}) == 1
    assert Order.objects.count() == 1 and Fill.objects.count() == 1
    assert Position.objects.get(portfolio=portfolio).quantity == D("5")


def test_simultaneous_buys_never_spend_more_cash_than_there_is(portfolio, sap, actor):
    # given 10 000 EUR: one buy of 30 SAP (6 006 EUR) fits, two do not
    def buy():
        return order_place(
            portfolio_id=portfolio.pk, symbol="SAP", side="buy", order_type="market", quantity=D("30"), actor=actor
        )

    results = run_together(buy, buy)

    refused = [r for r in results if isinstance(r, DomainError)]
    assert [r.code for r in refused] == ["insufficient_cash"]
    assert Fill.objects.count() == 1
    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("10000.00") - D("6000.00") - D("6.00")
    assert Position.objects.get(portfolio=portfolio).quantity == D("30")


def test_cancel_racing_a_crossing_tick_ends_either_filled_or_cancelled_never_both(portfolio, sap, actor):
    from trading.services import order_cancel

    order = order_place(
        portfolio_id=portfolio.pk,
        symbol="SAP",
        side="buy",
        order_type="limit",
        quantity=D("10"),
        price=D("190"),
        actor=actor,
    )

    results = run_together(
        lambda: order_cancel(order_id=order.pk, actor=actor),
        lambda: resting_orders_execute(instrument=sap, price=D("189")),
    )

    order.refresh_from_db()
    fills = Fill.objects.filter(order=order).count()
    cash = Portfolio.objects.get(pk=portfolio.pk).cash
    if order.status == OrderStatus.CANCELLED:
        assert fills == 0 and cash == D("10000.00") and not Position.objects.exists()
        assert results[1] == []
    else:
        assert order.status == OrderStatus.FILLED and fills == 1
        assert cash == D("10000.00") - D("1890.00") - D("1.89")
        assert isinstance(results[0], DomainError) and results[0].code == "order_not_cancellable"


@pytest.mark.parametrize("action", ["cancel", "modify"])
def test_simultaneous_repeats_of_a_request_id_apply_once(portfolio, sap, actor, action):
    # given a resting limit buy
    from trading.models import OrderAudit, OrderRequest
    from trading.services import order_cancel, order_modify

    order = order_place(
        portfolio_id=portfolio.pk,
        symbol="SAP",
        side="buy",
        order_type="limit",
        quantity=D("10"),
        price=D("150"),
        actor=actor,
    )
    if action == "cancel":

        def request():
            return order_cancel(order_id=order.pk, actor=actor, request_id="twin-1")
    else:

        def request():
            return order_modify(order_id=order.pk, actor=actor, quantity=D("12"), request_id="twin-1")

    # when the same request arrives three times at once
    results = run_together(request, request, request)

    # then each is answered with the order, and it was changed and audited once
    assert not any(isinstance(r, Exception) for r in results), results
    assert {r.pk for r in results} == {order.pk}
    assert OrderRequest.objects.filter(request_id="twin-1").count() == 1
    assert OrderAudit.objects.filter(order=order, action=action).count() == 1
    order.refresh_from_db()
    assert (order.status, order.quantity) == (
        (OrderStatus.CANCELLED, D("10")) if action == "cancel" else (OrderStatus.OPEN, D("12"))
    )


def test_one_request_id_sent_at_once_for_orders_of_two_portfolios_applies_to_one(portfolio, sap, actor, trader):
    # given resting orders in two portfolios of the same trader (two locks, so nothing serialises them)
    from portfolio.services import portfolio_create
    from trading.services import order_cancel

    second = portfolio_create(name="Zweit", cash=D("10000.00"), members=[trader])
    orders = [
        order_place(
            portfolio_id=p.pk,
            symbol="SAP",
            side="buy",
            order_type="limit",
            quantity=D("1"),
            price=D("150"),
            actor=actor,
        )
        for p in (portfolio, second)
    ]

    # when both are cancelled at once under one request id
    results = run_together(*(lambda o=o: order_cancel(order_id=o.pk, actor=actor, request_id="one-id") for o in orders))

    # then one is cancelled and the other refused as a conflicting reuse of the id
    refused = [r for r in results if isinstance(r, Exception)]
    assert [getattr(r, "code", r) for r in refused] == ["request_id_conflict"], results
    assert Order.objects.filter(status=OrderStatus.CANCELLED).count() == 1
