"""A gateway behind Redis Sentinel rides out a failover of the primary under traffic.

The test runs a primary, one replica and three sentinels of its own, a gateway process with
REDIS_SENTINELS, a price feed publishing on the bus and a trader's client; then it kills the
primary and checks what docs/scale-out.md ("Redis failover") promises.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from redis.exceptions import RedisError
from websockets.exceptions import ConnectionClosed

from aktienanalyse import redis as redis_locations
from realtime.wire.protocol import decode
from tests.fixtures.bus import LiveClient, live_connect, spec_price_update
from tests.fixtures.servers import RedisServer, SentinelServer, server_env, start_daphne
from tests.fixtures.waiting import aeventually, eventually
from tests.fixtures.ws import login_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MASTER = "mymaster"
PRICE = "market.price_update"
RESUME_WITHIN = 5.0  # seconds from the new primary's election to the next price delivered


@dataclass
class SentinelRedis:
    primary: RedisServer
    replica: RedisServer
    sentinels: list[SentinelServer]

    @property
    def setting(self) -> str:
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def master_port(self) -> int | None:
        """The primary's port as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            client = redis.Redis(port=sentinel.port, socket_timeout=0.5)
            try:
                address = client.sentinel_get_master_addr_by_name(MASTER)
                return int(address[1]) if address else None
            except RedisError:
                continue
            finally:
                client.close()
        return None

    def ready(self) -> bool:
        """Every sentinel knows the replica and the two other sentinels: a failover can be voted."""
        for sentinel in self.sentinels:
            client = redis.Redis(port=sentinel.port, socket_timeout=0.5)
            try:
                if len(client.sentinel_slaves(MASTER)) != 1 or len(client.sentinel_sentinels(MASTER)) != 2:
                    return False
            finally:
                client.close()
        return True


@pytest.fixture
def sentinel_redis(tmp_path) -> Iterator[SentinelRedis]:
    primary = RedisServer(tmp_path)
    primary.start()
    replica = RedisServer(tmp_path, options=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    sentinels = [
        SentinelServer(tmp_path, primary, master=MASTER, down_after_ms=1000, failover_timeout_ms=3000) for _ in range(3)
    ]
    setup = SentinelRedis(primary, replica, sentinels)
    try:
        for sentinel in sentinels:
            sentinel.start()
        eventually(setup.ready, timeout=30, interval=0.2, message="sentinels know the replica and each other")
        yield setup
    finally:
        for server in (*sentinels, replica, primary):
            server.kill()


class Feed:
    """Publishes a price on the bus every 50 ms through Sentinel, as a market data service would."""

    def __init__(self, location: str, channel: str):
        self.client = redis_locations.async_client(location, socket_timeout=1, socket_connect_timeout=1)
        self.channel = channel
        self.symbol = "F" + uuid.uuid4().hex[:8].upper()
        self.published: dict[int, float] = {}  # price number -> when Redis took it
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        n = 0
        while True:
            n += 1
            message = spec_price_update(self.symbol, 100.0 + n / 100)
            message["data"]["volume"] = n
            try:
                await self.client.publish(self.channel, json.dumps(message))
                self.published[n] = time.monotonic()
            except (RedisError, OSError):
                pass  # the primary is gone: the next publish asks Sentinel again
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        await self.client.aclose()


class Recorder:
    """Reads every frame a client gets, with when it arrived."""

    def __init__(self, client: LiveClient):
        self.client = client
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                self.frames.append((time.monotonic(), decode(await self.client.ws.recv())))
        except ConnectionClosed:
            return

    def find(self, predicate) -> dict[str, Any] | None:
        return next((frame for _, frame in self.frames if predicate(frame)), None)

    def prices(self, symbol: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, f) for at, f in self.frames if f["event"] == PRICE and f["data"]["symbol"] == symbol]

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


async def order_answered(recorder: Recorder, correlation_id: str, timeout: float = 15) -> dict[str, Any]:
    """Place a market order for 1 SAP; return its (successful) answer."""
    await recorder.client.send(
        {
            "type": "user",
            "event": "place_order",
            "correlation_id": correlation_id,
            "data": {"symbol": "SAP", "side": "buy", "quantity": 1, "order_type": "market", "price": None},
        }
    )
    response = await aeventually(
        lambda: recorder.find(
            lambda f: f["event"] == "place_order.response" and f.get("correlation_id") == correlation_id
        ),
        timeout=timeout,
        message=f"answer to {correlation_id}",
    )
    assert response["data"]["status"] == "success", response
    return response


def order_event(recorder: Recorder, name: str, order_id: Any) -> dict[str, Any] | None:
    return recorder.find(lambda f: f["event"] == name and f["data"]["order_id"] == order_id)


async def place_order(recorder: Recorder, correlation_id: str, timeout: float = 15) -> dict[str, dict[str, Any]]:
    """Place a market order for 1 SAP; return its response and its created and filled events."""
    response = await order_answered(recorder, correlation_id, timeout)
    order_id = response["data"]["result"]["order_id"]
    events = {"place_order.response": response}
    for name in ORDER_EVENTS:
        events[name] = await aeventually(
            functools.partial(order_event, recorder, name, order_id),
            timeout=timeout,
            message=f"{name} of order {order_id}",
        )
    return events


ORDER_EVENTS = ("trading.order_created", "trading.order_filled")


def numbering_breaks(prices: list[dict[str, Any]]) -> list[str]:
    """Name every place where a client following docs/recovery.md would miss a loss silently:
    a numbered price that is not the next `seq` of the same epoch, unless the epoch changed, and a
    numbered one after unnumbered ones (they went out while the history was unreachable) in the old epoch."""
    breaks = []
    last: dict[str, Any] | None = None
    unnumbered_since_last = False
    for frame in prices:
        if "seq" not in frame:
            unnumbered_since_last = True
            continue
        if last is not None and frame["epoch"] == last["epoch"]:
            if frame["seq"] != last["seq"] + 1:
                breaks.append(f"seq {last['seq']} -> {frame['seq']} in epoch {frame['epoch']}")
            elif unnumbered_since_last:
                breaks.append(f"unnumbered prices before seq {frame['seq']}, epoch unchanged")
        last, unnumbered_since_last = frame, False
    return breaks


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


@pytest.mark.parametrize("layer", ["core", "pubsub"])
async def test_a_primary_failover_under_traffic_is_followed_without_restart_or_silent_loss(
    sentinel_redis, tmp_path, trader, portfolio, sap, layer
):
    tag = uuid.uuid4().hex[:8]
    channel = f"failover-{tag}:events:websocket"
    env = server_env(
        REDIS_SENTINELS=sentinel_redis.setting,
        REDIS_SENTINEL_MASTER=MASTER,
        CHANNEL_LAYER_PREFIX=f"failover-{tag}",
        BUS_EVENTS_CHANNEL=channel,
        BUS_COMMANDS_CHANNEL=f"failover-{tag}:events:user_commands",
        DJANGO_LOG_LEVEL="INFO",
        CHANNEL_LAYER_BACKEND=layer,
    )
    env.pop("REDIS_URL", None)
    gateway = start_daphne(tmp_path, env=env)
    pid = gateway.process.pid
    location = redis_locations.sentinel_location(sentinel_redis.setting, MASTER).url
    feed = Feed(location, channel)
    cookie = await login_cookie(trader)
    recorder: Recorder | None = None
    try:
        # given a trader's client that receives the feed's prices and has an order placed
        client = await live_connect(gateway, cookie)
        recorder = Recorder(client)
        await client.send(
            {
                "type": "subscription",
                "event": "subscribe",
                "data": {"event_types": [PRICE, "trading.order_created", "trading.order_filled"]},
            }
        )
        feed.task = asyncio.get_running_loop().create_task(feed.run())
        await aeventually(
            lambda: len(recorder.prices(feed.symbol)) >= 10, timeout=20, message="prices before the failover"
        )
        before = await place_order(recorder, "before-failover")
        numbered_before = [f for _, f in recorder.prices(feed.symbol) if "seq" in f]
        assert numbered_before, "the history numbers prices behind Sentinel"

        # when the primary dies while prices flow, and Sentinel promotes the replica
        sentinel_redis.primary.kill()
        killed_at = time.monotonic()
        during = asyncio.get_running_loop().create_task(place_order(recorder, "during-failover", timeout=30))
        await aeventually(
            lambda: sentinel_redis.master_port() == sentinel_redis.replica.port,
            timeout=30,
            interval=0.05,
            message="the replica elected primary",
        )
        elected_at = time.monotonic()

        # then prices published to the new primary reach the client within 5 s of the election
        def resumed() -> float | None:
            for at, frame in recorder.prices(feed.symbol):
                published = feed.published.get(frame["data"]["volume"])
                if published is not None and published > elected_at and at > elected_at:
                    return at  # (a publish the dying primary took may be retried to the new one)
            return None

        resumed_at = await aeventually(resumed, timeout=RESUME_WITHIN + 10, interval=0.02, message="prices resume")
        assert resumed_at - elected_at <= RESUME_WITHIN, (
            f"delivery resumed {resumed_at - elected_at:.2f}s after the election "
            f"({elected_at - killed_at:.2f}s after the kill)\n{gateway.log()[-4000:]}"
        )

        # and the order placed while the primary was down is answered and its events delivered
        # (live from this process while Redis is unreachable)
        meanwhile = await during
        # and an order placed right after the failover is answered, and the client gets its events
        # or, failing that, is told to reload: the next event of each type comes in another epoch
        # than the last one it saw (docs/recovery.md, rule 1; docs/scale-out.md says when)
        last_seen = {
            name: [f for _, f in recorder.frames if f["event"] == name and "epoch" in f][-1]["epoch"]
            for name in ORDER_EVENTS
        }
        after = await order_answered(recorder, "after-failover")
        after_id = after["data"]["result"]["order_id"]
        try:
            await aeventually(lambda: all(order_event(recorder, name, after_id) for name in ORDER_EVENTS), timeout=5)
        except AssertionError:
            await asyncio.sleep(3)  # the channel layer's receiving side is back by now
            following = await place_order(recorder, "after-failover-2")
            for name in ORDER_EVENTS:
                if order_event(recorder, name, after_id) is None:
                    assert following[name]["epoch"] != last_seen[name], f"{name} of order {after_id} lost silently"
        orders = {
            before["place_order.response"]["data"]["result"]["order_id"],
            meanwhile["place_order.response"]["data"]["result"]["order_id"],
            after_id,
        }
        assert len(orders) == 3

        # and the gateway never restarted: the same process, still serving HTTP and new sockets
        assert gateway.process.poll() is None and gateway.process.pid == pid
        assert http_status(f"{gateway.http_url}/healthz") == 200
        late = await live_connect(gateway, cookie)
        last_before = numbered_before[-1]
        await late.send(
            {
                "type": "subscription",
                "event": "subscribe",
                "data": {
                    "event_types": [PRICE],
                    "since": {PRICE: {"seq": last_before["seq"], "epoch": last_before["epoch"]}},
                },
            }
        )
        confirmation = await late.receive_event("subscription.confirmed")
        await late.close()

        # and the history never leaves a silent gap: the numbering of what the client got is
        # continuous within each epoch, and the failover started a new epoch (the new primary may
        # lack the old one's last writes), so a client resuming from before it reloads
        await aeventually(lambda: len(recorder.prices(feed.symbol)) > len(numbered_before) + 20, timeout=10)
        prices = [f for _, f in recorder.prices(feed.symbol)]
        assert numbering_breaks(prices) == []
        numbered_after = [
            f
            for f in prices
            if "seq" in f and f["data"]["volume"] in feed.published and feed.published[f["data"]["volume"]] > elected_at
        ]
        assert numbered_after and {f["epoch"] for f in numbered_after}.isdisjoint({f["epoch"] for f in numbered_before})
        assert confirmation["data"]["recovered"] is False and confirmation["data"]["epoch"] != last_before["epoch"]
    finally:
        await feed.stop()
        if recorder is not None:
            await recorder.stop()
            await recorder.client.close()
        gateway.stop()
