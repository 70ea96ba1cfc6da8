"""Replay refuses events older than the history's age limit, in both stores, at the exact boundary."""

import time
import uuid

import pytest

from realtime.delivery import history
from realtime.delivery.history import MemoryHistory, RedisHistory
from tests.fixtures.bus import shared_redis_url

MAX_AGE = 900
FRAME = '{"type":"event","event":"market.alert","data":{}}'


class Clock:
    """Stands in for the `time` module inside `realtime.delivery.history`: a wall clock the test moves."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(1_800_000_000.0)
    monkeypatch.setattr(history, "time", clock)
    return clock


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryHistory(max_events=100, max_age=MAX_AGE)
        return
    prefix = f"test-age-{uuid.uuid4().hex[:8]}"
    store = RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=100, max_age=MAX_AGE)
    yield store
    keys = [key async for key in store.client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await store.client.delete(*keys)
    await store.client.aclose()


@pytest.mark.parametrize(
    ("age", "recovered"), [(0, True), (MAX_AGE - 1, True), (MAX_AGE, True), (MAX_AGE + 1, False), (10 * MAX_AGE, False)]
)
async def test_replay_gives_the_missed_events_only_while_the_oldest_is_within_the_age_limit(
    store, clock, age, recovered
):
    # given two events stored at one moment, and a client that saw none of them
    await store.append("market.alert", FRAME, None)
    seq, epoch, _ = await store.append("market.alert", FRAME, None)

    # when it asks for what came after seq 0, `age` seconds later
    clock.now += age
    replay = await store.since("market.alert", 0, epoch)

    # then both come back while they are at most MAX_AGE old, and none (reload instead) after that
    assert replay.recovered is recovered
    assert [entry.seq for entry in replay.entries] == ([1, 2] if recovered else [])
    assert (replay.seq, replay.epoch) == (seq, epoch)


async def test_a_recent_tail_is_not_replayed_when_an_older_missed_event_is_past_the_limit(store, clock):
    # given one old event and, much later, a new one
    _, epoch, _ = await store.append("market.alert", FRAME, None)
    clock.now += MAX_AGE + 10
    await store.append("market.alert", FRAME, None)

    # when a client that saw neither asks, it cannot be given a complete replay
    replay = await store.since("market.alert", 0, epoch)
    assert (replay.recovered, replay.entries) == (False, [])

    # while a client that saw the old one gets the new one
    replay = await store.since("market.alert", 1, epoch)
    assert replay.recovered is True
    assert [entry.seq for entry in replay.entries] == [2]


async def test_a_replay_longer_than_one_page_comes_back_whole_and_in_order(clock):
    """The Redis history reads a replay in pages of REPLAY_PAGE (the loop serves others between them)."""
    prefix = f"test-pages-{uuid.uuid4().hex[:8]}"
    store = RedisHistory(url=shared_redis_url(), prefix=prefix, max_events=1000, max_age=MAX_AGE)
    try:
        count = 2 * history.REPLAY_PAGE + 37
        audiences = [None if n % 3 else [n] for n in range(1, count + 1)]
        for n, audience in enumerate(audiences, 1):
            seq, epoch, _ = await store.append("market.alert", FRAME[:-1] + f',"n":{n}}}', audience)
        for since in (0, history.REPLAY_PAGE, count - 1, count):
            replay = await store.since("market.alert", since, epoch)
            assert replay.recovered and (replay.seq, replay.epoch) == (count, epoch)
            assert [entry.seq for entry in replay.entries] == list(range(since + 1, count + 1))
            assert [entry.audience for entry in replay.entries] == audiences[since:]
    finally:
        keys = [key async for key in store.client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await store.client.delete(*keys)
        await store.client.aclose()
