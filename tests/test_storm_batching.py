"""A reconnect storm's Redis and database work in batches: the connection leases, the history
positions and the handshakes' reads asked for together take one round trip per batch, and each
caller still gets exactly its own result (the fan-out's joins and leaves: test_fanout_batching.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from realtime.bus import admission
from realtime.bus.admission import Leases, leases_key
from realtime.delivery.history import RedisHistory
from tests.fixtures.bus import shared_redis_url


class CountingPipelines:
    """A Redis client that counts the pipelines run through it."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self.pipelines = 0

    def pipeline(self, *args, **kwargs):
        self.pipelines += 1
        return self.client.pipeline(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
async def bus(settings, monkeypatch):
    settings.REALTIME_BUS = {
        **settings.REALTIME_BUS,
        "URL": shared_redis_url(),
        "BRIDGE": "off",
        "KEY_PREFIX": f"storm-{uuid.uuid4().hex[:8]}",
    }
    client = CountingPipelines(aioredis.Redis.from_url(shared_redis_url()))
    monkeypatch.setattr(admission, "bus_redis", lambda: client)
    yield client
    await client.client.aclose()


async def test_admissions_arriving_together_take_one_round_trip_and_the_cap_holds(bus, monkeypatch):
    # given a cap of 5 and 40 sockets of one user and 20 of another admitted at once
    leases = Leases()
    alone = []
    original = leases._admit_alone

    async def admit_alone(*args):
        alone.append(args)
        return await original(*args)

    monkeypatch.setattr(leases, "_admit_alone", admit_alone)
    first = await asyncio.gather(
        *(leases.admit(user_id=1, limit=5) for _ in range(40)), *(leases.admit(user_id=2, limit=5) for _ in range(20))
    )

    # then exactly 5 of each user are admitted, as Redis counts them
    assert sum(lease is not None for lease in first[:40]) == 5
    assert sum(lease is not None for lease in first[40:]) == 5
    assert await bus.zcard(leases_key(1)) == 5 and await bus.zcard(leases_key(2)) == 5
    assert set(await bus.zrange(leases_key(1), 0, -1)) == {lease.encode() for lease in first[:40] if lease}
    # and all 60 verdicts came from one pipeline, none from an admission alone
    assert bus.pipelines == 1 and alone == []

    try:
        # and a released place is free again for the next socket
        await leases.release(next(lease for lease in first[:40] if lease))
        assert await leases.admit(user_id=1, limit=5) is not None
        assert await leases.admit(user_id=1, limit=5) is None
    finally:
        if leases._renewer is not None:
            leases._renewer.cancel()
        await bus.delete(leases_key(1), leases_key(2))


async def test_history_positions_asked_together_are_read_in_one_pipeline():
    prefix = f"storm-{uuid.uuid4().hex[:8]}"
    store = RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=900)
    try:
        for n in range(3):
            await store.append("market.alert", '{"n":%d}' % n, None)
        await store.append("trading.order_filled", '{"n":0}', [1])
        client = store.client
        counting = CountingPipelines(client)
        store.client = counting

        positions = await asyncio.gather(
            *(store.position(t) for t in ["market.alert", "trading.order_filled", "portfolio.update"] * 30)
        )

        assert counting.pipelines == 1
        alert, filled, update = positions[:3]
        assert alert[0] == 3 and filled[0] == 1 and update[0] == 0
        assert positions == [alert, filled, update] * 30
    finally:
        store.client = client
        keys = await client.keys(f"{prefix}:*")
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.django_db
def test_handshakes_read_together_take_one_session_statement_and_one_client_id_statement(staff_user, other_staff_user):
    from datetime import timedelta

    from django.test import Client

    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from realtime.connection.gate import handshakes
    from realtime.models import ClientIdentity

    # given two users' sessions, an expired session, a key nobody has, and a reconnect with its own id
    def login(user) -> str:
        browser = Client()
        browser.force_login(user)
        return browser.cookies["sessionid"].value

    keys = {user.pk: login(user) for user in (staff_user, other_staff_user)}
    expired = login(staff_user)
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(seconds=1))
    own = ClientIdentity.objects.create(client_id="a" * 32, user=staff_user).client_id
    requests = [
        *({"session_key": keys[staff_user.pk], "token_key": None, "requested_client_id": None} for _ in range(5)),
        *({"session_key": keys[other_staff_user.pk], "token_key": None, "requested_client_id": None} for _ in range(3)),
        {"session_key": expired, "token_key": None, "requested_client_id": None},
        {"session_key": "nobody-has-this-key-" + "x" * 12, "token_key": None, "requested_client_id": None},
        {"session_key": keys[staff_user.pk], "token_key": None, "requested_client_id": own},
    ]

    with CaptureQueriesContext(connection) as queries:
        results = handshakes(requests)

    # then each gets its own user, the unknown and expired sessions none, and a client id of its user
    assert [r["user"] for r in results[:5]] == [staff_user] * 5
    assert [r["user"] for r in results[5:8]] == [other_staff_user] * 3
    assert not results[8]["user"].is_authenticated and "client_id" not in results[8]
    assert not results[9]["user"].is_authenticated and "client_id" not in results[9]
    assert results[10]["client_id"] == own
    fresh = [r["client_id"] for r in results[:8]]
    assert len(set(fresh)) == 8 and own not in fresh
    assert {i.client_id: i.user_id for i in ClientIdentity.objects.filter(client_id__in=fresh)} == {
        **{cid: staff_user.pk for cid in fresh[:5]},
        **{cid: other_staff_user.pk for cid in fresh[5:]},
    }
    # and the sessions were read in one statement, the 8 fresh ids bound in one: besides those, one
    # user statement per live session and the reconnect's one update
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len([s for s in sqls if "django_session" in s]) == 1, sqls
    assert len([s for s in sqls if s.startswith("INSERT")]) == 1, sqls
    assert len(sqls) == 1 + 9 + 1 + 1, sqls
    # and a store read with others signs as the database store does, so what it saves reads back
    from django.contrib.sessions.backends.db import SessionStore

    from realtime.connection.gate import read_sessions

    [store] = read_sessions([keys[staff_user.pk]])
    assert store.key_salt == SessionStore(keys[staff_user.pk]).key_salt
    store["mark"] = 1
    store.save()
    assert SessionStore(keys[staff_user.pk])["mark"] == 1


async def test_concurrent_handshakes_wait_for_a_thread_together_and_each_gets_its_own_answer(monkeypatch, settings):
    from realtime.connection import gate

    settings.REALTIME = {**settings.REALTIME, "HANDSHAKE_THREADS": 1}
    batches = []

    def read(requests):
        batches.append(len(requests))
        return [ValueError("refused") if r["session_key"] == "bad" else {"echo": r["session_key"]} for r in requests]

    monkeypatch.setattr(gate, "handshakes", read)
    reads = gate.HandshakeReads()
    first = asyncio.ensure_future(reads.read(session_key="k0", token_key=None, requested_client_id=None))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first batch is on the thread: the next ones wait together
    rest = [reads.read(session_key=k, token_key=None, requested_client_id=None) for k in ["k1", "bad", "k2"]]
    results = await asyncio.gather(first, *rest, return_exceptions=True)

    assert results[0] == {"echo": "k0"} and results[1] == {"echo": "k1"} and results[3] == {"echo": "k2"}
    assert isinstance(results[2], ValueError)
    assert batches == [1, 3]
