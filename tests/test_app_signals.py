"""The apps' domain signals: what their receivers get, the order a tick's consequences run in,
the market's imports, and the admin's writes, which send the same events as the socket's."""

from __future__ import annotations

import ast
import logging
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone

from market import signals as market_signals
from market.ticks import price_tick_record
from portfolio import signals as portfolio_signals
from portfolio.models import Portfolio
from realtime.connection.commands import CommandContext, registry
from trading import signals as trading_signals
from trading.models import Fill, Order, OrderStatus
from trading.services import order_place

D = Decimal
BASE = Path(__file__).resolve().parent.parent


@contextmanager
def receiving(signal):
    """Record each sending of `signal` as (sender, keyword arguments) while the block runs.

    An order's status is also recorded as it was when the signal was sent, as `order_status`.
    """
    calls: list[tuple[type, dict]] = []

    def receiver(sender, **kwargs):
        order = kwargs.get("order")
        calls.append((sender, {**kwargs, "order_status": order.status if order is not None else None}))

    signal.connect(receiver, dispatch_uid="tests.receiving")
    try:
        yield calls
    finally:
        signal.disconnect(dispatch_uid="tests.receiving")


def place(portfolio, actor, **params):
    return order_place(portfolio_id=portfolio.pk, symbol="SAP", side="buy", actor=actor, **params)


@pytest.mark.django_db
def test_a_market_buy_sends_created_then_filled_with_the_order_its_members_and_the_correlation_id(
    portfolio, sap, actor, trader
):
    with (
        receiving(trading_signals.order_created) as created,
        receiving(trading_signals.order_filled) as filled,
        receiving(portfolio_signals.position_changed) as position,
        receiving(portfolio_signals.value_changed) as value,
    ):
        order = place(portfolio, actor, order_type="market", quantity=D("2"))

    [(sender, sent)] = created
    assert sender is Order
    assert (sent["order"].pk, sent["order_status"], sent["member_ids"], sent["correlation_id"]) == (
        order.pk,
        OrderStatus.PENDING,
        [trader.pk],
        "corr-1",
    )
    [(sender, sent)] = filled
    assert sender is Order and isinstance(sent["fill"], Fill)
    assert (sent["order"].pk, sent["fill"].quantity, sent["fill"].price, sent["member_ids"]) == (
        order.pk,
        D("2"),
        D("200.00"),
        [trader.pk],
    )
    [(sender, sent)] = position
    assert sender is Portfolio
    assert (sent["portfolio"].pk, sent["instrument"], sent["action"], sent["previous_quantity"], sent["quantity"]) == (
        portfolio.pk,
        sap,
        "buy",
        D("0"),
        D("2"),
    )
    [(sender, sent)] = value
    assert (sent["trigger_reason"], sent["previous"], sent["current"], sent["member_ids"]) == (
        "order_filled",
        D("10000.00"),
        D("9999.00"),
        [trader.pk],  # 400 EUR of SAP held for 401 EUR paid
    )


@pytest.mark.django_db
def test_a_refused_order_sends_failed_and_a_cancellation_cancelled(portfolio, sap, actor):
    from trading.services import OrderRejected, order_cancel

    with receiving(trading_signals.order_failed) as failed, receiving(trading_signals.order_created) as created:
        with pytest.raises(OrderRejected):
            place(portfolio, actor, order_type="market", quantity=D("1000"))
    assert created == [] and [sent["order"].reason_code for _, sent in failed] == ["insufficient_cash"]

    resting = place(portfolio, actor, order_type="limit", quantity=D("1"), price=D("100"))
    with receiving(trading_signals.order_cancelled) as cancelled:
        order_cancel(order_id=resting.pk, actor=actor)
    assert [(sent["order"].pk, sent["order_status"]) for _, sent in cancelled] == [(resting.pk, OrderStatus.CANCELLED)]


@pytest.mark.django_db(transaction=True)
def test_a_tick_executes_resting_orders_then_revalues_and_each_event_follows_in_that_order(
    portfolio_with_position, sap, actor, published
):
    # given 10 SAP held (last price 200) and a resting limit buy of 2 at 190
    order = place(portfolio_with_position, actor, order_type="limit", quantity=D("2"), price=D("190"))
    published.messages.clear()

    with receiving(market_signals.price_ticked) as ticked:
        price_tick_record(instrument=sap, price=D("189.50"), volume=10, at=timezone.now(), source="t")

    # then the tick's event, the fill's events (the booking first), and last the revaluation
    assert published.types() == [
        "market.price_update",
        "portfolio.position_changed",
        "trading.order_filled",
        "portfolio.value_changed",
        "portfolio.update",
        "portfolio.value_changed",
    ]
    assert [d["trigger_reason"] for d in published.data("portfolio.value_changed")] == ["order_filled", "price_update"]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FILLED
    [(_, sent)] = ticked
    assert (sent["instrument"].pk, sent["instrument"].last_price, sent["price"], sent["tick"].price) == (
        sap.pk,
        D("189.50"),
        D("189.50"),
        D("189.50"),
    )


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_of_a_tick_is_logged_and_the_revaluation_still_runs(
    portfolio_with_position, sap, actor, published, monkeypatch, caplog
):
    from trading import receivers

    order = place(portfolio_with_position, actor, order_type="limit", quantity=D("2"), price=D("190"))
    published.messages.clear()

    def broken(**kwargs):
        raise RuntimeError("execution down")

    monkeypatch.setattr(receivers, "resting_orders_execute", broken)
    with caplog.at_level(logging.ERROR):
        tick = price_tick_record(instrument=sap, price=D("189.50"), volume=10, at=timezone.now(), source="t")

    assert tick.pk is not None and Order.objects.get(pk=order.pk).status == OrderStatus.OPEN
    assert published.types() == ["market.price_update", "portfolio.value_changed"]
    assert any("price_ticked_execute after a SAP tick at 189.50 failed" in r.getMessage() for r in caplog.records)


def imported_modules(package: str) -> set[str]:
    """Every module the Python files of `package` import, at the top or inside a function."""
    names: set[str] = set()
    for path in (BASE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


def test_market_imports_nothing_of_trading_and_only_the_models_of_portfolio():
    imported = imported_modules("market")

    assert not {name for name in imported if name.split(".")[0] == "trading"}
    assert {name for name in imported if name.split(".")[0] == "portfolio"} == {"portfolio.models"}


# The admin writes through the services: the same events as the socket


def cancel_over_the_socket(user, order: Order) -> dict:
    context = CommandContext(
        user=user, client_id="client-a", correlation_id="c-1", remote_addr="10.0.0.7", permissions=frozenset()
    )
    registered = registry.get("cancel_order")
    assert registered is not None, "cancel_order"
    return async_to_sync(registered.handler)(context, {"order_id": str(order.pk)})


@pytest.mark.django_db(transaction=True)
def test_cancelling_in_the_admin_sends_the_events_the_cancel_command_sends(
    portfolio, sap, actor, trader, admin_client, published
):
    by_socket, by_admin = (
        place(portfolio, actor, order_type="limit", quantity=D("1"), price=D("100")) for _ in range(2)
    )
    published.messages.clear()

    cancel_over_the_socket(trader, by_socket)
    socket_messages = list(published.messages)
    [socket_data] = published.data("trading.order_cancelled")
    published.messages.clear()
    admin_client.post(
        reverse("admin:trading_order_changelist"),
        {"action": "cancel_selected_orders", "_selected_action": [by_admin.pk]},
    )
    admin_messages = list(published.messages)

    def shape(messages):
        return [(m["event"], m["audience"]) for m in messages]

    assert shape(admin_messages) == shape(socket_messages) == [("trading.order_cancelled", [trader.pk])]
    [admin_data] = published.data("trading.order_cancelled")
    assert set(admin_data) == set(socket_data) and socket_data["cancel_reason"] == "cancelled by user"
    assert (admin_data["order_id"], admin_data["cancel_reason"], admin_data["remaining_quantity"]) == (
        str(by_admin.pk),
        "cancelled in the admin",
        D("1"),
    )


@pytest.mark.django_db
def test_the_admin_changes_no_cash_position_or_price_and_deletes_no_portfolio(
    admin_client, portfolio_with_position, sap
):
    portfolio_form = admin_client.get(reverse("admin:portfolio_portfolio_change", args=[portfolio_with_position.pk]))
    instrument_form = admin_client.get(reverse("admin:portfolio_instrument_change", args=[sap.pk]))

    assert "cash" not in portfolio_form.context["adminform"].form.fields
    [positions] = portfolio_form.context["inline_admin_formsets"]
    assert not positions.has_change_permission and not positions.has_add_permission
    assert not {"last_price", "last_price_at"} & set(instrument_form.context["adminform"].form.fields)
    delete = admin_client.get(reverse("admin:portfolio_portfolio_delete", args=[portfolio_with_position.pk]))
    assert delete.status_code == 403
    # a new portfolio still gets its starting cash here
    assert "cash" in admin_client.get(reverse("admin:portfolio_portfolio_add")).context["adminform"].form.fields
