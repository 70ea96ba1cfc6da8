"""The gateway's Redis channel layer: channels-redis core, with groups sent in batches."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from realtime.server.layers import RedisChannelLayer
from tests.fixtures.bus import shared_redis_url


@pytest.fixture
async def layer():
    layer = RedisChannelLayer(
        hosts=[shared_redis_url()], prefix=f"layer-{uuid.uuid4().hex[:8]}", capacity=100, expiry=60
    )
    yield layer
    await layer.flush()
    await layer.close_pools()


async def test_a_batch_reaches_each_group_s_members_in_the_order_sent(layer):
    first, second = await layer.new_channel("fanout."), await layer.new_channel("fanout.")
    await layer.group_add("ev.a", first)
    await layer.group_add("ev.b", first)
    await layer.group_add("ev.b", second)

    await layer.group_send_many(
        [
            ("ev.a", {"type": "realtime.event", "n": 1}),
            ("ev.nobody", {"type": "realtime.event", "n": 2}),  # a group without members: nothing
            ("ev.b", {"type": "realtime.event", "n": 3}),
            ("ev.a", {"type": "realtime.event", "n": 4}),
        ]
    )
    await layer.group_send("ev.b", {"type": "realtime.event", "n": 5})  # a batch of one

    received = [(await asyncio.wait_for(layer.receive(first), 2))["n"] for _ in range(4)]
    assert received == [1, 3, 4, 5]
    assert (await asyncio.wait_for(layer.receive(second), 2))["n"] == 3
    assert (await asyncio.wait_for(layer.receive(second), 2))["n"] == 5


async def test_a_full_channel_refuses_what_is_over_its_capacity_and_keeps_the_rest(layer):
    layer.capacity = 3
    channel = await layer.new_channel("fanout.")
    await layer.group_add("ev.a", channel)

    await layer.group_send_many([("ev.a", {"type": "realtime.event", "n": n}) for n in range(5)])

    received = [(await asyncio.wait_for(layer.receive(channel), 2))["n"] for _ in range(3)]
    assert received == [0, 1, 2]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)


async def test_the_script_is_loaded_again_when_redis_forgot_it(layer):
    channel = await layer.new_channel("fanout.")
    await layer.group_add("ev.a", channel)
    await layer.group_send("ev.a", {"type": "realtime.event", "n": 1})
    await layer.connection(0).script_flush()  # as a restarted Redis would

    await layer.group_send("ev.a", {"type": "realtime.event", "n": 2})

    assert [(await asyncio.wait_for(layer.receive(channel), 2))["n"] for _ in range(2)] == [1, 2]
