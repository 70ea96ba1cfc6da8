"""Who may see and act on which portfolio and order: the admin, REST, the desk and the socket by one rule."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from core.actor import Actor
from aktienanalyse.roles import OPERATOR
from portfolio.models import Position, PositionCorrection
from realtime.connection.commands import registry
from realtime.wire.events import EVENT_SCHEMAS
from tests.fixtures.users import grant
from tests.test_desk import desk_config
from tests.fixtures.ws import login_cookie
from trading.models import Order, OrderAudit, OrderStatus
from trading.services import order_place

D = Decimal


def place(portfolio, instrument, user, **overrides):
    params = {"side": "buy", "order_type": "market", "quantity": D("1")}
    params.update(overrides)
    return order_place(portfolio_id=portfolio.pk, symbol=instrument.symbol, actor=Actor(user=user), **params)


@pytest.fixture
def operator(django_user_model):
    """A staff member with the operator's permissions (as the "Betrieb" group grants them)."""
    user = django_user_model.objects.create_user("olga", is_staff=True)
    grant(user, *OPERATOR.permissions)
    return user


@pytest.fixture
def own_orders(portfolio, sap, trader):
    """The trader's filled SAP buy and resting SAP limit buy."""
    return place(portfolio, sap, trader, quantity=D("2")), place(
        portfolio, sap, trader, order_type="limit", price=D("150")
    )


@pytest.fixture
def their_order(other_portfolio, sap, other_trader):
    """A resting order in another trader's portfolio."""
    return place(other_portfolio, sap, other_trader, order_type="limit", price=D("150"))


def admin_as(client, user):
    client.force_login(user)
    return client


def shown_ids(response) -> list[int]:
    return sorted(row.pk for row in response.context["cl"].result_list)


# The admin


@pytest.mark.django_db
def test_admin_lists_a_trader_only_the_orders_and_portfolios_they_are_a_member_of(
    client, trader, portfolio, other_portfolio, own_orders, their_order
):
    admin = admin_as(client, trader)

    orders = admin.get(reverse("admin:trading_order_changelist"))
    portfolios = admin.get(reverse("admin:portfolio_portfolio_changelist"))

    assert orders.status_code == portfolios.status_code == 200
    assert shown_ids(orders) == sorted(order.pk for order in own_orders)
    assert shown_ids(portfolios) == [portfolio.pk]
    for page in (orders, portfolios):  # not even in the portfolio filter's choices
        assert other_portfolio.name not in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("view", ["change", "history"])
def test_admin_answers_a_trader_for_another_members_order_or_portfolio_as_for_a_missing_one(
    client, trader, portfolio, other_portfolio, their_order, view
):
    admin = admin_as(client, trader)

    for url in (
        reverse(f"admin:trading_order_{view}", args=[their_order.pk]),
        reverse(f"admin:portfolio_portfolio_{view}", args=[other_portfolio.pk]),
    ):
        response = admin.get(url)
        # Django's answer for an object that does not exist: back to the index, with a message
        assert (response.status_code, response["Location"]) == (302, reverse("admin:index")), url
        assert str(other_portfolio.cash) not in admin.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_admin_cancel_action_refuses_a_hand_made_post_for_another_members_order(
    client, trader, own_orders, their_order, published, django_capture_on_commit_callbacks
):
    admin = admin_as(client, trader)
    _, resting = own_orders

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            reverse("admin:trading_order_changelist"),
            {"action": "cancel_selected_orders", "_selected_action": [their_order.pk, resting.pk]},
            follow=True,
        )

    their_order.refresh_from_db()
    resting.refresh_from_db()
    assert (their_order.status, resting.status) == (OrderStatus.OPEN, OrderStatus.CANCELLED)
    assert not OrderAudit.objects.filter(order=their_order, action="cancel").exists()
    assert [e["order_id"] for e in published.data("trading.order_cancelled")] == [str(resting.pk)]
    shown = [str(m) for m in response.context["messages"]]
    assert any(f"#{their_order.pk}: does not exist or is not yours" in m for m in shown), shown


@pytest.mark.django_db
def test_admin_action_on_a_selection_that_is_not_ids_is_refused_with_a_message(client, trader, own_orders):
    admin = admin_as(client, trader)
    _, resting = own_orders

    response = admin.post(
        reverse("admin:trading_order_changelist"),
        {"action": "cancel_selected_orders", "_selected_action": [str(resting.pk), "1 OR 1=1"]},
        follow=True,
    )

    assert response.status_code == 200
    assert any("not a list of ids" in str(m) for m in response.context["messages"])
    resting.refresh_from_db()
    assert resting.status == OrderStatus.OPEN


@pytest.mark.django_db
@pytest.mark.parametrize("odd", ["²", "١٢", "０"])
def test_admin_action_on_a_selection_with_non_ascii_digits_changes_nothing(client, trader, own_orders, odd):
    admin = admin_as(client, trader)
    _, resting = own_orders

    response = admin.post(
        reverse("admin:trading_order_changelist"),
        {"action": "cancel_selected_orders", "_selected_action": [odd]},
        follow=True,
    )

    assert response.status_code == 200
    resting.refresh_from_db()
    assert resting.status == OrderStatus.OPEN


@pytest.mark.django_db
def test_admin_shows_a_trader_the_fills_and_audit_of_their_order_read_only(client, trader, own_orders):
    filled, _ = own_orders
    admin = admin_as(client, trader)

    response = admin.get(reverse("admin:trading_order_change", args=[filled.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "200.0000" in html  # the fill's price
    inlines = {formset.formset.prefix: formset for formset in response.context["inline_admin_formsets"]}
    assert set(inlines) == {"fills", "audit"}
    for formset in inlines.values():
        assert (
            not formset.has_add_permission and not formset.has_change_permission and not formset.has_delete_permission
        )
    assert len(inlines["fills"].formset.forms) == 1
    assert [form.instance.action for form in inlines["audit"].formset.forms] == ["place"]


@pytest.mark.django_db
def test_admin_keeps_position_corrections_from_traders(client, trader, portfolio):
    admin = admin_as(client, trader)

    assert admin.get(reverse("admin:portfolio_positioncorrection_changelist")).status_code == 403


@pytest.mark.django_db
def test_admin_lets_a_supervisor_see_and_cancel_every_portfolios_orders(
    client, supervisor, portfolio, other_portfolio, own_orders, their_order, django_capture_on_commit_callbacks
):
    admin = admin_as(client, supervisor)

    orders = admin.get(reverse("admin:trading_order_changelist"))
    portfolios = admin.get(reverse("admin:portfolio_portfolio_changelist"))
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            reverse("admin:trading_order_changelist"),
            {"action": "cancel_selected_orders", "_selected_action": [their_order.pk]},
        )

    assert shown_ids(orders) == sorted([*(o.pk for o in own_orders), their_order.pk])
    assert shown_ids(portfolios) == sorted([portfolio.pk, other_portfolio.pk])
    their_order.refresh_from_db()
    assert their_order.status == OrderStatus.CANCELLED
    assert OrderAudit.objects.get(order=their_order, action="cancel").user_id == supervisor.pk


@pytest.mark.django_db
def test_admin_shows_operators_no_orders_or_portfolios(client, operator, own_orders):
    admin = admin_as(client, operator)

    assert admin.get(reverse("admin:trading_order_changelist")).status_code == 403
    assert admin.get(reverse("admin:portfolio_portfolio_changelist")).status_code == 403
    assert admin.get(reverse("admin:realtime_connectiontermination_changelist")).status_code == 200


# One permission for REST, the desk and the socket


@pytest.mark.django_db
def test_rest_refuses_order_reads_to_a_member_without_the_order_permission(client, staff_user, portfolio, own_orders):
    portfolio.members.add(staff_user)  # a member, but without trading.view_order
    client.force_login(staff_user)

    for url in ("/api/trading/orders/history", f"/api/trading/orders/{own_orders[0].pk}"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db
def test_desk_leaves_out_the_portfolio_of_a_member_without_the_portfolio_permission(client, staff_user, portfolio):
    portfolio.members.add(staff_user)
    client.force_login(staff_user)

    response = client.get("/")

    assert response.status_code == 200
    config = desk_config(response)
    assert config["portfolio"] is None
    assert str(portfolio.pk) not in re.findall(r'"portfolio_id": "(\d+)"', json.dumps(config))


@pytest.mark.django_db(transaction=True)
async def test_socket_refuses_the_same_member_the_same_reads(ws_connect, staff_user, portfolio):
    await portfolio.members.aadd(staff_user)
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))

    refresh = await client.command("refresh_portfolio", {"portfolio_id": portfolio.pk})
    await client.send(
        {"type": "subscription", "event": "subscribe", "data": {"event_types": ["trading.order_created"]}}
    )
    subscribe = await client.receive()

    assert refresh["data"]["result"]["code"] == "permission_denied"
    assert subscribe["event"] == "permission_denied"


@pytest.mark.django_db
def test_every_permission_a_command_or_event_names_exists_so_a_superusers_set_holds_it():
    named = {c.permission for c in map(registry.get, registry.names()) if c.permission}
    named |= {schema.permission for schema in EVENT_SCHEMAS.values() if schema.permission}
    existing = {
        f"{app}.{codename}" for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }

    assert named and named <= existing, named - existing


# The roles on the socket


@pytest.mark.django_db(transaction=True)
async def test_a_trader_can_neither_correct_positions_nor_use_the_operator_tools(
    ws_connect, trader, other_trader, portfolio_with_position, sap
):
    victim, _ = await ws_connect(cookie=await login_cookie(other_trader))
    victim_id = victim.received[0]["data"]["client_id"]
    client, _ = await ws_connect(cookie=await login_cookie(trader))

    correct = await client.command("update_position", {"symbol": "SAP", "quantity": 1000, "reason": "free shares"})
    snapshot = await client.command("monitor_snapshot", correlation_id="c-2")
    disconnect = await client.command("disconnect_client", {"client_id": victim_id}, correlation_id="c-3")

    assert [r["data"]["result"]["code"] for r in (correct, snapshot, disconnect)] == ["permission_denied"] * 3
    assert (await Position.objects.aget()).quantity == 10
    assert not await PositionCorrection.objects.aexists()
    await victim.send({"type": "ping", "event": "heartbeat", "data": {}})
    assert (await victim.receive_event("pong"))["type"] == "system"


@pytest.mark.django_db(transaction=True)
async def test_a_supervisor_corrects_a_position_of_any_portfolio_but_cannot_trade(
    ws_connect, supervisor, portfolio_with_position, sap
):
    client, _ = await ws_connect(cookie=await login_cookie(supervisor))

    correct = await client.command(
        "update_position",
        {"symbol": "SAP", "quantity": 12, "reason": "Depotabgleich", "portfolio_id": portfolio_with_position.pk},
    )
    order = await client.command(
        "place_order",
        {"symbol": "SAP", "side": "buy", "quantity": 1, "portfolio_id": portfolio_with_position.pk},
        correlation_id="c-2",
    )

    assert correct["data"]["status"] == "success", correct
    assert (await Position.objects.aget()).quantity == 12
    assert order["data"]["result"]["code"] == "permission_denied"
    assert not await Order.objects.aexists()


@pytest.mark.django_db(transaction=True)
async def test_an_operator_monitors_and_disconnects_but_cannot_trade(ws_connect, operator, trader, portfolio):
    target, _ = await ws_connect(cookie=await login_cookie(trader))
    target_id = target.received[0]["data"]["client_id"]
    client, _ = await ws_connect(cookie=await login_cookie(operator))

    snapshot = await client.command("monitor_snapshot")
    order = await client.command("place_order", {"symbol": "SAP", "side": "buy", "quantity": 1}, correlation_id="c-2")
    disconnect = await client.command(
        "disconnect_client", {"client_id": target_id, "reason": "drill"}, correlation_id="c-3"
    )

    assert (snapshot["data"]["status"], disconnect["data"]["status"]) == ("success", "success")
    assert order["data"]["result"]["code"] == "permission_denied"
    assert await target.closed_with() == 4009
