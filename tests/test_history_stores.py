"""The event history's stores: key names, following a failover, Redis failing or refusing, one store per loop and prefix."""

import asyncio

import gc
import warnings

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime.delivery.history import HistoryUnavailable, MemoryHistory, RedisHistory, get_history, reset_memory_history
from realtime.delivery.history_lua import history_scripts
from tests.fixtures.bus import shared_redis_url
from tests.fixtures.history import FRAME, MAX_AGE


def test_redis_keys_are_named_under_the_layers_prefix():
    store = RedisHistory(url="redis://127.0.0.1:1/0", prefix="pfx", max_events=3, max_age=MAX_AGE)

    # a Redis that hangs holds an event up for at most two seconds
    options = store.client.connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (2, 2)

    assert store._keys("market.alert") == [
        "pfx:history:market.alert:seq",
        "pfx:history:market.alert:epoch",
        "pfx:history:market.alert:stream",
    ]


@pytest.mark.parametrize(
    ("url", "follow_failover", "follows"),
    [
        ("redis://127.0.0.1:1/0", None, False),
        ("redis+sentinel://127.0.0.1:1/mymaster/0", None, True),
        ("redis://127.0.0.1:1/0", True, True),
        ("redis+sentinel://127.0.0.1:1/mymaster/0", False, False),
    ],
)
def test_a_store_following_failover_keeps_the_primary_it_wrote_on_and_runs_the_scripts_that_check_it(
    url, follow_failover, follows
):
    # by default a store follows failover exactly when its Redis is found through Sentinel
    store = RedisHistory(url=url, prefix="pfx", max_events=3, max_age=MAX_AGE, follow_failover=follow_failover)

    assert store.follow_failover is follows
    assert store._keys("market.alert")[3:] == (["pfx:history:market.alert:primary"] if follows else [])
    assert (store._append.script, store._append_once.script, store._position.script) == history_scripts(primary=follows)


async def test_positions_asked_of_an_unreachable_redis_fail_for_every_caller():
    store = RedisHistory(url="redis://127.0.0.1:1/0", prefix="pfx", max_events=3, max_age=MAX_AGE)

    answers = await asyncio.wait_for(
        asyncio.gather(store.position("market.alert"), store.position("portfolio.update"), return_exceptions=True), 5
    )

    assert [type(answer) for answer in answers] == [RedisConnectionError, RedisConnectionError]


async def test_a_position_redis_refuses_fails_alone_in_its_batch(redis_history):
    await redis_history.client.rpush(f"{redis_history.prefix}:history:market.alert:epoch", "not an epoch")

    refused, answered = await asyncio.wait_for(
        asyncio.gather(
            redis_history.position("market.alert"), redis_history.position("portfolio.update"), return_exceptions=True
        ),
        5,
    )

    assert "WRONGTYPE" in str(refused) and answered[0] == 0


async def test_a_caller_cancelled_while_its_batch_is_read_leaves_the_others_their_answers(redis_history):
    await redis_history.append("portfolio.update", FRAME, None)
    first = asyncio.ensure_future(redis_history.position("market.alert"))
    second = asyncio.ensure_future(redis_history.position("portfolio.update"))
    await asyncio.sleep(0)  # both asked: one batch

    first.cancel()

    assert (await asyncio.wait_for(second, 5))[0] == 1 and first.cancelled()


async def test_an_unreachable_redis_fails_appends_fast_until_the_retry_time(history_clock):
    store = RedisHistory(url="redis://127.0.0.1:1/0", prefix="pfx", max_events=3, max_age=MAX_AGE)
    calls = []

    async def failing():
        calls.append(1)
        raise RedisConnectionError("refused")

    with pytest.raises(RedisConnectionError):
        await store._run(failing())
    history_clock.mono += RedisHistory.RETRY_SECONDS - 0.01
    call = failing()
    with pytest.raises(HistoryUnavailable, match="^the event history failed a moment ago$"):
        await store._run(call)
    call.close()
    history_clock.mono += 0.01
    with pytest.raises(RedisConnectionError):
        await store._run(failing())
    assert len(calls) == 2
    await store.client.aclose()


async def test_a_failed_append_keeps_the_type_marked(history_clock):
    store = RedisHistory(url="redis://127.0.0.1:1/0", prefix="pfx", max_events=3, max_age=MAX_AGE)
    store.mark_unnumbered(["market.alert"])
    store._retry_at = history_clock.mono + 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(HistoryUnavailable):
            await store.append("market.alert", FRAME, None)
        with pytest.raises(HistoryUnavailable):
            await store.append_many([("market.alert", FRAME, None)])
        gc.collect()

    assert store.unnumbered == {"market.alert"}
    # The calls not made are closed, not left to be reported as "never awaited" (in production a
    # warning for every event while the history is away).
    assert not [w for w in caught if "never awaited" in str(w.message)]
    await store.client.aclose()


def test_the_embedded_configuration_keeps_one_memory_history_until_reset(settings):
    settings.REDIS_URL = ""
    settings.REALTIME = {**settings.REALTIME, "HISTORY_MAX_EVENTS": 7, "HISTORY_MAX_AGE_SECONDS": 30}
    reset_memory_history()

    store = get_history()

    assert isinstance(store, MemoryHistory) and (store.max_events, store.max_age) == (7, 30)
    assert get_history() is store
    reset_memory_history()
    assert get_history() is not store
    reset_memory_history()


async def test_with_redis_each_event_loop_and_layer_prefix_gets_its_store(settings):
    settings.REDIS_URL = " redis://127.0.0.1:6379/5,redis://unused:1/0"  # the first of a list; nothing is written
    settings.REALTIME = {**settings.REALTIME, "HISTORY_MAX_EVENTS": 7, "HISTORY_MAX_AGE_SECONDS": 30}
    settings.CHANNEL_LAYERS = {"default": {"CONFIG": {"prefix": "one"}}}

    store = get_history()

    assert isinstance(store, RedisHistory)
    assert (store.prefix, store.max_events, store.max_age) == ("one", 7, 30)
    assert store.client.connection_pool.connection_kwargs["db"] == 5
    assert get_history() is store
    settings.CHANNEL_LAYERS = {"default": {"CONFIG": {"prefix": "two"}}}
    renamed = get_history()
    assert renamed.prefix == "two" and renamed is not store
    settings.CHANNEL_LAYERS = {"default": {}}
    assert get_history().prefix == "asgi"
    for made in (store, renamed, get_history()):
        await made.client.aclose()


def test_a_store_is_per_event_loop():
    def made_in_a_new_loop():
        async def make():
            return get_history()

        return asyncio.run(make())

    from django.test import override_settings

    with override_settings(REDIS_URL=shared_redis_url()):
        assert made_in_a_new_loop() is not made_in_a_new_loop()
