"""realtime.server.input_queue: a connection's input in order, no item lost to a cancelled get, little memory."""

import asyncio
import tracemalloc

import pytest

from realtime.server.input_queue import InputQueue


async def test_items_come_out_in_the_order_they_were_put():
    queue = InputQueue()
    for n in range(5):
        queue.put_nowait(n)

    assert queue.qsize() == 5 and not queue.empty()
    assert [await queue.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert queue.empty() and queue.qsize() == 0


async def test_a_get_waits_for_the_next_put():
    queue = InputQueue()
    getting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not getting.done()

    queue.put_nowait({"type": "websocket.connect"})

    assert await asyncio.wait_for(getting, 5) == {"type": "websocket.connect"}


async def test_get_nowait_on_an_empty_queue_raises_queue_empty():
    with pytest.raises(asyncio.QueueEmpty):
        InputQueue().get_nowait()


async def test_a_cancelled_get_takes_nothing_and_the_item_waits_for_the_next():
    queue = InputQueue()
    getting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    getting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getting

    queue.put_nowait("first")

    assert queue.qsize() == 1
    assert await asyncio.wait_for(queue.get(), 5) == "first"


async def test_a_get_woken_then_cancelled_passes_the_item_to_the_next_waiting_get():
    queue = InputQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait("only")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs

    assert await asyncio.wait_for(second, 5) == "only"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert queue.empty()


async def test_puts_while_several_wait_give_each_waiting_get_one_item():
    queue = InputQueue()
    waiting = [asyncio.ensure_future(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)

    for item in ("a", "b", "c"):
        queue.put_nowait(item)

    assert sorted(await asyncio.wait_for(asyncio.gather(*waiting), 5)) == ["a", "b", "c"]
    assert queue.empty()


def test_an_idle_queue_takes_a_small_fraction_of_an_asyncio_queue():
    def allocated(make) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [make() for _ in range(1000)]
            size = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(kept) == 1000
        return size // 1000

    ours, asyncio_queue = allocated(InputQueue), allocated(asyncio.Queue)

    assert ours <= 100
    assert asyncio_queue >= 10 * ours
