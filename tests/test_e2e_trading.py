"""End to end: a spec-format client trades SAP against a real daphne process and finds the order over HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect

from realtime.events import get_schema
from tests.fixtures.ws import session_cookie
from trading.models import Order, OrderStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def decode(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


def http_get(url: str, cookie: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_spec_client_places_market_order_for_sap_and_sees_it_filled_and_listed(daphne_server, trader, portfolio, sap):
    cookie = session_cookie(trader).decode()

    async def scenario() -> dict[str, dict]:
        seen: dict[str, dict] = {}
        async with connect(daphne_server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=daphne_server.http_url) as ws:
            assert decode(await ws.recv())["event"] == "connection.established"
            await ws.send(json.dumps({
                "type": "subscription", "event": "subscribe",
                "data": {"event_types": ["trading.order_created", "trading.order_filled"]},
                "timestamp": "2026-11-23T10:00:00.000Z",
            }))
            await ws.send(json.dumps({
                "type": "user", "event": "place_order",
                "data": {"symbol": "SAP", "side": "buy", "quantity": 3, "order_type": "market", "price": None},
                "timestamp": "2026-11-23T10:00:01.000Z", "correlation_id": "e2e-order-1",
            }))
            wanted = {"place_order.response", "trading.order_created", "trading.order_filled"}
            async with asyncio.timeout(10):
                while not wanted <= seen.keys():
                    message = decode(await ws.recv())
                    seen.setdefault(message["event"], message)
        return seen

    seen = asyncio.run(scenario())

    response = seen["place_order.response"]
    assert (response["type"], response["correlation_id"], response["data"]["status"]) == ("command_response", "e2e-order-1", "success")
    order_id = response["data"]["result"]["order_id"]
    assert response["data"]["result"]["status"] == "filled"
    for name in ("trading.order_created", "trading.order_filled"):
        get_schema(name).validate(seen[name]["data"])
        assert seen[name]["data"]["order_id"] == order_id and seen[name]["type"] == "trading"
    assert seen["trading.order_filled"]["data"]["fill_price"] == 200
    order = Order.objects.get(pk=int(order_id))
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 3)

    status, body = http_get(f"{daphne_server.http_url}/api/trading/orders/history", cookie)
    history = json.loads(body)
    assert status == 200 and [row["id"] for row in history["results"]] == [int(order_id)]
    assert history["results"][0]["status"] == "filled"

    status, page = http_get(f"{daphne_server.http_url}/admin/trading/order/", cookie)
    assert status == 200 and f"/admin/trading/order/{order_id}/change/".encode() in page
