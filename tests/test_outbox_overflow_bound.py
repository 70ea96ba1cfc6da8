"""The overflow bound of an outbox: one frame past `limit` waiting gives the socket up, and is not reported written."""

from __future__ import annotations

import asyncio

import pytest

from realtime.delivery.outbox import Outbox


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_the_frame_past_limit_waiting_ones_overflows_and_is_not_written(limit):
    gate = asyncio.Event()
    texts: list[str] = []

    async def send(text: str) -> None:
        await gate.wait()
        texts.append(text)

    overflows: list[int] = []
    box = Outbox(send, limit=limit, on_overflow=lambda: overflows.append(1))
    box.put("in send")
    await asyncio.sleep(0)  # the writer task now waits inside `send` with it
    for index in range(limit):
        box.put(str(index))
    assert (overflows, len(box)) == ([], limit)

    assert box.put("one too many") is False

    assert (overflows, len(box), box.dropped) == ([1], 0, limit + 1)
    gate.set()
    await box.flush()
    assert texts == ["in send"]
