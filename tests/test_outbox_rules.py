"""One socket's outbox: order, conflation, the overflow bound, and when frames go straight to the socket."""

from __future__ import annotations

import asyncio

import pytest

from realtime.delivery.outbox import Outbox
from realtime.wire.frames import text_frame


class Writer:
    """A `FrameWriter` whose server backlog the test sets; records the frames written, in order."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.held = 0
        self.fail = False
        self.unless_over: list[int | None] = []

    def backlog(self) -> int:
        return self.held

    def write(self, frame: bytes, *, unless_over: int | None = None) -> bool:
        if self.fail:
            raise ConnectionError("gone")
        self.unless_over.append(unless_over)
        if unless_over is not None and self.held > unless_over:
            return False
        self.frames.append(frame)
        return True


class Sink:
    """ASGI `send` stand-in: records the texts; the test can hold it up with `gate`."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def __call__(self, text: str) -> None:
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("gone")
        self.texts.append(text)


def outbox(*, limit=3, writer=None, send=None):
    overflows: list[int] = []
    sent: list[tuple[str, object]] = []
    box = Outbox(
        send or Sink(),
        limit=limit,
        on_overflow=lambda: overflows.append(1),
        on_sent=lambda text, event: sent.append((text, event)),
        writer=writer,
    )
    return box, overflows, sent


async def test_without_a_writer_frames_go_through_asgi_in_order_and_are_reported():
    sink = Sink()
    box, _, sent = outbox(send=sink)

    assert box.writer == "asgi" and box.server_backlog() is None
    assert box.put("a", event=("market.alert", 1.5)) is False
    assert box.put("b") is False
    await box.flush()

    assert sink.texts == ["a", "b"]
    assert sent == [("a", ("market.alert", 1.5)), ("b", None)]
    assert (box.sent, len(box)) == (2, 0)


async def test_a_conflated_frame_replaces_the_waiting_one_with_its_key_in_place():
    sink = Sink()
    sink.gate.clear()
    box, _, sent = outbox(send=sink)

    box.put("first")
    await asyncio.sleep(0)  # the writer task now waits inside `send` with "first"
    box.put("sap 1", conflate_key=("price", "SAP"), event=("market.price_update", 1.0))
    box.put("other")
    box.put("sap 2", conflate_key=("price", "SAP"), event=("market.price_update", 2.0))
    box.put("bmw", conflate_key=("price", "BMW"))
    assert (len(box), box.conflated) == (3, 1)
    sink.gate.set()
    await box.flush()

    assert sink.texts == ["first", "sap 2", "other", "bmw"]
    assert ("sap 2", ("market.price_update", 2.0)) in sent


async def test_more_than_limit_waiting_frames_give_the_socket_up_once():
    sink = Sink()
    sink.gate.clear()
    box, overflows, _ = outbox(limit=3, send=sink)
    box.put("in send")
    await asyncio.sleep(0)

    for text in ("1", "2", "3"):
        assert box.put(text) is False
    box.put("price", conflate_key="k")  # conflated frames do not count against the limit
    assert (overflows, len(box)) == ([], 4)
    box.put("4")

    assert overflows == [1] and box.dropped == 5 and len(box) == 0
    assert box.put("later") is False and len(box) == 0 and overflows == [1]
    sink.gate.set()
    await box.flush()
    assert sink.texts == ["in send"]


async def test_with_a_writer_a_frame_is_written_at_once_while_nothing_waits():
    writer = Writer()
    box, _, sent = outbox(writer=writer)

    assert box.writer == "socket" and box.server_backlog() == 0
    assert box.put("a") is True
    assert box.put("b", wire=b"prebuilt") is True

    assert writer.frames == [text_frame(b"a"), b"prebuilt"]
    assert writer.unless_over == [Outbox.HIGH_WATER, Outbox.HIGH_WATER]
    assert (box.sent, sent, len(box)) == (2, [], 0)  # the caller counts frames written at once


async def test_over_the_high_water_mark_frames_wait_and_go_in_order_once_the_client_reads(monkeypatch):
    monkeypatch.setattr(Outbox, "POLL_SECONDS", 0.001)
    writer = Writer()
    writer.held = Outbox.HIGH_WATER + 1
    box, _, sent = outbox(writer=writer)

    assert box.put("a", event=("x.y", None)) is False
    assert box.put("b", wire=b"wire-b") is False
    assert box.server_backlog() == Outbox.HIGH_WATER + 1
    await asyncio.sleep(0.01)
    assert writer.frames == [] and len(box) == 2

    writer.held = Outbox.HIGH_WATER
    await box.flush()
    assert writer.frames == [text_frame(b"a"), b"wire-b"]
    assert sent == [("a", ("x.y", None)), ("b", None)]
    assert box.put("c") is True  # nothing waits any more: straight to the socket


async def test_a_frame_put_while_others_wait_queues_behind_them():
    writer = Writer()
    writer.held = Outbox.HIGH_WATER + 1
    box, _, _ = outbox(writer=writer)
    box.put("a")
    writer.held = 0

    assert box.put("b") is False
    await box.flush()

    assert writer.frames == [text_frame(b"a"), text_frame(b"b")]


async def test_a_writer_task_cancelled_while_frames_wait_is_replaced_and_they_still_go_out():
    sink = Sink()
    sink.gate.clear()
    box, _, sent = outbox(send=sink)
    box.put("a")
    await asyncio.sleep(0)  # the writer task now waits inside `send` with "a"
    box.put("b")
    cancelled = box._writer
    assert cancelled is not None

    cancelled.cancel()
    await asyncio.wait([cancelled])
    sink.gate.set()
    await box.flush()

    assert sink.texts == ["b"] and sent == [("b", None)]  # "a" went with the cancelled send


async def test_a_socket_that_fails_closes_the_outbox():
    writer = Writer()
    writer.fail = True
    box, overflows, _ = outbox(writer=writer)

    assert box.put("a") is False
    assert box.put("b") is False and len(box) == 0 and overflows == []


async def test_a_send_that_fails_closes_the_outbox_and_drops_what_waits():
    sink = Sink()
    sink.fail = True
    box, _, sent = outbox(send=sink)

    box.put("a")
    box.put("b")
    await box.flush()

    assert (sink.texts, sent, len(box), box.sent) == ([], [], 0, 0)
    assert box.put("c") is False and len(box) == 0


async def test_closing_drops_what_waits():
    sink = Sink()
    sink.gate.clear()
    box, _, _ = outbox(send=sink)
    box.put("a")
    await asyncio.sleep(0)
    box.put("b", event=("x.y", None))

    box.close()
    sink.gate.set()
    await box.flush()

    assert sink.texts == ["a"] and len(box) == 0 and box._events == {}


@pytest.mark.parametrize("limit", [1, 2])
async def test_exactly_limit_frames_may_wait(limit):
    sink = Sink()
    sink.gate.clear()
    box, overflows, _ = outbox(limit=limit, send=sink)
    box.put("in send")
    await asyncio.sleep(0)

    for index in range(limit):
        box.put(str(index))

    assert overflows == [] and len(box) == limit
    sink.gate.set()
    await box.flush()
    assert sink.texts == ["in send", *map(str, range(limit))]
