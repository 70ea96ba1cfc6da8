"""Client ids and a user's connections are known across gateway processes."""

from __future__ import annotations

import asyncio

import pytest

from realtime.bus.presence import clients_online, user_connections
from tests.fixtures.bus import new_bus, shared_redis_url
from tests.fixtures.waiting import aeventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_clients_and_users_are_known_across_processes_and_leave_with_them(
    gateways, live_clients, staff_user, other_staff_user, settings
):
    # given two gateway processes with a short presence TTL
    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus, BUS_PRESENCE_TTL="3")
    settings.REALTIME_BUS = {
        **settings.REALTIME_BUS,
        "URL": bus.redis_url,
        "KEY_PREFIX": bus.layer_prefix,
        "PRESENCE_TTL": 3,
    }

    # when one user connects twice on A (one client id) and once on B, another user on B
    first = await live_clients(process_a, staff_user)
    await live_clients(process_a, staff_user, client_id=first.client_id)
    second = await live_clients(process_b, staff_user)
    other = await live_clients(process_b, other_staff_user)

    # then the registry knows every client id, its user, connection count and process
    async def all_three():
        online = await clients_online()
        return online if {first.client_id, second.client_id, other.client_id} <= set(online) else None

    online = await aeventually(all_three)
    assert [e["connections"] for e in online[first.client_id]] == [2]
    assert online[first.client_id][0]["user_id"] == staff_user.pk
    assert online[other.client_id][0]["username"] == other_staff_user.username
    assert online[first.client_id][0]["process"] != online[second.client_id][0]["process"]
    assert set(await user_connections(staff_user.pk)) == {first.client_id, second.client_id}

    # when a client disconnects, then it leaves the registry
    await second.close()

    async def second_gone():
        return second.client_id not in await clients_online()

    await aeventually(second_gone)

    # when process A dies, then its clients drop out once its entry expires
    process_a.process.kill()
    process_a.process.wait()

    async def a_gone():
        online = await clients_online()
        return first.client_id not in online and other.client_id in online

    await aeventually(a_gone)


async def test_an_unchanged_presence_is_kept_alive_without_rewriting_and_refilled_when_redis_lost_it(settings):
    """The heartbeat only extends the hash's life; a hash Redis no longer has is written anew."""
    import uuid as uuid_module

    from realtime.bus import presence as presence_module
    from realtime.runtime.connections import connections

    bus = new_bus(shared_redis_url())
    settings.REALTIME_BUS = {
        **settings.REALTIME_BUS,
        "URL": bus.redis_url,
        "KEY_PREFIX": bus.layer_prefix,
        "PRESENCE_TTL": 3,
    }
    consumer = object()
    client_id = f"presence-{uuid_module.uuid4().hex[:8]}"
    connections.add(_connection(client_id, consumer))
    presence = presence_module.Presence()
    redis = presence_module.bus_redis()
    key = presence_module._process_key(presence_module.PROCESS_ID)
    written: list[int] = []
    original = presence._write

    async def counted(snapshot):
        written.append(len(snapshot))
        await original(snapshot)

    presence._write = counted
    presence.start()
    try:
        await aeventually(lambda: _has(redis, key, client_id))
        assert written == [1]
        ttls = [await redis.pttl(key)]

        async def extended() -> bool:
            ttls.append(await redis.pttl(key))
            return ttls[-1] > ttls[-2]

        await aeventually(extended, message="a heartbeat extends the hash's life")
        assert written == [1]  # kept alive, not rewritten
        await redis.delete(key)  # as a restarted Redis would have lost it
        await aeventually(lambda: _has(redis, key, client_id))
        assert written == [1, 1]
    finally:
        presence._task.cancel()
        await asyncio.gather(presence._task, return_exceptions=True)
        connections.remove(consumer)
        await redis.delete(key)


async def _has(redis, key: str, client_id: str) -> bool:
    return await redis.hexists(key, client_id)


def _connection(client_id: str, consumer: object, *, user_id: int = 1):
    from datetime import datetime, timezone

    from realtime.runtime.connections import Connection

    return Connection(
        client_id=client_id,
        user_id=user_id,
        username=f"desk-{user_id}",
        remote_addr=None,
        origin=None,
        connected_at=datetime.now(timezone.utc),
        subscriptions=set(),
        consumer=consumer,
    )


async def test_sockets_that_come_and_go_change_only_their_entries_and_a_lost_hash_is_refilled(settings):
    """After the first write, a change sets or deletes its client's entry alone; if Redis lost the
    hash meanwhile (a restart), the next change writes it whole again."""
    import uuid as uuid_module

    from realtime.bus import presence as presence_module
    from realtime.runtime.connections import connections
    from realtime.wire.protocol import decode

    bus = new_bus(shared_redis_url())
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": bus.redis_url, "KEY_PREFIX": bus.layer_prefix}
    tag = uuid_module.uuid4().hex[:8]
    first, second, third = (f"presence-{tag}-{n}" for n in range(3))
    consumers = [object() for _ in range(4)]
    connections.add(_connection(first, consumers[0]))
    presence = presence_module.Presence()
    redis = presence_module.bus_redis()
    key = presence_module._process_key(presence_module.PROCESS_ID)
    written: list[set[str]] = []
    original = presence._write

    async def counted(snapshot):
        written.append({client_id for client_id in snapshot if client_id.startswith(f"presence-{tag}")})
        await original(snapshot)

    async def ours() -> dict[str, dict]:
        table = await redis.hgetall(key)
        return {k.decode(): decode(v) for k, v in table.items() if k.decode().startswith(f"presence-{tag}")}

    presence._write = counted
    presence.start()
    try:
        await aeventually(lambda: _has(redis, key, first))
        assert written == [{first}]

        # when a second socket of the first client and a socket of a new client open
        connections.add(_connection(first, consumers[1]))
        connections.add(_connection(second, consumers[2], user_id=2))

        async def both() -> dict | None:
            table = await ours()
            return table if first in table and table[first]["connections"] == 2 and second in table else None

        table = await aeventually(both)
        # then their entries are set, the first's count now 2, and the hash was not rewritten
        assert table[second]["user_id"] == 2 and table[second]["username"] == "desk-2"
        assert written == [{first}]

        # when the first client's older socket closes and the second client's only one
        connections.remove(consumers[0])
        connections.remove(consumers[2])

        async def one_left() -> dict | None:
            table = await ours()
            return table if set(table) == {first} and table[first]["connections"] == 1 else None

        await aeventually(one_left)
        assert written == [{first}]

        # when Redis loses the hash and then a socket opens
        await redis.delete(key)
        connections.add(_connection(third, consumers[3]))

        # then the hash is written whole again: the earlier client is back beside the new one
        async def refilled() -> dict | None:
            table = await ours()
            return table if set(table) == {first, third} else None

        await aeventually(refilled)
        assert written[-1] == {first, third}
    finally:
        presence._task.cancel()
        await asyncio.gather(presence._task, return_exceptions=True)
        for consumer in consumers:
            connections.remove(consumer)
        await redis.delete(key)


def test_the_connection_table_indexes_client_ids_and_tells_its_watchers_of_changes():
    from realtime.runtime.connections import ConnectionTable

    table = ConnectionTable()
    changed = table.watch()
    a, b, c = object(), object(), object()
    table.add(_connection("one", a))
    table.add(_connection("one", b))
    table.add(_connection("two", c))
    assert [conn.consumer for conn in table.by_client_id("one")] == [a, b]  # oldest first
    assert table.client_ids() == ["one", "two"] and changed == {"one", "two"}
    changed.clear()

    # a socket that re-registers under another client id leaves the old one's index
    table.add(_connection("three", c))
    assert table.by_client_id("two") == [] and changed == {"two", "three"}
    changed.clear()

    table.remove(a)
    assert [conn.consumer for conn in table.by_client_id("one")] == [b] and changed == {"one"}
    table.unwatch(changed)
    table.remove(b)
    assert table.client_ids() == ["three"] and changed == {"one"}  # no longer told

    # a watcher its holder dropped without unwatching is not kept alive by the table
    import gc
    import weakref

    dropped = weakref.ref(table.watch())
    gc.collect()
    assert dropped() is None
    table.remove(c)
    assert table.client_ids() == []
