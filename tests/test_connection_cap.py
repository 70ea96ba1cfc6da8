"""The per-user connection cap holds across gateway processes sharing Redis, and without Redis."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from realtime.bus.admission import leases_key, rebuild_seconds
from realtime.wire.protocol import CloseCode, decode
from tests.fixtures.bus import new_bus, shared_redis_url
from tests.fixtures.servers import ServerProcess, free_port
from tests.fixtures.waiting import aeventually
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


class Sockets:
    """Real WebSocket clients of gateway processes that say whether they were admitted."""

    def __init__(self) -> None:
        self.opened: list[ClientConnection] = []

    async def _open(self, server: ServerProcess, cookie: bytes) -> tuple[ClientConnection, dict[str, Any]]:
        ws = await connect(
            f"{server.ws_url}/",
            origin=Origin(server.http_url),
            additional_headers=[("Cookie", cookie.decode())],
            open_timeout=10,
        )
        self.opened.append(ws)
        return ws, decode(await asyncio.wait_for(ws.recv(), 5))

    async def admitted(self, server: ServerProcess, cookie: bytes) -> ClientConnection:
        ws, first = await self._open(server, cookie)
        assert first["event"] == "connection.established", first
        return ws

    async def refused(self, server: ServerProcess, cookie: bytes, *, limit: int) -> None:
        ws, first = await self._open(server, cookie)
        assert first["type"] == "error" and first["event"] == "too_many_connections", first
        assert first["data"]["code"] == "too_many_connections" and first["data"]["limit"] == limit
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == CloseCode.TOO_MANY_CONNECTIONS

    async def admitted_within(self, server: ServerProcess, cookie: bytes, timeout: float) -> ClientConnection:
        """Open sockets until one is admitted; each refused one is closed by the server."""

        async def admitted() -> ClientConnection | None:
            ws, first = await self._open(server, cookie)
            if first["event"] == "connection.established":
                return ws
            assert first["event"] == "too_many_connections", first
            await ws.close()
            return None

        return await aeventually(admitted, timeout=timeout, interval=0.1, message="a socket admitted")


@pytest.fixture
async def sockets():
    opened = Sockets()
    yield opened
    for ws in opened.opened:
        try:
            await ws.close()
        except Exception:
            pass


@pytest.mark.e2e
async def test_cap_counts_the_sockets_of_every_process_and_a_closed_one_frees_its_place(gateways, sockets, staff_user):
    # given two gateway processes on one Redis, a cap of 2, and two sockets of a user on A
    process_a, process_b = gateways(new_bus(shared_redis_url()), REALTIME_MAX_CONNECTIONS_PER_USER="2")
    cookie = await login_cookie(staff_user)
    first_on_a = await sockets.admitted(process_a, cookie)
    await sockets.admitted(process_a, cookie)

    # when a third opens on B, then it gets the cap's error and close code
    await sockets.refused(process_b, cookie, limit=2)

    # when a socket on A closes, then B admits one in its place
    await first_on_a.close()
    await sockets.admitted_within(process_b, cookie, timeout=15)

    # and that socket counts on A too: A, holding one socket itself, refuses another
    await sockets.refused(process_a, cookie, limit=2)


@pytest.mark.e2e
async def test_places_held_by_a_killed_process_come_free_when_its_leases_lapse(gateways, sockets, staff_user):
    # given a cap of 2 with 2-second leases and both places taken on A
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus, REALTIME_MAX_CONNECTIONS_PER_USER="2", REALTIME_CONNECTION_LEASE_SECONDS="2")
    cookie = await login_cookie(staff_user)
    await sockets.admitted(process_a, cookie)
    await sockets.admitted(process_a, cookie)

    # then A renews its leases while it lives: once Redis's clock is past the expiries they were
    # taken with, both are still there with later ones, and B still refuses
    probe = aioredis.Redis.from_url(shared_redis_url())
    key = f"{bus.layer_prefix}:conns:user:{staff_user.pk}"
    try:
        taken = dict(await probe.zrange(key, 0, -1, withscores=True))
        assert len(taken) == 2
        await aeventually(lambda: redis_past(probe, max(taken.values())), timeout=30, interval=0.1)
        renewed = dict(await probe.zrange(key, 0, -1, withscores=True))
        assert renewed.keys() == taken.keys() and all(renewed[lease] > taken[lease] for lease in taken)
    finally:
        await probe.aclose()
    await sockets.refused(process_b, cookie, limit=2)

    # when A is killed, so it cannot give its places back
    process_a.process.kill()
    process_a.process.wait()

    # then its places stay taken until the leases lapse, and then B admits up to the cap
    await sockets.refused(process_b, cookie, limit=2)
    await sockets.admitted_within(process_b, cookie, timeout=20)
    await sockets.admitted(process_b, cookie)
    await sockets.refused(process_b, cookie, limit=2)


async def redis_now(client: aioredis.Redis) -> float:
    seconds, microseconds = await client.time()
    return seconds + microseconds / 1_000_000


async def redis_past(client: aioredis.Redis, moment: float) -> bool:
    """Tell whether Redis's clock (which lease expiries are measured by) is past `moment`."""
    return await redis_now(client) > moment


@pytest.fixture
async def bus_redis_client(settings):
    """The gateway's bus on the shared Redis, seen from the test (keys under this test's prefix)."""
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": shared_redis_url(), "BRIDGE": "off"}
    client = aioredis.Redis.from_url(shared_redis_url())
    yield client
    await client.aclose()


async def test_a_place_leased_by_another_process_counts_and_a_closed_socket_gives_its_lease_back(
    ws_connect, staff_user, bus_redis_client, settings
):
    # given a cap of 2 and one place leased in Redis by a socket of another process
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2}
    key = leases_key(staff_user.pk)
    await bus_redis_client.zadd(key, {"other-process:lease": await redis_now(bus_redis_client) + 30})
    cookie = await login_cookie(staff_user)

    # when the user opens two sockets here, then only the first is admitted
    here, _ = await ws_connect(cookie=cookie)
    assert await bus_redis_client.zcard(key) == 2
    second, connected = await ws_connect(cookie=cookie, expect_welcome=False)
    assert connected
    assert (await second.receive())["event"] == "too_many_connections"
    assert await second.closed_with() == CloseCode.TOO_MANY_CONNECTIONS
    assert await bus_redis_client.zcard(key) == 2

    # when the admitted socket closes, then its lease is gone and only the other process's stays
    await here.close()
    assert await bus_redis_client.zrange(key, 0, -1) == [b"other-process:lease"]


async def test_leases_that_redis_lost_are_put_back_by_the_renewal(ws_connect, staff_user, bus_redis_client, settings):
    # given a socket holding a 1-second lease
    settings.REALTIME = {**settings.REALTIME, "CONNECTION_LEASE_SECONDS": 1}
    key = leases_key(staff_user.pk)
    await ws_connect(cookie=await login_cookie(staff_user))
    [(lease, expiry)] = await bus_redis_client.zrange(key, 0, -1, withscores=True)

    # when Redis forgets it (a restart), then the renewal puts it back with a later expiry
    await bus_redis_client.delete(key)
    await aeventually(lambda: bus_redis_client.exists(key), message="lease put back")
    [(renewed, renewed_expiry)] = await bus_redis_client.zrange(key, 0, -1, withscores=True)
    assert renewed == lease and renewed_expiry > expiry
    assert 0 < await bus_redis_client.ttl(key) <= 1


async def test_an_unreachable_redis_falls_back_to_this_process_count_and_warns_once(
    ws_connect, staff_user, settings, caplog
):
    # given Redis configured where nothing listens, and a cap of 2
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": f"redis://127.0.0.1:{free_port()}/0", "BRIDGE": "off"}
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2}
    cookie = await login_cookie(staff_user)
    caplog.set_level(logging.WARNING, logger="realtime.bus.admission")

    # when the user opens three sockets, then two are admitted and the third is refused
    await ws_connect(cookie=cookie)
    await ws_connect(cookie=cookie)
    third, _ = await ws_connect(cookie=cookie, expect_welcome=False)
    assert (await third.receive())["event"] == "too_many_connections"
    assert await third.closed_with() == CloseCode.TOO_MANY_CONNECTIONS

    # and the outage is logged once, not per connect
    warnings = [
        r for r in caplog.records if r.name == "realtime.bus.admission" and "Redis unavailable" in r.getMessage()
    ]
    assert len(warnings) == 1


async def test_without_redis_the_cap_counts_this_process(ws_connect, staff_user, settings):
    # given no Redis for the bus (the embedded defaults) and a cap of 1
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": ""}
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 1}
    cookie = await login_cookie(staff_user)

    # when the user opens two sockets, then the second is refused with the cap's code
    first, _ = await ws_connect(cookie=cookie)
    second, _ = await ws_connect(cookie=cookie, expect_welcome=False)
    assert (await second.receive())["event"] == "too_many_connections"
    assert await second.closed_with() == CloseCode.TOO_MANY_CONNECTIONS
    await second.close()

    # and once the first closes, a new one is admitted
    await first.close()
    await ws_connect(cookie=cookie)


async def test_cap_holds_across_a_redis_restart_that_lost_every_lease(ws_connect, staff_user, settings, own_redis):
    # given a cap of 2 held in a Redis of this test's own, with leases far from their renewal
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": own_redis.url, "BRIDGE": "off"}
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 2, "CONNECTION_LEASE_SECONDS": 300}
    cookie = await login_cookie(staff_user)
    await ws_connect(cookie=cookie)
    await ws_connect(cookie=cookie)

    # when Redis restarts empty while both sockets stay open
    own_redis.kill()
    own_redis.start()

    # then one more socket is refused (after the rebuilding window), and both leases are back in Redis
    third, _ = await ws_connect(cookie=cookie, expect_welcome=False)
    assert (await third.receive(timeout=3 + rebuild_seconds()))["event"] == "too_many_connections"
    assert await third.closed_with() == CloseCode.TOO_MANY_CONNECTIONS
    client = aioredis.Redis.from_url(own_redis.url)
    try:
        assert await client.zcard(leases_key(staff_user.pk)) == 2
    finally:
        await client.aclose()


@pytest.mark.e2e
async def test_cap_across_processes_holds_across_a_redis_restart(gateways, sockets, staff_user, own_redis):
    # given a cap of 3 on two processes sharing a Redis of this test's own: two sockets on A, one on B
    process_a, process_b = gateways(new_bus(own_redis.url), REALTIME_MAX_CONNECTIONS_PER_USER="3")
    cookie = await login_cookie(staff_user)
    await sockets.admitted(process_a, cookie)
    await sockets.admitted(process_a, cookie)
    await sockets.admitted(process_b, cookie)

    # when Redis restarts empty while all three stay open
    own_redis.kill()
    own_redis.start()

    # then neither process admits a fourth: each put its own leases back before counting
    await sockets.refused(process_b, cookie, limit=3)
    await sockets.refused(process_a, cookie, limit=3)
