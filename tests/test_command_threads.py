"""Commands' database work on the command threads: one lane per socket, in order; lanes side by side."""

import asyncio
import threading
import zlib
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from realtime.runtime.threads import closing_connections, command_lane_set, on_background_thread, on_command_threads
from trading.models import Order
from tests.fixtures.commands import connect
from tests.fixtures.waiting import aeventually

D = Decimal


def _keys_on_two_lanes(threads: int) -> tuple[str, str]:
    """Two lane keys that land on different threads of `threads`."""
    first = "socket-a"
    lane = zlib.crc32(first.encode()) % threads
    second = next(f"socket-{n}" for n in range(1000) if zlib.crc32(f"socket-{n}".encode()) % threads != lane)
    return first, second


async def test_one_lane_runs_its_work_in_order_while_another_lane_goes_on(settings):
    settings.REALTIME = {**settings.REALTIME, "COMMAND_THREADS": 4}
    first, second = _keys_on_two_lanes(4)
    started, release = threading.Event(), threading.Event()
    ran: list[tuple[str, int]] = []

    def blocking(name: str) -> None:
        ran.append((name, threading.get_ident()))
        started.set()
        assert release.wait(10), "never released"

    def quick(name: str) -> None:
        ran.append((name, threading.get_ident()))

    async def on_lane(key: str, func, name: str) -> None:
        command_lane_set(key)  # as the command runner does for each command's task
        await on_command_threads(func)(name)

    held = asyncio.ensure_future(on_lane(first, blocking, "held"))
    assert await asyncio.to_thread(started.wait, 10), "the first lane's work never started"
    behind = asyncio.ensure_future(on_lane(first, quick, "behind the held one"))
    beside = asyncio.ensure_future(on_lane(second, quick, "on another lane"))

    await asyncio.wait_for(beside, 10)  # runs while the first lane's thread is held
    assert [name for name, _ in ran] == ["held", "on another lane"]
    release.set()
    await asyncio.wait_for(asyncio.gather(held, behind), 10)
    names = {name: ident for name, ident in ran}
    assert [name for name, _ in ran] == ["held", "on another lane", "behind the held one"]
    assert names["held"] == names["behind the held one"] != names["on another lane"]


async def test_background_work_holds_up_no_lane(settings):
    settings.REALTIME = {**settings.REALTIME, "COMMAND_THREADS": 1}  # every socket on the one lane
    started, release = threading.Event(), threading.Event()

    def analysis() -> None:
        started.set()
        assert release.wait(10), "never released"

    background = asyncio.ensure_future(on_background_thread(analysis)())
    assert await asyncio.to_thread(started.wait, 10), "the background work never started"
    command_lane_set("socket-a")

    assert await asyncio.wait_for(on_command_threads(lambda: "answered")(), 10) == "answered"
    assert not background.done()
    release.set()
    await asyncio.wait_for(background, 10)


@pytest.mark.django_db(transaction=True)
async def test_a_sockets_two_modifies_sent_at_once_apply_in_the_order_sent(ws_connect, trader, portfolio, sap):
    client = await connect(ws_connect, trader)
    placed = await client.command(
        "place_order", {"symbol": "SAP", "side": "buy", "quantity": 1, "order_type": "limit", "price": 100}
    )
    order_id = placed["data"]["result"]["order_id"]

    # Both go out before either is answered; several command threads are free.
    for n, quantity in enumerate((5, 7, 9)):
        await client.send(
            {
                "type": "user",
                "event": "modify_order",
                "data": {"order_id": order_id, "quantity": quantity},
                "correlation_id": f"m-{n}",
            }
        )
    answers = [await client.receive_event("modify_order.response") for _ in range(3)]

    assert sorted(a["correlation_id"] for a in answers) == ["m-0", "m-1", "m-2"]
    assert all(a["data"]["status"] == "success" for a in answers)
    # Read with the connection closed again (as a command thread does), so none stays out of the pool.
    order = await database_sync_to_async(closing_connections(Order.objects.get))(pk=order_id)
    assert order.quantity == D("9")


@pytest.mark.django_db(transaction=True)
async def test_commands_give_their_database_connections_back_to_the_pool(ws_connect, trader, portfolio, sap):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the connection pool is PostgreSQL's: run the suite on PostgreSQL")
    clients = [await connect(ws_connect, trader) for _ in range(6)]
    answers = await asyncio.gather(
        *(
            client.command(
                "place_order",
                {"symbol": "SAP", "side": "buy", "quantity": 1, "order_type": "limit", "price": 100},
                correlation_id=f"p-{n}",
            )
            for n, client in enumerate(clients)
        )
    )
    assert all(a["data"]["status"] == "success" for a in answers)
    for client in clients:
        await client.close()
    # The test's own connection (this thread) may be out; no command thread's once the
    # consumers' last bookkeeping after the close has finished.
    await aeventually(
        lambda: (stats := connection.pool.get_stats())["pool_size"] - stats["pool_available"] <= 1,
        message="a connection stays checked out of the pool",
    )
