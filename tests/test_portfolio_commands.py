"""The portfolio commands over the WebSocket (refresh_portfolio, update_position): success and error paths, and their events."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from portfolio.models import Position, PositionCorrection
from tests.fixtures.commands import connect, count, event, no_event_up_to_a_marker, valid

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


async def test_refresh_portfolio_returns_and_sends_the_portfolio(ws_connect, trader, portfolio_with_position):
    client = await connect(ws_connect, trader, "portfolio.update")

    response = await client.command("refresh_portfolio", {}, correlation_id="refresh-1")

    assert response["data"]["status"] == "success"
    [snapshot] = response["data"]["result"]["portfolios"]
    assert (snapshot["portfolio_id"], snapshot["total_value"], snapshot["cash"]) == (
        str(portfolio_with_position.pk),
        12000,
        10000,
    )
    update = await event(client, "portfolio.update")
    data = valid(update)
    assert data["portfolio_id"] == snapshot["portfolio_id"] and update["correlation_id"] == "refresh-1"


async def test_refresh_portfolio_revalues_with_trigger_reason_manual_refresh(
    ws_connect, trader, portfolio_with_position, sap
):
    # given the portfolio last announced at 11 000 while SAP has since moved to 200 (12 000)
    await sync_to_async(type(portfolio_with_position).objects.filter(pk=portfolio_with_position.pk).update)(
        last_value=D("11000")
    )
    client = await connect(ws_connect, trader, "portfolio.value_changed")

    # when the trader refreshes
    response = await client.command("refresh_portfolio", {}, correlation_id="refresh-2")

    # then the members hear the revaluation, caused by the refresh
    assert response["data"]["status"] == "success"
    changed = await event(client, "portfolio.value_changed")
    data = valid(changed)
    assert (data["trigger_reason"], data["previous_value"], data["current_value"], data["change"]) == (
        "manual_refresh",
        11000,
        12000,
        1000,
    )
    assert changed["correlation_id"] == "refresh-2"
    await portfolio_with_position.arefresh_from_db()
    assert portfolio_with_position.last_value == D("12000.00")


async def test_refresh_of_someone_elses_portfolio_is_not_found(ws_connect, trader, portfolio, other_portfolio):
    client = await connect(ws_connect, trader, "portfolio.update")

    response = await client.command("refresh_portfolio", {"portfolio_id": other_portfolio.pk})

    assert response["data"]["result"]["code"] == "portfolio_not_found"
    await no_event_up_to_a_marker(client)


async def test_update_position_by_a_supervisor_corrects_the_traders_position_and_audits(
    ws_connect, trader, supervisor, portfolio_with_position, sap
):
    desk = await connect(ws_connect, trader, "portfolio.position_changed")
    client = await connect(ws_connect, supervisor)

    response = await client.command(
        "update_position",
        {"symbol": "SAP", "quantity": 7, "reason": "Depotabgleich", "portfolio_id": portfolio_with_position.pk},
        correlation_id="fix-1",
    )

    assert response["data"]["status"] == "success", response
    assert (response["data"]["result"]["previous_quantity"], response["data"]["result"]["quantity"]) == (10, 7)
    changed = valid(await event(desk, "portfolio.position_changed"))  # the members are told
    assert (changed["action"], changed["quantity"]) == ("update", 7)
    correction = await PositionCorrection.objects.aget()
    assert (correction.user_id, correction.correlation_id, correction.client_id, correction.reason) == (
        supervisor.pk,
        "fix-1",
        client.received[0]["data"]["client_id"],
        "Depotabgleich",
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"symbol": "SAP", "quantity": 7}, "validation_error"),
        ({"symbol": "SAP", "reason": "x"}, "validation_error"),
        ({"symbol": "SAP", "quantity": -1, "reason": "x"}, "invalid_quantity"),
        ({"symbol": "XXX", "quantity": 1, "reason": "x"}, "unknown_symbol"),
    ],
)
async def test_invalid_update_position_changes_nothing(
    ws_connect, supervisor, portfolio_with_position, sap, data, code
):
    client = await connect(ws_connect, supervisor)

    response = await client.command("update_position", {**data, "portfolio_id": portfolio_with_position.pk})

    assert (response["data"]["status"], response["data"]["result"]["code"]) == ("error", code)
    assert await count(PositionCorrection) == 0
    assert (await Position.objects.aget()).quantity == 10


async def test_refresh_of_a_named_portfolio_returns_only_that_one(ws_connect, trader, portfolio_with_position):
    client = await connect(ws_connect, trader)

    response = await client.command("refresh_portfolio", {"portfolio_id": str(portfolio_with_position.pk)})

    assert [p["portfolio_id"] for p in response["data"]["result"]["portfolios"]] == [str(portfolio_with_position.pk)]
