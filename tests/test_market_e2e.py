"""The feed end to end over TCP: a real daphne process, a real client that only subscribes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from realtime.events import get_schema
from realtime.protocol import decode, encode
from tests.fixtures.market import make_instrument
from tests.fixtures.servers import BASE_DIR, server_env, start_daphne
from tests.fixtures.ws import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def subscribe_and_collect_ticks(ws_url: str, cookie: bytes, count: int, timeout: float = 20) -> list[dict]:
    origin = "http://" + ws_url.split("//", 1)[1].split("/", 1)[0]  # the page's origin: scheme, host, port
    headers = [("Cookie", cookie.decode()), ("Origin", origin)]
    async with connect(ws_url + "/", additional_headers=headers, open_timeout=10) as socket:
        welcome = decode(await asyncio.wait_for(socket.recv(), 5))
        assert welcome["event"] == "connection.established"
        await socket.send(encode({"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.price_update"]}}))
        ticks = []
        async with asyncio.timeout(timeout):
            while len(ticks) < count:
                message = decode(await socket.recv())
                if message["event"] == "market.price_update":
                    ticks.append(message)
        return ticks


def without_redis(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    env.pop("REDIS_URL", None)
    return env


async def test_daphne_with_in_process_feed_streams_ticks_to_a_client_that_only_subscribes(staff_user, tmp_path):
    # given SAP with a price, and daphne on the in-memory layer with its own feed switched on
    await sync_to_async(make_instrument)()
    cookie = await sync_to_async(session_cookie)(staff_user)
    env = without_redis(server_env(MARKET_FEED_IN_PROCESS="1", MARKET_FEED_INTERVAL="0.1"))
    server = await sync_to_async(start_daphne)(tmp_path, env=env)
    try:
        # when a client connects and subscribes to price updates, and asks for nothing else
        ticks = await subscribe_and_collect_ticks(server.ws_url, cookie, count=3)
    finally:
        await sync_to_async(server.stop)()
    # then simulated SAP ticks arrive, each one continuing from the one before
    for tick in ticks:
        get_schema("market.price_update").validate(tick["data"])
    assert {t["data"]["symbol"] for t in ticks} == {"SAP"}
    assert ticks[1]["data"]["previous_price"] == ticks[0]["data"]["price"]
    assert ticks[2]["data"]["previous_price"] == ticks[1]["data"]["price"]


async def test_feed_process_on_redis_reaches_a_client_of_a_separate_daphne(staff_user, tmp_path, private_redis):
    # given SAP, a daphne on a Redis layer (no feed of its own) and a separate market_feed process
    await sync_to_async(make_instrument)()
    cookie = await sync_to_async(session_cookie)(staff_user)
    env = server_env(REDIS_URL=private_redis.url, MARKET_FEED_IN_PROCESS="1")
    server = await sync_to_async(start_daphne)(tmp_path, env=env)
    feed = None
    try:
        collecting = asyncio.create_task(subscribe_and_collect_ticks(server.ws_url, cookie, count=2))
        await asyncio.sleep(1.0)  # let the client subscribe before the feed starts (no history replay)
        # when the feed process runs
        feed = subprocess.Popen(
            [sys.executable, "manage.py", "market_feed", "--interval", "0.2", "--ticks", "40", "--symbols", "SAP"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # then its ticks reach the client through Redis and the gateway
        ticks = await collecting
    finally:
        if feed is not None and feed.poll() is None:
            feed.terminate()
        if feed is not None:
            await sync_to_async(feed.wait)()
        await sync_to_async(server.stop)()
    assert [t["data"]["symbol"] for t in ticks] == ["SAP", "SAP"]
    assert "price feed started" not in server.log()  # the gateway itself never ran a feed
    assert "price feed not started in this gateway process" in server.log()
    assert feed.returncode == 0, feed.stdout.read().decode()
