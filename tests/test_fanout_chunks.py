"""A message to a large group is handed over a chunk of members at a time, the loop free in
between, and every member still gets the messages in the order they were routed."""

from __future__ import annotations

import asyncio

from realtime.delivery.fanout import Fanout
from realtime.delivery.messages import DIRECT
from tests.fixtures.waiting import aeventually


class Member:
    def __init__(self, log: list[tuple[int, str]], number: int):
        self.log, self.number = log, number

    def deliver(self, message, delivery=None):
        self.log.append((self.number, message["text"]))


def message(group: str, text: str) -> dict:
    return {"type": DIRECT, "group": group, "text": text}


def fanout_with(groups: dict[str, list[Member]]) -> Fanout:
    fanout = Fanout(layer=None)  # routing reads only the local members
    fanout.members = {group: set(members) for group, members in groups.items()}
    return fanout


async def test_a_large_group_lets_the_loop_run_between_chunks_and_reaches_every_member():
    log: list[tuple[int, str]] = []
    desks = [Member(log, n) for n in range(Fanout.CHUNK * 2 + 1)]
    fanout = fanout_with({"prices": desks})
    seen_meanwhile: list[int] = []

    fanout.route(message("prices", "tick"))
    asyncio.get_running_loop().call_soon(lambda: seen_meanwhile.append(len(log)))

    await aeventually(lambda: len(log) == len(desks), message="every desk got the tick")
    assert 0 < seen_meanwhile[0] < len(desks)  # the callback ran while the tick was under way
    assert sorted(number for number, _ in log) == list(range(len(desks)))


async def test_messages_routed_behind_a_large_one_reach_each_member_after_it():
    log: list[tuple[int, str]] = []
    desks = [Member(log, n) for n in range(Fanout.CHUNK * 3)]
    last = desks[-1]
    fanout = fanout_with({"prices": desks, "last-desk": [last]})

    fanout.route(message("prices", "tick 1"))
    fanout.route(message("last-desk", "answer"))  # a group of one, routed while tick 1 is under way
    fanout.route(message("prices", "tick 2"))

    await aeventually(lambda: len(log) == 2 * len(desks) + 1, message="every message delivered")
    assert [text for number, text in log if number == last.number] == ["tick 1", "answer", "tick 2"]
    for desk in desks:
        assert [text for number, text in log if number == desk.number and text != "answer"] == ["tick 1", "tick 2"]


async def test_a_member_that_leaves_while_a_large_message_is_under_way_is_skipped():
    log: list[tuple[int, str]] = []
    desks = [Member(log, n) for n in range(Fanout.CHUNK * 2)]
    fanout = fanout_with({"prices": desks})
    left: list[Member] = []

    def leave() -> None:
        # Between two chunks: one desk the tick has not reached yet closes (leaves the group).
        reached = {number for number, _ in log}
        leaver = next(desk for desk in desks if desk.number not in reached)
        fanout.members["prices"].discard(leaver)
        left.append(leaver)

    fanout.route(message("prices", "tick"))
    asyncio.get_running_loop().call_soon(leave)

    await aeventually(lambda: len(log) == len(desks) - 1, message="every desk but the leaver got the tick")
    await asyncio.sleep(0)  # the router has nothing left to hand over
    assert left and left[0].number not in {number for number, _ in log}


async def test_a_small_group_is_handed_over_at_once_when_nothing_waits():
    log: list[tuple[int, str]] = []
    fanout = fanout_with({"one": [Member(log, 0)]})

    fanout.route(message("one", "now"))

    assert log == [(0, "now")]
