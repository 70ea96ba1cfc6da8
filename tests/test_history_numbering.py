"""The shared event history's numbering: an event several processes hear is numbered once, a batch
as one by one, and a type whose events went out unnumbered starts a new epoch (Redis and memory stores)."""

from __future__ import annotations

import uuid

import pytest

from realtime.delivery.history import MemoryHistory, RedisHistory
from realtime.wire.protocol import decode
from tests.fixtures.bus import shared_redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PRICE = "market.price_update"


async def forget(store: RedisHistory, prefix: str) -> None:
    keys = await store.client.keys(f"{prefix}:*")
    if keys:
        await store.client.delete(*keys)


async def test_redis_history_appends_an_event_asked_for_by_several_processes_once():
    # given two processes' history stores on one Redis
    prefix = f"once-{uuid.uuid4().hex[:8]}"
    first, second = (RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=900) for _ in range(2))
    try:
        # when both number the same bus message (their own frames differ), then another one
        a = await first.append_once(PRICE, '{"n":1,"by":"first"}', None, once="digest-1", ttl=60)
        b = await second.append_once(PRICE, '{"n":1,"by":"second"}', None, once="digest-1", ttl=60)
        c = await second.append_once(PRICE, '{"n":2,"by":"second"}', None, once="digest-2", ttl=60)

        # then both got the first one's seq, epoch and stored frame; the history holds each once
        assert a == b and a[0] == 1 and decode(a[2]) == {"n": 1, "by": "first", "seq": 1, "epoch": a[1]}
        assert c[:2] == (2, a[1])
        replay = await first.since(PRICE, 0, a[1])
        assert replay.recovered and [entry.text for entry in replay.entries] == [a[2], c[2]]
    finally:
        await forget(first, prefix)
        await first.client.aclose()
        await second.client.aclose()


async def test_redis_history_answers_with_the_numbers_when_the_stored_frame_was_trimmed():
    # given an event numbered under a key whose stream entry is gone since
    prefix = f"once-{uuid.uuid4().hex[:8]}"
    store = RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=900)
    try:
        seq, epoch, _ = await store.append_once(PRICE, '{"by":"first"}', None, once="d", ttl=60)
        await store.client.xdel(f"{prefix}:history:{PRICE}:stream", f"{seq}-1")

        # when another process asks with the same key
        again = await store.append_once(PRICE, '{"by":"late"}', None, once="d", ttl=60)

        # then it gets the same numbers on its own frame, and nothing was appended
        assert again == (seq, epoch, f'{{"by":"late","seq":{seq},"epoch":"{epoch}"}}')
        assert await store.position(PRICE) == (seq, epoch)
    finally:
        await forget(store, prefix)
        await store.client.aclose()


async def test_memory_history_appends_once_per_key():
    store = MemoryHistory(max_events=10, max_age=900)
    first = await store.append_once(PRICE, '{"n":1}', None, once="d", ttl=60)
    assert await store.append_once(PRICE, '{"n":1}', None, once="d", ttl=60) == first
    assert (await store.append_once(PRICE, '{"n":2}', None, once="e", ttl=60))[0] == first[0] + 1


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_history_numbers_a_batch_of_events_in_order_as_one_by_one(kind):
    """An order's events, committed together, are numbered in one round trip, each as `append` would."""
    prefix = f"many-{uuid.uuid4().hex[:8]}"
    store = (
        RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=900)
        if kind == "redis"
        else MemoryHistory(max_events=100, max_age=900)
    )
    try:
        single = await store.append(PRICE, '{"n":0}', None)
        batch = await store.append_many(
            [(PRICE, '{"n":1}', [7]), ("trading.order_filled", '{"n":2}', [7]), (PRICE, '{"n":3}', None)]
        )

        epoch = single[1]
        assert [seq for seq, _, _ in batch] == [single[0] + 1, 1, single[0] + 2]
        assert batch[0][2] == f'{{"n":1,"seq":{single[0] + 1},"epoch":"{epoch}"}}'
        replay = await store.since(PRICE, 0, epoch)
        assert [entry.text for entry in replay.entries] == [single[2], batch[0][2], batch[2][2]]
        assert [entry.audience for entry in replay.entries] == [None, [7], None]
    finally:
        if kind == "redis":
            await forget(store, prefix)
            await store.client.aclose()


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_history_starts_a_new_epoch_for_a_type_whose_events_went_out_unnumbered(kind):
    # given a history with events of two types
    prefix = f"renew-{uuid.uuid4().hex[:8]}"
    store = (
        RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=900)
        if kind == "redis"
        else MemoryHistory(max_events=100, max_age=900)
    )
    try:
        seq, epoch, _ = await store.append(PRICE, '{"n":1}', None)
        other = await store.append("market.alert", '{"n":1}', None)

        # when events of one type went out without a number, and the next ones are numbered in a batch
        store.mark_unnumbered([PRICE])
        batch = await store.append_many(
            [(PRICE, '{"n":2}', None), (PRICE, '{"n":3}', None), ("market.alert", '{"n":2}', None)]
        )

        # then that type starts a new epoch once (its batch numbered 1, 2 in it), the other type goes on
        assert [(s, e == epoch) for s, e, _ in batch[:2]] == [(1, False), (2, False)] and batch[0][1] == batch[1][1]
        assert batch[2][:2] == (other[0] + 1, other[1])
        # and a client replaying from the old epoch is told to reload
        assert not (await store.since(PRICE, seq, epoch)).recovered
        assert (await store.append(PRICE, '{"n":4}', None))[:2] == (3, batch[0][1])
    finally:
        if kind == "redis":
            await forget(store, prefix)
            await store.client.aclose()


async def test_bus_message_heard_again_does_not_use_up_a_pending_new_epoch():
    # given two processes' stores; the second failed to number some price event
    prefix = f"renew-{uuid.uuid4().hex[:8]}"
    first, second = (RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=900) for _ in range(2))
    try:
        _, epoch, _ = await first.append_once(PRICE, '{"n":1}', None, once="d1", ttl=60)
        second.mark_unnumbered([PRICE])

        # when the second hears a message the first numbered already, then it gets those numbers
        assert (await second.append_once(PRICE, '{"n":1}', None, once="d1", ttl=60))[1] == epoch
        # and its next own append starts the new epoch
        assert (await second.append_once(PRICE, '{"n":2}', None, once="d2", ttl=60))[1] != epoch
    finally:
        await forget(first, prefix)
        await first.client.aclose()
        await second.client.aclose()
