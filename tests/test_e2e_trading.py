"""End to end: a spec-format client trades SAP against a real daphne process and finds the order over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import urllib.request
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect

from realtime.wire.events import get_schema
from tests.fixtures.servers import BASE_DIR
from tests.fixtures.ws import session_cookie
from trading.models import Order, OrderAudit, OrderStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def decode(text: str | bytes) -> dict:
    return json.loads(text, parse_float=Decimal)


def http_get(url: str, cookie: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_spec_client_places_market_order_for_sap_and_sees_it_filled_and_listed(daphne_server, trader, portfolio, sap):
    cookie = session_cookie(trader).decode()

    async def scenario() -> dict[str, dict]:
        seen: dict[str, dict] = {}
        async with connect(
            daphne_server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=daphne_server.http_url
        ) as ws:
            assert decode(await ws.recv())["event"] == "connection.established"
            await ws.send(
                json.dumps(
                    {
                        "type": "subscription",
                        "event": "subscribe",
                        "data": {"event_types": ["trading.order_created", "trading.order_filled"]},
                        "timestamp": "2026-11-23T10:00:00.000Z",
                    }
                )
            )
            await ws.send(
                json.dumps(
                    {
                        "type": "user",
                        "event": "place_order",
                        "data": {"symbol": "SAP", "side": "buy", "quantity": 3, "order_type": "market", "price": None},
                        "timestamp": "2026-11-23T10:00:01.000Z",
                        "correlation_id": "e2e-order-1",
                    }
                )
            )
            wanted = {"place_order.response", "trading.order_created", "trading.order_filled"}
            async with asyncio.timeout(10):
                while not wanted <= seen.keys():
                    message = decode(await ws.recv())
                    seen.setdefault(message["event"], message)
        return seen

    seen = asyncio.run(scenario())

    response = seen["place_order.response"]
    assert (response["type"], response["correlation_id"], response["data"]["status"]) == (
        "command_response",
        "e2e-order-1",
        "success",
    )
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


def test_desk_client_re_sends_an_order_whose_answer_was_lost_and_it_is_placed_once(
    daphne_server, trader, portfolio, sap
):
    # given the desk's client, connected through a proxy that will lose the server's next answer
    node = shutil.which("node")
    assert node, "node is needed for this test (make test installs the node packages)"
    env = {**os.environ, "GATEWAY_PORT": str(daphne_server.port), "GATEWAY_COOKIE": session_cookie(trader).decode()}

    # when it places a market order, the connection is cut after the server answered and before
    # the answer reached the client, and the client reconnects
    run = subprocess.run(
        [node, "tests/clients/lost-answer.mjs"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )

    # then the client re-sent the same command and got the order's final state, and the
    # server holds exactly one order for it, placed once
    assert run.stdout.strip(), f"no report (exit {run.returncode})\n{run.stderr}\n{daphne_server.log()[-3000:]}"
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["ok"], json.dumps(report, indent=1)
    assert (report["cuts"], report["connections"]) == (1, 2)
    first, second = report["sends"]
    assert first == second and first["event"] == "place_order"
    assert first["data"]["client_order_id"] == report["client_order_id"]
    orders = list(Order.objects.all())
    assert [order.client_order_id for order in orders] == [report["client_order_id"]]
    assert (orders[0].status, orders[0].filled_quantity) == (OrderStatus.FILLED, 3)
    assert OrderAudit.objects.filter(action="place").count() == 1
    assert report["result"] == {
        "order_id": str(orders[0].pk),
        "status": "filled",
        "message": "Order placed and filled.",
        "message_code": "order_placed_filled",
        "message_params": {"order_id": str(orders[0].pk), "symbol": "SAP"},
    }
