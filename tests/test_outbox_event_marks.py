"""An outbox reports each frame it wrote late with its own event mark, whatever the frames around it carry."""

from __future__ import annotations

import asyncio

from realtime.delivery.outbox import Outbox


async def test_a_plain_frame_queued_before_an_event_frame_goes_out_and_is_reported_unmarked():
    texts: list[str] = []
    gate = asyncio.Event()

    async def send(text: str) -> None:
        await gate.wait()
        texts.append(text)

    sent: list[tuple[str, object]] = []
    box = Outbox(send, limit=10, on_overflow=lambda: None, on_sent=lambda text, event: sent.append((text, event)))

    box.put("plain")
    box.put("event", event=("market.alert", 1.5))
    box.put("plain again")
    gate.set()
    await box.flush()

    assert texts == ["plain", "event", "plain again"]
    assert sent == [("plain", None), ("event", ("market.alert", 1.5)), ("plain again", None)]
