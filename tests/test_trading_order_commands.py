"""The order commands over the WebSocket (place, cancel, modify, and their repeats under a request
id): success and error paths, and their events."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from portfolio.models import Position
from tests.fixtures.commands import connect, count, event, no_event_up_to_a_marker, valid
from trading.execution import resting_orders_execute
from trading.models import Order, OrderAudit, OrderStatus

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
TRADING_EVENTS = ("trading.order_created", "trading.order_filled", "trading.order_cancelled", "trading.order_failed")
PORTFOLIO_EVENTS = ("portfolio.update", "portfolio.position_changed", "portfolio.value_changed")


async def test_place_market_order_succeeds_and_streams_created_and_filled(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader, *TRADING_EVENTS, *PORTFOLIO_EVENTS)

    response = await client.command(
        "place_order",
        {
            "symbol": "SAP",
            "side": "buy",
            "quantity": 5,
            "order_type": "market",
            "price": None,
            "client_order_id": "w-1",
        },
        correlation_id="place-1",
    )

    assert response["type"] == "command_response" and response["correlation_id"] == "place-1"
    assert response["data"]["status"] == "success", response
    result = response["data"]["result"]
    # the spec's fields, and the message's code with its figures for a client's own wording
    assert set(result) == {"order_id", "status", "message", "message_code", "message_params"}
    assert result["status"] == "filled" and result["message"]
    assert (result["message_code"], result["message_params"]["symbol"]) == ("order_placed_filled", "SAP")
    created = valid(await event(client, "trading.order_created"))
    filled = valid(await event(client, "trading.order_filled"))
    assert created["order_id"] == filled["order_id"] == result["order_id"]
    assert (filled["filled_quantity"], filled["fill_price"], filled["fees"]) == (5, 200, D("1.00"))
    changed = valid(await event(client, "portfolio.position_changed"))
    assert (changed["symbol"], changed["quantity"]) == ("SAP", 5)
    valid(await event(client, "portfolio.value_changed"))
    order = await Order.objects.aget(pk=int(result["order_id"]))
    assert (order.client_id, order.correlation_id, order.client_order_id) == (
        client.received[0]["data"]["client_id"],
        "place-1",
        "w-1",
    )


async def test_limit_order_rests_then_fills_when_a_tick_crosses_it(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader, *TRADING_EVENTS)
    response = await client.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": "3", "order_type": "limit", "price": D("190.5")}
    )
    result = response["data"]["result"]
    assert result["status"] == "open"
    assert valid(await event(client, "trading.order_created"))["status"] == "open"

    await sync_to_async(resting_orders_execute)(instrument=sap, price=D("191"))
    await sync_to_async(resting_orders_execute)(instrument=sap, price=D("190"))
    filled = valid(await client.nothing_before({"event": "trading.order_filled"}))  # nothing at 191
    assert (filled["order_id"], filled["fill_price"], filled["status"]) == (result["order_id"], 190, "filled")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"symbol": None}, "validation_error"),
        ({"symbol": ""}, "validation_error"),
        ({"symbol": 42}, "validation_error"),
        ({"symbol": "NOPE"}, "unknown_symbol"),
        ({"side": "hold"}, "invalid_side"),
        ({"side": None}, "validation_error"),
        ({"order_type": "iceberg"}, "invalid_order_type"),
        ({"quantity": 0}, "invalid_quantity"),
        ({"quantity": -5}, "invalid_quantity"),
        ({"quantity": "abc"}, "validation_error"),
        ({"quantity": True}, "validation_error"),
        ({"quantity": [1]}, "validation_error"),
        ({"quantity": None}, "validation_error"),
        ({"quantity": 10**7}, "invalid_quantity"),
        ({"quantity": 10**15}, "validation_error"),
        ({"quantity": D("1.000001")}, "validation_error"),
        ({"order_type": "limit"}, "price_required"),
        ({"order_type": "limit", "price": D("199.123456")}, "validation_error"),
        ({"order_type": "limit", "price": "cheap"}, "validation_error"),
        ({"order_type": "limit", "price": -1}, "invalid_price"),
        ({"order_type": "stop"}, "stop_price_required"),
        ({"price": 200}, "invalid_price"),
        ({"client_order_id": "bad id with spaces"}, "invalid_client_order_id"),
        ({"portfolio_id": "x"}, "validation_error"),
    ],
)
async def test_invalid_place_order_gets_error_response_and_writes_nothing(
    ws_connect, trader, portfolio, sap, changes, code
):
    client = await connect(ws_connect, trader, *TRADING_EVENTS)
    data = {"symbol": "SAP", "side": "buy", "quantity": 5, "order_type": "market"}
    data.update(changes)
    data = {key: value for key, value in data.items() if not (key == "symbol" and value is None)}

    response = await client.command("place_order", data)

    assert response["data"]["status"] == "error", response
    assert response["data"]["result"]["code"] == code
    assert response["data"]["result"]["error"]
    assert await count(Order) == 0 and await count(OrderAudit) == 0
    await no_event_up_to_a_marker(client)


async def test_order_beyond_cash_is_refused_with_reason_and_order_id(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader, *TRADING_EVENTS)

    response = await client.command("place_order", {"symbol": "SAP", "side": "buy", "quantity": 100})

    result = response["data"]["result"]
    assert (response["data"]["status"], result["code"], result["status"]) == ("error", "insufficient_cash", "rejected")
    failed = valid(await event(client, "trading.order_failed"))
    assert (failed["order_id"], failed["error_code"]) == (result["order_id"], "insufficient_cash")
    assert await count(Position) == 0


async def test_staff_without_trading_permission_may_not_place_orders(ws_connect, staff_user, sap):
    client = await connect(ws_connect, staff_user)

    response = await client.command("place_order", {"symbol": "SAP", "side": "buy", "quantity": 1})

    assert response["data"]["result"]["code"] == "permission_denied"
    assert await count(Order) == 0


async def test_trader_without_portfolio_gets_not_found(ws_connect, other_trader, sap):
    client = await connect(ws_connect, other_trader)

    response = await client.command("place_order", {"symbol": "SAP", "side": "buy", "quantity": 1})

    assert response["data"]["result"]["code"] == "no_portfolio"


async def test_events_of_a_portfolio_reach_only_its_members(
    ws_connect, trader, other_trader, portfolio, other_portfolio, sap
):
    mine = await connect(ws_connect, trader, *TRADING_EVENTS)
    theirs = await connect(ws_connect, other_trader, *TRADING_EVENTS)

    await mine.command("place_order", {"symbol": "SAP", "side": "buy", "quantity": 1})
    await event(mine, "trading.order_filled")

    await no_event_up_to_a_marker(theirs)


async def test_cancel_order_cancels_and_announces(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader, *TRADING_EVENTS)
    placed = await client.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": 2, "order_type": "limit", "price": 150}
    )
    order_id = placed["data"]["result"]["order_id"]

    response = await client.command("cancel_order", {"order_id": order_id}, correlation_id="cancel-1")

    assert response["data"]["status"] == "success"
    assert (response["data"]["result"]["order_id"], response["data"]["result"]["status"]) == (order_id, "cancelled")
    cancelled = valid(await event(client, "trading.order_cancelled"))
    assert (cancelled["order_id"], cancelled["remaining_quantity"]) == (order_id, 2)
    assert await count(OrderAudit, order_id=int(order_id), action="cancel", correlation_id="cancel-1") == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [({}, "validation_error"), ({"order_id": "abc"}, "validation_error"), ({"order_id": 999999}, "order_not_found")],
)
async def test_invalid_cancel_order_gets_error(ws_connect, trader, portfolio, data, code):
    client = await connect(ws_connect, trader)

    response = await client.command("cancel_order", data)

    assert (response["data"]["status"], response["data"]["result"]["code"]) == ("error", code)


async def test_another_users_order_can_be_neither_cancelled_nor_modified(
    ws_connect, trader, other_trader, portfolio, other_portfolio, sap
):
    owner = await connect(ws_connect, other_trader)
    placed = await owner.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": 2, "order_type": "limit", "price": 150}
    )
    order_id = placed["data"]["result"]["order_id"]
    intruder = await connect(ws_connect, trader)

    cancel = await intruder.command("cancel_order", {"order_id": order_id})
    modify = await intruder.command("modify_order", {"order_id": order_id, "quantity": 1})

    assert cancel["data"]["result"]["code"] == modify["data"]["result"]["code"] == "order_not_found"
    order = await Order.objects.aget(pk=int(order_id))
    assert (order.status, order.quantity) == (OrderStatus.OPEN, 2)
    assert await count(OrderAudit, order_id=order.pk) == 1


async def test_modify_order_changes_price_and_quantity(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader)
    placed = await client.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": 2, "order_type": "limit", "price": 150}
    )
    order_id = placed["data"]["result"]["order_id"]

    response = await client.command("modify_order", {"order_id": order_id, "quantity": 4, "price": D("155.5")})

    assert response["data"]["status"] == "success"
    order = await Order.objects.aget(pk=int(order_id))
    assert (order.quantity, order.price) == (4, D("155.5"))


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, "nothing_to_modify"),
        ({"quantity": 0}, "invalid_quantity"),
        ({"price": "x"}, "validation_error"),
        ({"price": D("1.123456")}, "validation_error"),
    ],
)
async def test_invalid_modify_order_gets_error_and_changes_nothing(ws_connect, trader, portfolio, sap, changes, code):
    client = await connect(ws_connect, trader)
    placed = await client.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": 2, "order_type": "limit", "price": 150}
    )
    order_id = placed["data"]["result"]["order_id"]

    response = await client.command("modify_order", {"order_id": order_id, **changes})

    assert (response["data"]["status"], response["data"]["result"]["code"]) == ("error", code)
    order = await Order.objects.aget(pk=int(order_id))
    assert (order.quantity, order.price) == (2, 150)


async def place_limit(client, quantity=2, price=150):
    placed = await client.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": quantity, "order_type": "limit", "price": price}
    )
    return placed["data"]["result"]["order_id"]


async def test_cancel_order_repeated_with_its_request_id_answers_success_and_cancels_once(
    ws_connect, trader, portfolio, sap
):
    # given an order cancelled under request id "c-1"
    client = await connect(ws_connect, trader, *TRADING_EVENTS)
    order_id = await place_limit(client)
    first = await client.command("cancel_order", {"order_id": order_id, "request_id": "c-1"}, correlation_id="cancel-1")

    # when the cancel is sent again as it was (the first answer was lost)
    repeat = await client.command(
        "cancel_order", {"order_id": order_id, "request_id": "c-1"}, correlation_id="cancel-1"
    )

    # then both answers report the cancelled order, and one cancellation was announced: a
    # cancel of another order after the repeat is the next one the client sees
    assert first["data"] == repeat["data"]
    assert repeat["data"]["status"] == "success" and repeat["data"]["result"]["status"] == "cancelled"
    marker_id = await place_limit(client)
    await client.command("cancel_order", {"order_id": marker_id, "request_id": "c-2"})
    assert valid(await event(client, "trading.order_cancelled"))["order_id"] == order_id
    assert valid(await event(client, "trading.order_cancelled"))["order_id"] == marker_id
    assert await count(OrderAudit, order_id=int(order_id), action="cancel") == 1


async def test_modify_order_repeated_with_its_request_id_applies_once(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader)
    order_id = await place_limit(client)
    change = {"order_id": order_id, "quantity": 4, "request_id": "m-1"}

    first = await client.command("modify_order", change)
    await client.command("modify_order", {"order_id": order_id, "quantity": 3})
    repeat = await client.command("modify_order", change)

    assert first["data"]["status"] == repeat["data"]["status"] == "success"
    assert repeat["data"]["result"] == {**first["data"]["result"], "status": "open"}
    order = await Order.objects.aget(pk=int(order_id))
    assert order.quantity == 3
    assert await count(OrderAudit, order_id=order.pk, action="modify") == 2


async def test_request_id_reused_with_other_parameters_is_a_conflict(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader)
    order_id = await place_limit(client)
    await client.command("modify_order", {"order_id": order_id, "quantity": 4, "request_id": "m-1"})

    response = await client.command("modify_order", {"order_id": order_id, "quantity": 5, "request_id": "m-1"})
    cancel = await client.command("cancel_order", {"order_id": order_id, "request_id": "m-1"})

    assert (response["data"]["status"], response["data"]["result"]["code"]) == ("error", "request_id_conflict")
    assert cancel["data"]["result"]["code"] == "request_id_conflict"
    order = await Order.objects.aget(pk=int(order_id))
    assert (order.quantity, order.status) == (4, OrderStatus.OPEN)


@pytest.mark.parametrize("request_id", ["", "a b", "x" * 65, 17, ["r"]])
@pytest.mark.parametrize("name", ["cancel_order", "modify_order"])
async def test_invalid_request_id_gets_an_error_and_changes_nothing(
    ws_connect, trader, portfolio, sap, name, request_id
):
    client = await connect(ws_connect, trader)
    order_id = await place_limit(client)

    response = await client.command(name, {"order_id": order_id, "quantity": 4, "request_id": request_id})

    assert response["data"]["status"] == "error"
    assert response["data"]["result"]["code"] in {"validation_error", "invalid_request_id"}
    assert response["data"]["result"]["field"] == "request_id"
    order = await Order.objects.aget(pk=int(order_id))
    assert (order.quantity, order.status) == (2, OrderStatus.OPEN)
