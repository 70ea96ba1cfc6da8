"""The event history's rules, each at its boundary: numbering, epochs, once-keys, replay judgement, limits."""

import pytest

from realtime.delivery.history import Entry, MemoryHistory, RedisHistory, Replay, _judge, _over_limit, with_sequence
from tests.fixtures.history import FRAME, MAX_AGE, NOW


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryHistory(max_events=3, max_age=MAX_AGE)
    return request.getfixturevalue("redis_history")


def entries(*seqs: int, at: float = NOW) -> list[Entry]:
    return [Entry(seq, f"frame {seq}", None, at) for seq in seqs]


def test_a_sequence_number_and_epoch_become_the_frames_last_keys():
    assert with_sequence('{"type":"event"}', 7, "e1") == '{"type":"event","seq":7,"epoch":"e1"}'


# (client seq, client epoch, stored entries, recovered?, entries given back)
JUDGEMENTS = [
    (2, "e", entries(3, 4, 5), True, [3, 4, 5]),
    (5, "e", [], True, []),  # up to date
    (2, "other", entries(3, 4, 5), False, []),  # an older life of the stream
    (-1, "e", entries(0, 1, 2, 3, 4, 5), False, []),
    (6, "e", [], False, []),  # ahead of the stream: not from this life
    (2, "e", entries(4, 5), False, []),  # the oldest missed one is gone
    (2, "e", entries(3, 5), False, []),  # a gap in the middle
    (2, "e", entries(3, 4), False, []),  # the newest is missing
    (2, "e", entries(3, 4, 5, 6), True, [3, 4, 5]),  # numbered after the position was read
    (0, "e", entries(1, 2, 3, 4, 5), True, [1, 2, 3, 4, 5]),
]


@pytest.mark.parametrize(("seq", "epoch", "stored", "recovered", "given"), JUDGEMENTS)
def test_replay_is_judged_complete_only_for_exactly_the_events_after_seq(
    history_clock, seq, epoch, stored, recovered, given
):
    replay = _judge(seq, epoch, 5, "e", stored, MAX_AGE)

    assert (replay.recovered, [entry.seq for entry in replay.entries]) == (recovered, given)
    assert (replay.seq, replay.epoch, replay.over_limit) == (5, "e", False)


@pytest.mark.parametrize(("age", "recovered"), [(MAX_AGE - 1, True), (MAX_AGE, True), (MAX_AGE + 1, False)])
def test_replay_judges_the_age_by_the_oldest_missed_event(history_clock, age, recovered):
    stored = [Entry(1, "a", None, NOW - age), Entry(2, "b", None, NOW)]

    assert _judge(0, "e", 2, "e", stored, MAX_AGE).recovered is recovered


# (client seq, client epoch, limit, over the limit?) against a stream at seq 10 of epoch "e"
LIMITS = [
    (5, "e", 5, False),
    (4, "e", 5, True),
    (4, "e", None, False),
    (4, "other", 5, False),  # cannot succeed anyway
    (-1, "e", 5, False),
    (10, "e", 0, False),
    (9, "e", 0, True),
    (11, "e", 0, False),
]


@pytest.mark.parametrize(("seq", "epoch", "limit", "over"), LIMITS)
def test_a_replay_is_over_the_limit_only_when_it_could_succeed_and_holds_more(seq, epoch, limit, over):
    assert _over_limit(seq, epoch, 10, "e", limit) is over


async def test_each_event_type_is_numbered_on_its_own_in_one_epoch(store):
    first = await store.append("market.alert", FRAME, [1])
    second = await store.append("market.alert", FRAME, None)
    other = await store.append("system.notice", FRAME, None)

    assert (first[0], second[0], other[0]) == (1, 2, 1)
    assert first[1] == second[1] != other[1] and len(first[1]) == len(other[1]) == 16
    assert first[2] == with_sequence(FRAME, 1, first[1])
    assert await store.position("market.alert") == (2, first[1])


async def test_a_stream_nobody_wrote_is_at_zero_of_an_epoch_that_stays(store):
    seq, epoch = await store.position("market.alert")

    assert seq == 0 and len(epoch) == 16
    assert await store.position("market.alert") == (0, epoch)
    assert (await store.append("market.alert", FRAME, None))[:2] == (1, epoch)


async def test_replay_returns_frames_with_their_audience_after_the_clients_seq(store, history_clock):
    _, epoch, _ = await store.append("market.alert", FRAME, [4, 5])
    _, _, second = await store.append("market.alert", FRAME, None)

    replay = await store.since("market.alert", 1, epoch)

    assert replay == Replay(True, [Entry(2, second, None, NOW)], 2, epoch)
    replay = await store.since("market.alert", 0, epoch)
    assert [(entry.seq, entry.audience) for entry in replay.entries] == [(1, [4, 5]), (2, None)]


async def test_a_stream_nobody_wrote_replays_nothing_and_is_complete(store):
    seq, epoch = await store.position("market.alert")

    assert await store.since("market.alert", 0, epoch) == Replay(True, [], 0, epoch)


async def test_a_redis_stream_lost_while_its_counter_stayed_is_refused_as_a_gap(redis_history, history_clock):
    # Redis evicting keys under its memory limit can take the stream and leave the counter
    for _ in range(2):
        await redis_history.append("market.alert", FRAME, None)
    _, epoch = await redis_history.position("market.alert")
    await redis_history.client.delete(redis_history._keys("market.alert")[2])

    assert await redis_history.since("market.alert", 0, epoch) == Replay(False, [], 2, epoch)


async def test_a_type_marked_before_it_was_ever_numbered_starts_at_one(store):
    store.mark_unnumbered(["market.alert"])

    assert (await store.append("market.alert", FRAME, None))[0] == 1
    assert store.unnumbered == set()


async def test_replay_over_the_callers_limit_reads_nothing(store):
    for _ in range(3):
        _, epoch, _ = await store.append("market.alert", FRAME, None)

    assert await store.since("market.alert", 0, epoch, limit=2) == Replay(False, [], 3, epoch, over_limit=True)
    assert (await store.since("market.alert", 1, epoch, limit=2)).recovered is True


async def test_the_memory_history_keeps_the_last_max_events_of_a_type(history_clock):
    # Redis trims its streams approximately (MAXLEN ~), so the exact bound is the memory store's
    store = MemoryHistory(max_events=3, max_age=MAX_AGE)
    for _ in range(5):
        _, epoch, _ = await store.append("market.alert", FRAME, None)

    assert [entry.seq for entry in (await store.since("market.alert", 3, epoch)).entries] == [4, 5]
    assert (await store.since("market.alert", 0, epoch)).recovered is False


async def test_a_type_marked_unnumbered_starts_a_new_epoch_once_without_its_old_events(store, history_clock):
    _, old_epoch, _ = await store.append("market.alert", FRAME, None)
    await store.append("system.notice", FRAME, None)
    store.mark_unnumbered(["market.alert"])

    seq, epoch, _ = await store.append("market.alert", FRAME, None)
    again, same_epoch, _ = await store.append("market.alert", FRAME, None)

    assert (seq, again, same_epoch) == (1, 2, epoch) and epoch != old_epoch
    assert store.unnumbered == set()
    assert [entry.seq for entry in (await store.since("market.alert", 0, epoch)).entries] == [1, 2]
    assert (await store.position("system.notice"))[0] == 1


async def test_appending_many_numbers_them_in_order_and_renews_a_marked_type_once(store):
    _, old_epoch, _ = await store.append("market.alert", FRAME, None)
    store.mark_unnumbered(["market.alert"])

    numbered = await store.append_many(
        [("market.alert", FRAME, None), ("system.notice", FRAME, [3]), ("market.alert", FRAME, None)]
    )

    assert [seq for seq, _, _ in numbered] == [1, 1, 2]
    assert numbered[0][1] == numbered[2][1] != old_epoch
    assert [text for _, _, text in numbered] == [with_sequence(FRAME, seq, epoch) for seq, epoch, _ in numbered]
    assert store.unnumbered == set()


async def test_an_event_appended_once_per_key_is_numbered_once_until_its_key_expires(store, history_clock):
    first = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)
    again = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)
    other_type = await store.append_once("system.notice", FRAME, None, once="m-1", ttl=60)

    assert again == first == (1, first[1], with_sequence(FRAME, 1, first[1]))
    assert other_type[0] == 1 and other_type[1] != first[1]
    assert (await store.position("market.alert"))[0] == 1


async def test_an_event_appended_once_keeps_its_audience(store):
    _, epoch, _ = await store.append_once("market.alert", FRAME, [7, 8], once="m-1", ttl=60)
    await store.append_many([("market.alert", FRAME, [9])])

    replay = await store.since("market.alert", 0, epoch)

    assert [entry.audience for entry in replay.entries] == [[7, 8], [9]]


async def test_an_event_appended_once_renews_only_its_own_marked_type(store):
    _, old_epoch, _ = await store.append("market.alert", FRAME, None)
    store.mark_unnumbered(["market.alert", "system.notice"])

    seq, epoch, _ = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)

    assert (seq, epoch != old_epoch) == (1, True)
    assert store.unnumbered == {"system.notice"}


async def test_a_once_key_of_the_memory_history_expires_exactly_at_its_ttl(history_clock):
    store = MemoryHistory(max_events=10, max_age=MAX_AGE)
    await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)
    await store.append_once("market.alert", FRAME, None, once="m-2", ttl=120)

    history_clock.mono += 59
    assert (await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60))[0] == 1
    history_clock.mono += 1
    assert (await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60))[0] == 3
    assert (await store.append_once("market.alert", FRAME, None, once="m-2", ttl=120))[0] == 2


async def test_a_once_key_of_an_older_epoch_does_not_hold_back_the_event(store):
    await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)
    store.mark_unnumbered(["market.alert"])
    await store.append("market.alert", FRAME, None)

    seq, epoch, text = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)

    if isinstance(store, RedisHistory):  # the Redis key is checked against the epoch
        assert seq == 2
    assert text == with_sequence(FRAME, seq, epoch)


async def test_a_redis_once_hit_keeps_the_mark_of_a_type_the_other_process_numbered(redis_history):
    store = redis_history
    first = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)
    store.mark_unnumbered(["market.alert"])

    again = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)

    assert again == first
    assert store.unnumbered == {"market.alert"}


async def test_a_redis_once_hit_whose_frame_was_trimmed_rebuilds_the_frame(redis_history):
    store = redis_history
    seq, epoch, _ = await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60)
    await store.client.delete(store._keys("market.alert")[2])

    assert await store.append_once("market.alert", FRAME, None, once="m-1", ttl=60) == (
        seq,
        epoch,
        with_sequence(FRAME, seq, epoch),
    )
