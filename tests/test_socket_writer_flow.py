"""The outbox told by Twisted's producer API when a client's buffer fills and empties.

The transport is Twisted's `FileDescriptor` over a stand-in socket (`test_socket_writer`), so the
producer calls come from Twisted's own code: `write` asks the producer to pause once more than
`bufferSize` waits, `doWrite` asks it to resume once everything is written, `connectionLost`
tells it to stop. Each test's socket takes nothing until the test lets the client "read"
(`Transport.flush`).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from twisted.internet import abstract
from twisted.python.failure import Failure

from realtime.delivery.outbox import Outbox
from realtime.server import checks
from realtime.server.transport import SocketWriter, held
from realtime.wire.frames import text_frame

from .test_socket_writer import Protocol, Reactor, Transport

BIG = 50_000  # bytes of payload per "alert" frame: six of them pass the 256 KiB mark


class ClosingReactor(Reactor):
    def removeReader(self, _descriptor) -> None:
        pass


class Producer:
    """A streaming producer that held the slot before (daphne's HTTP channel, say); records its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class Listener:
    """A `frames.FlowListener` that records what it is told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def writable(self) -> None:
        self.calls.append("writable")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def transport() -> Transport:
    made = Transport()
    made.reactor = ClosingReactor()  # type: ignore[assignment]  # a stand-in reactor, as in `Transport`
    made.socket.budget = 0  # the client is not reading
    return made


@pytest.fixture(autouse=True)
def fresh_decisions():
    checks.part_usable.cache_clear()
    checks.log_fallback.cache_clear()
    yield
    checks.part_usable.cache_clear()
    checks.log_fallback.cache_clear()


def outbox_on(transport: Transport, *, limit: int = 100) -> tuple[Outbox, list[int], list[str]]:
    overflows: list[int] = []
    sent: list[str] = []
    box = Outbox(
        pytest.fail,
        limit=limit,
        on_overflow=lambda: overflows.append(1),
        on_sent=lambda text, event: sent.append(text),
        writer=SocketWriter(Protocol(transport), transport),
    )
    return box, overflows, sent


def alert(n: int) -> str:
    return f"alert-{n}:" + "x" * BIG


def timers() -> list[asyncio.TimerHandle]:
    """The running loop's pending timers (a poll would be one)."""
    # `_scheduled` is the private timer heap of asyncio's own loop, which typeshed does not declare.
    return [handle for handle in asyncio.get_running_loop()._scheduled if not handle.cancelled()]  # type: ignore[attr-defined]


def frames_on_the_wire(wire: bytes) -> list[str]:
    """Split unmasked server text frames (`frames.text_frame`) back into their texts."""
    texts = []
    while wire:
        length, start = wire[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(wire[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(wire[2:10], "big"), 10
        texts.append(wire[start : start + length].decode())
        wire = wire[start + length :]
    return texts


async def test_the_writer_takes_the_producer_slot_and_the_http_channel_before_it_keeps_every_call(transport):
    channel = Producer()
    transport.registerProducer(channel, True)  # as daphne's HTTP channel stays registered after the upgrade

    box, _, _ = outbox_on(transport)
    writer = transport.producer

    assert isinstance(writer, SocketWriter) and transport.streamingProducer and writer.previous is channel
    box.put("x" * 70_000)  # past Twisted's 64 KiB: Twisted asks for a pause, under the mark: not full
    assert channel.calls == ["pause"] and not writer.full
    transport.flush()
    assert channel.calls == ["pause", "resume"]
    transport.connectionLost(Failure(ConnectionError("gone")))
    assert channel.calls == ["pause", "resume", "stop"]


def test_full_means_more_than_the_mark_held_not_twisteds_own_count(transport):
    writer = SocketWriter(Protocol(transport), transport)
    listener = Listener()
    assert writer.watch(listener, mark=Outbox.HIGH_WATER)
    crossing = Outbox.HIGH_WATER - 250_000 + 1

    writer.write(b"a" * 200_000)  # all of it to Twisted: past its 64 KiB it asks for a pause, under the mark
    assert transport.producerPaused and not writer.full
    transport.socket.budget = 150_000
    transport.doWrite()  # the client reads 150 kB of Twisted's buffer, which still counts them
    transport.socket.budget = 0
    writer.write(b"b" * 200_000)  # Twisted's count: 400 kB, held: 250 kB
    assert held(transport) == 250_000 and not writer.full

    writer.write(b"c" * crossing)
    assert held(transport) == Outbox.HIGH_WATER + 1 and writer.full and listener.calls == []

    transport.flush()
    assert not writer.full and listener.calls == ["writable"]
    assert transport.socket.wire == b"a" * 200_000 + b"b" * 200_000 + b"c" * crossing


def test_a_buffer_holding_exactly_the_mark_is_not_full(transport):
    writer = SocketWriter(Protocol(transport), transport)
    assert writer.watch(Listener(), mark=Outbox.HIGH_WATER)

    writer.write(b"a" * Outbox.HIGH_WATER)  # past Twisted's 64 KiB: it asks for a pause, at the mark
    assert transport.producerPaused and held(transport) == Outbox.HIGH_WATER and not writer.full

    writer.write(b"b")
    assert writer.full


async def test_while_paused_frames_wait_in_the_outbox_ticks_conflate_and_no_timer_runs(transport, monkeypatch):
    monkeypatch.setattr(Outbox, "POLL_SECONDS", 3600.0)  # a poll would not come back within the test
    box, overflows, sent = outbox_on(transport)

    written_at_once = 0
    n = 0
    while box.put(alert(n)):  # written until Twisted holds more than the mark
        written_at_once += 1
        n += 1
    assert transport.producer.full and held(transport) > Outbox.HIGH_WATER
    assert held(transport) <= Outbox.HIGH_WATER + len(text_frame(alert(0).encode()))  # the crossing frame
    for cents in range(10):
        box.put(f"SAP 187.{cents:02d}", conflate_key=("market.price_update", "SAP"))
    box.put(alert(n + 1))
    await asyncio.sleep(0)  # the writer task runs up to its wait

    assert box._resumed is not None and not box._resumed.done()
    assert timers() == []  # waiting costs no timer: Twisted says when to go on
    assert len(box) == 3 and box.conflated == 9 and sent == []
    assert held(transport) <= Outbox.HIGH_WATER + len(text_frame(alert(0).encode()))

    transport.flush()  # the client reads everything: Twisted calls resumeProducing, the writer task goes on
    await asyncio.wait_for(box.flush(), 5)

    expected = [alert(i) for i in range(n + 1)] + ["SAP 187.09", alert(n + 1)]
    transport.flush()
    assert frames_on_the_wire(transport.socket.wire) == expected
    assert sent == [alert(n), "SAP 187.09", alert(n + 1)] and overflows == []
    assert not transport.producer.full and written_at_once == n
    assert box.put("next") is True  # nothing waits any more: straight to the socket


async def test_resume_writes_only_until_the_mark_again(transport):
    box, _, _ = outbox_on(transport)
    n = 0
    while box.put(alert(n)):
        n += 1
    for extra in range(1, 11):  # ten more frames wait: more than the mark
        box.put(alert(n + extra))
    await asyncio.sleep(0)

    transport.socket.budget = None
    while held(transport):  # the client reads what Twisted held, and no more
        transport.doWrite()
    transport.socket.budget = 0
    await asyncio.sleep(0)  # the writer task wakes and writes until Twisted holds more than the mark

    assert transport.producer.full and box._resumed is not None
    assert Outbox.HIGH_WATER < held(transport) <= Outbox.HIGH_WATER + len(text_frame(alert(0).encode()))
    assert 0 < len(box) < 10

    transport.flush()
    await asyncio.wait_for(box.flush(), 5)
    transport.flush()
    assert frames_on_the_wire(transport.socket.wire) == [alert(i) for i in range(n + 11)]


async def test_more_than_the_limit_waiting_behind_a_full_buffer_closes_as_before(transport):
    box, overflows, _ = outbox_on(transport, limit=3)
    n = 0
    while box.put(alert(n)):
        n += 1
    for extra in range(1, 3):
        box.put(alert(n + extra))
    assert overflows == [] and len(box) == 3  # the frame that found the buffer full, and two more

    box.put("one too many")

    assert overflows == [1] and len(box) == 0 and box.dropped == 4


async def test_a_lost_connection_closes_the_outbox_and_ends_the_waiting_writer_task(transport):
    box, overflows, sent = outbox_on(transport)
    n = 0
    while box.put(alert(n)):
        n += 1
    box.put(alert(n + 1))
    await asyncio.sleep(0)
    assert box._resumed is not None

    transport.connectionLost(Failure(ConnectionError("reset")))
    await asyncio.wait_for(box.flush(), 5)

    assert len(box) == 0 and sent == [] and overflows == []
    assert box.put("late") is False and len(box) == 0


async def test_after_the_client_caught_up_the_outbox_is_told_again_and_closed_without_a_fault(transport):
    box, overflows, sent = outbox_on(transport)
    n = 0
    while box.put(alert(n)):
        n += 1
    box.put(alert(n + 1))
    await asyncio.sleep(0)  # the writer task waits for Twisted
    transport.flush()
    await asyncio.wait_for(box.flush(), 5)
    assert sent == [alert(n), alert(n + 1)]

    box.writable()  # told again with nothing waiting, as each time the client's buffer empties
    transport.connectionLost(Failure(ConnectionError("reset")))  # closing tells the waiting writer task too

    assert box.put("late") is False and len(box) == 0 and overflows == []


async def test_a_transport_already_gone_closes_the_outbox_at_once(transport):
    transport.connectionLost(Failure(ConnectionError("reset")))
    box, _, _ = outbox_on(transport)
    assert box.put("late") is False and len(box) == 0


async def test_a_pull_producer_in_the_slot_leaves_the_outbox_measuring_the_buffer(transport, monkeypatch):
    pull = Producer()
    transport.registerProducer(pull, False)
    monkeypatch.setattr(Outbox, "POLL_SECONDS", 0.001)
    box, _, _ = outbox_on(transport)

    assert transport.producer is pull and not box._watched
    n = 0
    while box.put(alert(n)):
        n += 1
    box.put(alert(n + 1))
    transport.flush()
    await asyncio.wait_for(box.flush(), 5)
    transport.flush()
    assert frames_on_the_wire(transport.socket.wire) == [alert(i) for i in range(n + 2)]


async def test_without_the_flow_names_the_outbox_measures_the_buffer_and_says_so_once(transport, monkeypatch, caplog):
    monkeypatch.delattr(abstract.FileDescriptor, "_maybePauseProducer")
    with caplog.at_level(logging.WARNING, logger="realtime.server"):
        box, _, _ = outbox_on(transport)
        outbox_on(Transport())

    assert not box._watched and transport.producer is None
    assert [record.getMessage() for record in caplog.records] == [
        "daphne adapter: flow part not in use (names it needs are missing, see manage.py check; the outbox"
        " measures the buffer every 20 ms); the slower public path serves instead"
    ]
    assert any("_maybePauseProducer" in error.msg for error in checks.adapter_errors())
