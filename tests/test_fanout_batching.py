"""A reconnect storm's and a network blip's fan-out work in batches: the groups new sockets join
are added to Redis in one round trip per batch, the groups closing sockets empty are left in one,
and a group joined and left in the same moment ends as the last of them says."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from realtime.delivery import fanout as fanout_module
from realtime.delivery.dispatch import build_event_message
from realtime.delivery.fanout import Fanout
from realtime.server.layers import RedisChannelLayer
from tests.fixtures.bus import shared_redis_url
from tests.fixtures.waiting import aeventually


class CountingLayer(RedisChannelLayer):
    """The gateway's layer, counting the calls that add this process to groups."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[list[str]] = []
        self.single_adds = 0
        self.discard_batches: list[list[str]] = []

    async def group_add_many(self, groups, channel):
        self.batches.append(list(groups))
        await super().group_add_many(groups, channel)

    async def group_add(self, group, channel):
        self.single_adds += 1
        await super().group_add(group, channel)

    async def group_discard_many(self, groups, channel):
        self.discard_batches.append(list(groups))
        await super().group_discard_many(groups, channel)


class Recorder:
    def __init__(self):
        self.texts: list[str] = []

    def deliver(self, message, delivery=None):
        self.texts.append(message["text"])


@pytest.fixture
async def layer():
    layer = CountingLayer(hosts=[shared_redis_url()], prefix=f"storm-{uuid.uuid4().hex[:8]}", capacity=1000, expiry=60)
    yield layer
    await layer.flush()
    await layer.close_pools()


@pytest.fixture
async def fanout(layer, monkeypatch):
    monkeypatch.setattr(fanout_module, "_bridge_starter", None)  # no bus bridge: only the fan-out's own work
    fanout = Fanout(layer)
    yield fanout
    if fanout._reader is not None:
        fanout._reader.cancel()


async def group_channels(layer: RedisChannelLayer, group: str) -> set[str]:
    members = await layer.connection(layer.consistent_hash(group)).zrange(layer._group_key(group), 0, -1)
    return {name.decode() for name in members}


async def test_joins_of_new_groups_arriving_together_are_added_to_redis_in_one_batch(layer, fanout):
    # given 200 sockets each joining a client group of its own and one shared group, all at once
    sockets = [Recorder() for _ in range(200)]
    groups = [f"client.{n}" for n in range(200)]
    await asyncio.gather(
        *(fanout.join(group, socket) for group, socket in zip(groups, sockets)),
        *(fanout.join("user.7", socket) for socket in sockets),
    )

    # then every socket is the one local member of its own group and all are in the shared one
    for group, socket in zip(groups, sockets):
        assert fanout.local_members(group) == {socket}
    assert fanout.local_members("user.7") == set(sockets)
    # and the process joined each group on Redis once, in one batch, not a round trip per group
    assert layer.single_adds == 0
    assert len(layer.batches) == 1 and sorted(layer.batches[0]) == sorted([*groups, "user.7"])
    for group in [*groups, "user.7"]:
        assert await group_channels(layer, group) == {fanout.channel_name}

    # and an event sent to a group after the joins returned reaches its socket, and only it
    message = build_event_message(
        "market.alert",
        {
            "alert_type": "price_above",
            "symbol": "SAP",
            "message": "m",
            "severity": "info",
            "trigger_value": 1,
            "current_value": 2,
            "threshold": 1,
            "timestamp": "2026-12-07T10:00:00.000Z",
        },
    )
    await layer.group_send("client.17", {**message, "group": "client.17"})
    await aeventually(lambda: sockets[17].texts == [message["text"]], timeout=5)
    assert all(not socket.texts for n, socket in enumerate(sockets) if n != 17)


async def test_joins_arriving_while_a_batch_is_on_its_way_go_in_the_next_one(layer, fanout):
    await fanout.join("client.warm", Recorder())  # the reader runs: a join waits for nothing but its batch
    layer.batches.clear()
    first = asyncio.ensure_future(fanout.join("client.a", Recorder()))
    await asyncio.sleep(0)  # the first batch starts with the one join
    later = [Recorder() for _ in range(50)]
    await asyncio.gather(first, *(fanout.join(f"client.b{n}", socket) for n, socket in enumerate(later)))

    assert [len(batch) for batch in layer.batches] == [1, 50]
    assert all(fanout.local_members(f"client.b{n}") == {socket} for n, socket in enumerate(later))


async def test_a_group_emptied_while_it_is_joined_again_stays_joined_on_redis(layer, fanout):
    # given a socket alone in a group
    leaving, coming = Recorder(), Recorder()
    await fanout.join("client.x", leaving)

    # when it leaves (the process leaves the group on Redis) while another socket joins it
    await asyncio.gather(fanout.leave("client.x", leaving), fanout.join("client.x", coming))

    # then the process is in the group again, on Redis too: the join was added after the discard
    assert fanout.local_members("client.x") == {coming}
    assert await group_channels(layer, "client.x") == {fanout.channel_name}


async def test_a_group_whose_joiners_all_gave_up_during_its_batch_is_left_on_redis(layer, fanout):
    await fanout.join("client.warm", Recorder())  # the reader runs
    # given a batch on its way to Redis that holds a socket's join of its client group
    sending, release = asyncio.Event(), asyncio.Event()
    add_many = layer.group_add_many

    async def slow(groups, channel):
        sending.set()
        await release.wait()
        await add_many(groups, channel)

    layer.group_add_many = slow
    socket = Recorder()
    join = asyncio.ensure_future(fanout.join("client.gone", socket))
    await asyncio.wait_for(sending.wait(), 5)

    # when the server cancels the socket's handshake before the batch is in, and the batch then arrives
    join.cancel()
    with pytest.raises(asyncio.CancelledError):
        await join
    release.set()
    await fanout.join("client.after", Recorder())  # the next batch: the one before it is done

    # then the process is not in the group, locally or on Redis, where no leave would have taken it out
    assert fanout.local_members("client.gone") == frozenset()
    assert await group_channels(layer, "client.gone") == set()


async def test_leaves_of_sockets_closing_together_leave_their_emptied_groups_in_one_batch(layer, fanout):
    # given 30 sockets, each alone in its client group and all in one shared group, and one more
    # socket in the shared group that stays
    sockets = [Recorder() for _ in range(30)]
    staying = Recorder()
    for n, socket in enumerate(sockets):
        await fanout.join(f"client.c{n}", socket)
        await fanout.join("ev.shared", socket)
    await fanout.join("ev.shared", staying)
    layer.discard_batches.clear()

    # when all 30 close at once (a network blip)
    await asyncio.gather(*(fanout.leave_all(socket, [f"client.c{n}", "ev.shared"]) for n, socket in enumerate(sockets)))

    # then their 30 emptied groups were left in far fewer round trips than sockets, none twice,
    # and the shared group, still in use here, was not left
    left = [group for batch in layer.discard_batches for group in batch]
    assert sorted(left) == sorted(f"client.c{n}" for n in range(30))
    assert len(layer.discard_batches) <= 2
    assert fanout.local_members("ev.shared") == {staying}
    assert await group_channels(layer, "ev.shared") == {fanout.channel_name}
    for n in range(30):
        assert await group_channels(layer, f"client.c{n}") == set()


async def test_a_group_emptied_and_joined_again_before_its_batch_stays_joined_on_redis(layer, fanout):
    # given a socket alone in a group, and the fan-out's lock held so its leave's batch waits
    leaving, coming = Recorder(), Recorder()
    await fanout.join("client.again", leaving)
    layer.discard_batches.clear()
    await fanout._lock.acquire()
    left = asyncio.ensure_future(fanout.leave("client.again", leaving))
    await asyncio.sleep(0)

    # when the lock frees, the leave empties the group (one turn of the loop: the batch's task runs
    # the turn after), and another socket joins it before the batch
    fanout._lock.release()
    await asyncio.sleep(0)
    assert "client.again" in fanout._leaving and "client.again" not in fanout.members
    await fanout.join("client.again", coming)
    await asyncio.wait_for(left, 5)

    # then the group was never left: the join took it back, and events of it reach the newcomer
    assert fanout.local_members("client.again") == {coming}
    assert await group_channels(layer, "client.again") == {fanout.channel_name}
    assert all("client.again" not in batch for batch in layer.discard_batches)


async def test_a_socket_cancelled_while_it_leaves_its_groups_still_leaves_them(layer, fanout):
    # given a socket alone in its client group, and the fan-out's lock held by other work
    socket = Recorder()
    await fanout.join("client.killed", socket)
    await fanout._lock.acquire()

    # when its leave waits for the lock and the server kills the socket's application meanwhile
    leaving = asyncio.ensure_future(fanout.leave_all(socket, ["client.killed"]))
    await asyncio.sleep(0.05)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    fanout._lock.release()

    # then the leave still happens: not a member any more, and the process is out of the group on Redis
    await aeventually(lambda: "client.killed" not in fanout.members and not fanout._lock.locked(), timeout=5)
    assert await group_channels(layer, "client.killed") == set()


async def test_a_failing_batch_fails_each_join_in_it_and_the_next_join_tries_again(layer, fanout):
    await fanout.join("client.warm", Recorder())  # the reader runs
    failing = True
    add_many = layer.group_add_many

    async def flaky(groups, channel):
        if failing:
            raise ConnectionError("Redis away")
        await add_many(groups, channel)

    layer.group_add_many = flaky
    results = await asyncio.gather(*(fanout.join(f"client.f{n}", Recorder()) for n in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert all(not fanout.local_members(f"client.f{n}") for n in range(3))

    failing = False
    socket = Recorder()
    await fanout.join("client.f0", socket)
    assert fanout.local_members("client.f0") == {socket}
    assert await group_channels(layer, "client.f0") == {fanout.channel_name}
