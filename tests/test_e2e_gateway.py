"""End to end: a real daphne process, driven over TCP by a spec-format client with a session cookie."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime.delivery.messages import build_event_message
from tests.fixtures.servers import decode_frame, recv_event
from tests.fixtures.ws import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_spec_client_session_against_real_daphne(daphne_server, staff_user):
    cookie = session_cookie(staff_user).decode()
    origin = daphne_server.http_url

    async def scenario() -> None:
        async with connect(daphne_server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=origin) as ws:
            welcome = decode_frame(await ws.recv())
            assert (welcome["type"], welcome["event"]) == ("system", "connection.established")
            client_id = welcome["data"]["client_id"]

            await ws.send(
                json.dumps(
                    {
                        "type": "subscription",
                        "event": "subscribe",
                        "data": {"event_types": ["market.price_update", "portfolio.nope"]},
                        "timestamp": "2026-11-23T10:00:00.000Z",
                    }
                )
            )
            confirmed = await recv_event(ws, "subscription.confirmed")
            assert confirmed["data"]["event_type"] == "market.price_update"
            assert confirmed["data"]["client_id"] == client_id
            refused = await recv_event(ws, "unknown_event_type")
            assert refused["type"] == "error"

            await ws.send(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}))
            assert (await recv_event(ws, "pong"))["type"] == "system"

            await ws.send(
                json.dumps({"type": "user", "event": "get_connection_info", "data": {}, "correlation_id": "abc123xyz"})
            )
            response = await recv_event(ws, "get_connection_info.response")
            assert response["correlation_id"] == "abc123xyz"
            assert response["target_client"] == client_id
            assert response["data"]["status"] == "success"

            await ws.send("this is not json")
            error = await recv_event(ws, "invalid_message_format")
            assert error["data"]["error"] == "Invalid JSON format"

        # The spec client reconnects to /ws/<its id> and keeps it.
        async with connect(
            f"{daphne_server.ws_url}/{client_id}", additional_headers={"Cookie": cookie}, origin=origin
        ) as ws:
            assert decode_frame(await ws.recv())["data"]["client_id"] == client_id

    asyncio.run(scenario())


def test_anonymous_and_foreign_origin_handshakes_are_refused_over_tcp(daphne_server, staff_user):
    cookie = session_cookie(staff_user).decode()

    async def handshake_status(**kwargs) -> int:
        try:
            async with connect(daphne_server.ws_url + "/", **kwargs):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    async def scenario() -> None:
        assert await handshake_status(origin=daphne_server.http_url) == 403
        assert await handshake_status(origin="http://evil.example", additional_headers={"Cookie": cookie}) == 403
        assert await handshake_status(additional_headers={"Cookie": cookie}) == 403
        assert await handshake_status(origin=daphne_server.http_url, additional_headers={"Cookie": cookie}) == 101

    asyncio.run(scenario())


def test_oversized_frame_is_refused_by_daphne_while_a_neighbour_stays_responsive(daphne_server, staff_user):
    cookie = session_cookie(staff_user).decode()
    origin = daphne_server.http_url

    async def scenario() -> None:
        async with connect(
            daphne_server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=origin
        ) as neighbour:
            await neighbour.recv()
            async with connect(
                daphne_server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=origin, max_size=None
            ) as ws:
                await ws.recv()
                await ws.send("x" * (2 * 1024 * 1024))
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(5):
                        while True:
                            await ws.recv()
                # autobahn (inside daphne) drops a connection whose frame is over the limit
                assert ws.close_code in (1006, 1009)
            await neighbour.send(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}))
            assert (await recv_event(neighbour, "pong"))["type"] == "system"

    asyncio.run(scenario())


def test_events_published_on_the_channel_layer_reach_a_subscribed_client(redis_server, staff_user):
    server, layer = redis_server
    cookie = session_cookie(staff_user).decode()

    async def scenario() -> None:
        async with connect(server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=server.http_url) as ws:
            await ws.recv()
            await ws.send(
                json.dumps(
                    {"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.price_update"]}}
                )
            )
            await recv_event(ws, "subscription.confirmed")
            message = build_event_message(
                "market.price_update",
                {
                    "symbol": "SAP",
                    "isin": "DE0007164600",
                    "price": Decimal("187.35"),
                    "previous_price": Decimal("187.20"),
                    "change": Decimal("0.15"),
                    "change_percent": Decimal("0.08"),
                    "volume": 1500,
                    "timestamp": "2026-11-23T10:00:00.000Z",
                    "source": "e2e",
                },
            )
            await layer.group_send(message["group"], message)
            raw_seen = []
            async with asyncio.timeout(5):
                while True:
                    raw = await ws.recv()
                    raw_seen.append(raw)
                    if '"market.price_update"' in raw:
                        break
            assert '"price":187.35' in raw_seen[-1]
            update = decode_frame(raw_seen[-1])
            assert update["type"] == "market" and update["data"]["symbol"] == "SAP"
            assert set(update) == {
                "type",
                "event",
                "data",
                "timestamp",
                "correlation_id",
                "source_service",
                "target_client",
            }

    asyncio.run(scenario())
