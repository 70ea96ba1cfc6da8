"""What the desk reads besides the spec's events: the account, the executions, reasons by code.

The account (cash, buying power, realised and unrealised P&L, change of the day), the fills
with their fees, the order history by several statuses, and every reason and command answer
with a machine code and the figures it names, so the desk words them in the page's language.
"""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.actor import Actor
from market.models import PriceTick
from portfolio.models import Instrument, Portfolio
from trading.commands import MESSAGES, _result
from trading.execution import resting_orders_execute
from trading.models import Order, OrderStatus
from trading.selectors import day_reference_prices, portfolio_account, realized_pnl
from trading.services import OrderRejected, order_cancel, order_place

pytestmark = pytest.mark.django_db

D = Decimal


def place(portfolio, instrument, user, **overrides):
    params = {"side": "buy", "order_type": "market", "quantity": D("1")}
    params.update(overrides)
    return order_place(portfolio_id=portfolio.pk, symbol=instrument.symbol, actor=Actor(user=user), **params)


def reprice(instrument: Instrument, price: str) -> None:
    Instrument.objects.filter(pk=instrument.pk).update(last_price=D(price))
    instrument.refresh_from_db()


def tick(instrument: Instrument, price: str, at: datetime) -> None:
    PriceTick.objects.create(
        instrument=instrument, price=D(price), previous_price=D(price), volume=1, source="test", at=at
    )


@pytest.fixture
def api(client, trader):
    client.force_login(trader)
    return client


def test_realised_pnl_follows_average_cost_with_fees(portfolio, sap, trader):
    # given two buys at different prices (fees 2.00 and 2.10) and a sale of half (fee 1.10)
    place(portfolio, sap, trader, quantity=D("10"))  # 2 000.00 + 2.00
    reprice(sap, "210")
    place(portfolio, sap, trader, quantity=D("10"))  # 2 100.00 + 2.10
    reprice(sap, "220")
    place(portfolio, sap, trader, side="sell", quantity=D("10"))  # 2 200.00 - 2.20

    # then the realised gain is the proceeds less fees less 10 units at the average cost 205.205
    assert realized_pnl(portfolio=portfolio) == D("2200.00") - D("2.20") - D("2052.05")


def test_account_reports_buying_power_after_resting_buys(portfolio, sap, trader):
    # given a resting limit buy of 10 SAP at 150 (1 500 EUR plus the 1.50 EUR fee reserved)
    place(portfolio, sap, trader, order_type="limit", quantity=D("10"), price=D("150"))

    account = portfolio_account(portfolio=Portfolio.objects.get(pk=portfolio.pk))

    assert (account["cash"], account["reserved_cash"], account["buying_power"]) == (
        D("10000.00"),
        D("1501.50"),
        D("8498.50"),
    )


def test_day_change_is_measured_from_the_previous_close_not_the_last_tick(portfolio, sap, trader):
    # given 10 SAP held, closing yesterday at 190, and two ticks today (195, then 200)
    place(portfolio, sap, trader, quantity=D("10"))
    now = timezone.now()
    midnight = timezone.make_aware(datetime.combine(timezone.localtime(now).date(), datetime.min.time()))
    tick(sap, "180", midnight - timedelta(hours=5))
    tick(sap, "190", midnight - timedelta(minutes=1))
    tick(sap, "195", midnight + timedelta(seconds=1))
    tick(sap, "200", midnight + timedelta(seconds=2))

    account = portfolio_account(portfolio=portfolio, now=now)

    # then the change is 10 × (200 − 190), 5.26 % of the reference value 1 900
    assert account["day_references"]["SAP"] == {"price": D("190"), "kind": "previous_close"}
    assert (account["day_change"], account["day_change_percent"]) == (D("100.00"), D("5.26"))


def test_without_a_previous_close_the_first_price_of_the_session_is_the_reference(sap, siemens, unpriced_instrument):
    now = timezone.now()
    midnight = timezone.make_aware(datetime.combine(timezone.localtime(now).date(), datetime.min.time()))
    tick(sap, "198", midnight + timedelta(seconds=1))
    tick(sap, "199", midnight + timedelta(seconds=2))

    references = day_reference_prices(instruments=[sap, siemens, unpriced_instrument], now=now)

    assert references == {
        "SAP": {"price": D("198"), "kind": "session_open"},
        "SIE": {"price": D("180"), "kind": "last_price"},
    }


def test_account_over_rest_is_decimal_strings_for_the_own_portfolio_only(api, portfolio, other_portfolio, sap, trader):
    place(portfolio, sap, trader, quantity=D("2"))

    body = api.get("/api/trading/account").json()
    others = api.get(f"/api/trading/account?portfolio_id={other_portfolio.pk}")
    malformed = api.get("/api/trading/account?portfolio_id=1;2")

    assert (body["portfolio_id"], body["cash"], body["buying_power"], body["realized_pnl"]) == (
        str(portfolio.pk),
        "9599.00",
        "9599.00",
        "0.00",
    )
    assert body["day_references"]["SAP"] == {"price": "200.0000", "kind": "last_price"}
    assert (body["fee_rate"], body["min_fee"]) == ("0.001000", "1.00")
    assert (others.status_code, others.json()["code"]) == (404, "portfolio_not_found")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_filter")


def test_executions_list_each_fill_with_price_and_fees(
    api, portfolio, other_portfolio, sap, siemens, trader, other_trader
):
    place(portfolio, sap, trader, quantity=D("3"))
    place(portfolio, siemens, trader, quantity=D("1"))
    place(other_portfolio, sap, other_trader)  # not the trader's

    everything = api.get("/api/trading/fills").json()
    sap_only = api.get("/api/trading/fills?symbol=SAP").json()
    refused = api.get("/api/trading/fills?symbol=S%20AP")

    assert [
        (row["symbol"], row["quantity"], row["price"], row["value"], row["fees"]) for row in everything["results"]
    ] == [("SIE", "1.0000", "180.0000", "180.00", "1.00"), ("SAP", "3.0000", "200.0000", "600.00", "1.00")]
    assert [row["symbol"] for row in sap_only["results"]] == ["SAP"]
    assert refused.status_code == 400


def test_history_filters_by_several_statuses_and_refuses_an_unknown_one(api, portfolio, sap, trader):
    filled = place(portfolio, sap, trader)
    resting = place(portfolio, sap, trader, order_type="limit", price=D("150"))

    open_ones = api.get("/api/trading/orders/history?status=open,partially_filled").json()["results"]
    both = api.get("/api/trading/orders/history?status=open,filled").json()["results"]
    refused = api.get("/api/trading/orders/history?status=open,bogus")

    assert [row["id"] for row in open_ones] == [resting.pk]
    assert [row["id"] for row in both] == [resting.pk, filled.pk]
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (400, "invalid_filter", "status")


def test_a_rejection_keeps_its_figures_for_the_history_and_the_error(api, portfolio, sap, trader):
    with pytest.raises(OrderRejected) as refused:
        place(portfolio, sap, trader, quantity=D("100"))  # 20 000 EUR, 10 000 available

    row = api.get("/api/trading/orders/history?status=rejected").json()["results"][0]
    assert refused.value.details["params"] == {
        "symbol": "SAP",
        "quantity": D("100"),
        "needed": D("20020.00"),
        "available": D("10000.00"),
    }
    assert (row["reason_code"], row["reason_params"]) == (
        "insufficient_cash",
        {"symbol": "SAP", "quantity": "100", "needed": "20020.00", "available": "10000.00"},
    )


def test_an_execution_that_cannot_be_booked_keeps_its_figures(portfolio, sap, trader):
    order = place(portfolio, sap, trader, order_type="stop", quantity=D("40"), stop_price=D("210"))
    Portfolio.objects.filter(pk=portfolio.pk).update(cash=D("5000.00"))

    resting_orders_execute(instrument=sap, price=D("215"))

    order.refresh_from_db()
    assert (order.status, order.reason_code) == (OrderStatus.FAILED, "insufficient_cash")
    assert order.reason_params == {"symbol": "SAP", "quantity": "40.0000", "needed": "8608.60", "available": "5000.00"}


def test_cancellations_say_by_code_who_cancelled(portfolio, sap, trader):
    order = place(portfolio, sap, trader, order_type="limit", price=D("150"))

    order_cancel(order_id=order.pk, actor=Actor(user=trader))

    order.refresh_from_db()
    assert (order.reason_code, order.reason, order.reason_params) == ("cancelled_by_user", "cancelled by user", {})


def test_every_command_answer_names_its_message_by_code(portfolio, sap, trader):
    order = place(portfolio, sap, trader, quantity=D("2"))

    result = _result(order, "order_placed_filled")

    assert result == {
        "order_id": str(order.pk),
        "status": "filled",
        "message": MESSAGES["order_placed_filled"],
        "message_code": "order_placed_filled",
        "message_params": {"order_id": str(order.pk), "symbol": "SAP"},
    }
    assert Order.objects.count() == 1
