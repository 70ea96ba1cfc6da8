"""REST order history and detail, the OpenAPI schema, and the orders admin with its cancel action."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from core.actor import Actor
from trading.models import Order, OrderAudit, OrderStatus
from trading.services import OrderRejected, order_place

pytestmark = pytest.mark.django_db

D = Decimal


def place(portfolio, instrument, user, **overrides):
    params = {"side": "buy", "order_type": "market", "quantity": D("1")}
    params.update(overrides)
    return order_place(portfolio_id=portfolio.pk, symbol=instrument.symbol, actor=Actor(user=user), **params)


@pytest.fixture
def api(client, trader):
    client.force_login(trader)
    return client


@pytest.fixture
def three_orders(portfolio, sap, siemens, trader):
    """A filled SAP buy, an open SIE limit buy, and an open SAP limit sell, oldest first."""
    filled = place(portfolio, sap, trader, quantity=D("2"))
    resting = place(portfolio, siemens, trader, order_type="limit", price=D("150"))
    selling = place(portfolio, sap, trader, side="sell", order_type="limit", quantity=D("1"), price=D("250"))
    return filled, resting, selling


def test_history_lists_own_orders_newest_first_with_decimal_strings(
    api, three_orders, other_portfolio, sap, other_trader
):
    place(other_portfolio, sap, other_trader)  # not visible to the trader

    response = api.get("/api/trading/orders/history")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == [order.pk for order in reversed(three_orders)]
    first = body["results"][-1]
    assert (first["symbol"], first["status"], first["quantity"], first["average_fill_price"], first["fees"]) == (
        "SAP",
        "filled",
        "2.0000",
        "200.0000",
        "1.00",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [("status=open", [2, 1]), ("symbol=sap", [2, 0]), ("side=sell", [2]), ("status=filled&side=buy", [0])],
)
def test_history_filters_by_status_symbol_and_side(api, three_orders, query, expected):
    response = api.get(f"/api/trading/orders/history?{query}")

    assert [row["id"] for row in response.json()["results"]] == [three_orders[i].pk for i in expected]


def test_history_filters_by_date_range(api, three_orders):
    old = three_orders[0]
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    until = (timezone.now() - timedelta(days=5)).date().isoformat()

    recent = api.get(f"/api/trading/orders/history?from={since}").json()["results"]
    older = api.get(f"/api/trading/orders/history?to={until}").json()["results"]

    assert old.pk not in [row["id"] for row in recent] and len(recent) == 2
    assert [row["id"] for row in older] == [old.pk]


def test_history_is_paginated(api, portfolio, sap, trader):
    orders = [place(portfolio, sap, trader) for _ in range(3)]

    first = api.get("/api/trading/orders/history?page_size=2").json()
    second = api.get(first["next"]).json()

    assert first["count"] == 3 and len(first["results"]) == 2
    assert [row["id"] for row in first["results"] + second["results"]] == [o.pk for o in reversed(orders)]


@pytest.mark.parametrize("query", ["status=lost", "side=hold", "from=yesterday"])
def test_history_refuses_bad_filters_with_domain_error_shape(api, query):
    response = api.get(f"/api/trading/orders/history?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_filter" and response.json()["error"]


def test_order_detail_shows_fills(api, three_orders):
    filled = three_orders[0]

    response = api.get(f"/api/trading/orders/{filled.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["remaining_quantity"]) == (filled.pk, "0.0000")
    assert [(f["quantity"], f["price"]) for f in body["fills"]] == [("2.0000", "200.0000")]


def test_another_users_order_detail_is_not_found(api, other_portfolio, sap, other_trader):
    theirs = place(other_portfolio, sap, other_trader)

    response = api.get(f"/api/trading/orders/{theirs.pk}")

    assert response.status_code == 404
    assert response.json()["code"] == "order_not_found"


def test_history_is_for_staff_only(client, non_staff_user, django_user_model):
    assert client.get("/api/trading/orders/history").status_code == 403
    client.force_login(non_staff_user)
    assert client.get("/api/trading/orders/history").status_code == 403


def test_openapi_schema_describes_the_order_endpoints(api):
    response = api.get("/api/schema/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/trading/orders/history" in text and "/api/trading/orders/{id}" in text


def test_admin_lists_orders_with_filters_and_search(admin_client, three_orders):
    changelist = reverse("admin:trading_order_changelist")

    assert admin_client.get(changelist).status_code == 200
    response = admin_client.get(changelist, {"status__exact": "open", "q": "SIE"})
    assert [order.pk for order in response.context["cl"].result_list] == [three_orders[1].pk]
    detail = admin_client.get(reverse("admin:trading_order_change", args=[three_orders[0].pk]))
    assert detail.status_code == 200 and b"200.0000" in detail.content  # the read-only fill inline


def test_admin_cancel_action_goes_through_the_service_and_announces(
    admin_client, three_orders, published, django_capture_on_commit_callbacks
):
    filled, resting, selling = three_orders

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:trading_order_changelist"),
            {"action": "cancel_selected_orders", "_selected_action": [filled.pk, resting.pk, selling.pk]},
            follow=True,
        )

    assert response.status_code == 200
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {
        filled.pk: OrderStatus.FILLED,
        resting.pk: OrderStatus.CANCELLED,
        selling.pk: OrderStatus.CANCELLED,
    }
    assert sorted(e["order_id"] for e in published.data("trading.order_cancelled")) == sorted(
        [str(resting.pk), str(selling.pk)]
    )
    assert OrderAudit.objects.filter(action="cancel", channel="admin").count() == 2
    shown = [str(m) for m in response.context["messages"]]
    assert any("2 orders cancelled" in m for m in shown) and any(f"#{filled.pk}" in m for m in shown)


def test_admin_cannot_add_or_delete_orders(admin_client):
    assert admin_client.get(reverse("admin:trading_order_add")).status_code == 403


def test_rejected_order_shows_in_history_with_reason(api, portfolio, sap, trader):
    with pytest.raises(OrderRejected):
        place(portfolio, sap, trader, quantity=D("1000"))

    [row] = api.get("/api/trading/orders/history?status=rejected").json()["results"]
    assert (row["reason_code"], bool(row["reason"])) == ("insufficient_cash", True)
