"""The feed end to end over TCP: a real daphne process, a real client that only subscribes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from realtime.wire.events import get_schema
from tests.fixtures.bus import LiveClient, live_connect
from tests.fixtures.market import make_instrument
from tests.fixtures.servers import BASE_DIR, in_process_feed_env, server_env, start_daphne
from tests.fixtures.ws import login_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def subscribed_client(server, cookie: bytes) -> LiveClient:
    """Connect a real client and subscribe it to price updates (confirmed, so no tick after this is missed)."""
    client = await live_connect(server, cookie)
    await client.subscribe("market.price_update")
    return client


async def ticks(client: LiveClient, count: int) -> list[dict]:
    return [await client.receive_event("market.price_update", timeout=20) for _ in range(count)]


async def test_daphne_with_in_process_feed_streams_ticks_to_a_client_that_only_subscribes(staff_user, tmp_path):
    # given SAP with a price, and daphne on the in-memory layer with its own feed switched on
    await database_sync_to_async(make_instrument)()
    cookie = await login_cookie(staff_user)
    env = in_process_feed_env(MARKET_FEED_INTERVAL="0.1")
    server = await sync_to_async(start_daphne)(tmp_path, env=env)
    try:
        # when a client connects and subscribes to price updates, and asks for nothing else
        client = await subscribed_client(server, cookie)
        received = await ticks(client, 3)
        await client.close()
    finally:
        await sync_to_async(server.stop)()
    # then simulated SAP ticks arrive, each one continuing from the one before
    for tick in received:
        get_schema("market.price_update").validate(tick["data"])
    assert {t["data"]["symbol"] for t in received} == {"SAP"}
    assert received[1]["data"]["previous_price"] == received[0]["data"]["price"]
    assert received[2]["data"]["previous_price"] == received[1]["data"]["price"]


async def test_feed_process_on_redis_reaches_a_client_of_a_separate_daphne(staff_user, tmp_path, own_redis):
    # given SAP, a daphne on a Redis layer (no feed of its own) and a separate market_feed process
    await database_sync_to_async(make_instrument)()
    cookie = await login_cookie(staff_user)
    env = server_env(REDIS_URL=own_redis.url, MARKET_FEED_IN_PROCESS="1")
    server = await sync_to_async(start_daphne)(tmp_path, env=env)
    feed = None
    try:
        client = await subscribed_client(server, cookie)  # before the feed starts: there is no replay here
        # when the feed process runs
        feed = subprocess.Popen(
            [sys.executable, "manage.py", "market_feed", "--interval", "0.2", "--ticks", "40", "--symbols", "SAP"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # then its ticks reach the client through Redis and the gateway
        received = await ticks(client, 2)
        await client.close()
    finally:
        if feed is not None and feed.poll() is None:
            feed.terminate()
        if feed is not None:
            await sync_to_async(feed.wait)()
        await sync_to_async(server.stop)()
    assert [t["data"]["symbol"] for t in received] == ["SAP", "SAP"]
    assert "price feed started" not in server.log()  # the gateway itself never ran a feed
    assert "price feed not started in this gateway process" in server.log()
    assert feed.returncode == 0, feed.stdout.read().decode()
