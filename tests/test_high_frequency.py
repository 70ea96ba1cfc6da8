"""High-frequency delivery: per-symbol subscriptions, conflation, and slow-socket isolation."""

import asyncio
from decimal import Decimal

import pytest

from realtime.runtime.connections import connections
from realtime.delivery.dispatch import asend_event
from realtime.delivery.outbox import Outbox
from realtime.wire.protocol import CloseCode
from tests.fixtures.ws import login_cookie, send_marker

pytestmark = pytest.mark.django_db(transaction=True)


def tick(symbol: str, price: str) -> dict:
    return {
        "symbol": symbol,
        "isin": "DE0007164600",
        "price": Decimal(price),
        "previous_price": Decimal(price),
        "change": Decimal("0"),
        "change_percent": Decimal("0"),
        "volume": 10,
        "timestamp": "2026-11-23T10:00:00.000Z",
        "source": "test",
    }


def alert(symbol: str, n: int) -> dict:
    return {
        "alert_type": "price_threshold",
        "symbol": symbol,
        "message": f"alert {n}",
        "severity": "info",
        "trigger_value": Decimal(n),
        "current_value": Decimal(n),
        "threshold": Decimal(n),
        "timestamp": "2026-11-23T10:00:00.000Z",
    }


async def subscribe(client, event_type: str, **data) -> dict:
    await client.send({"type": "subscription", "event": "subscribe", "data": {"event_types": [event_type], **data}})
    return await client.receive()


async def received_prices(client, count: int) -> list[tuple[str, Decimal]]:
    events = [await client.receive_event("market.price_update") for _ in range(count)]
    return [(event["data"]["symbol"], event["data"]["price"]) for event in events]


# Per-symbol subscriptions


async def test_client_with_symbols_and_client_without_on_one_process_each_get_every_event_once(ws_connect, staff_user):
    cookie = await login_cookie(staff_user)
    narrowed, _ = await ws_connect(cookie=cookie)
    everything, _ = await ws_connect(cookie=cookie)
    confirmed = await subscribe(narrowed, "market.price_update", symbols=["SAP", "BMW"])
    await subscribe(everything, "market.price_update")
    assert confirmed["event"] == "subscription.confirmed" and confirmed["data"]["symbols"] == ["BMW", "SAP"]

    for symbol, price in [("SAP", "100"), ("ALV", "200"), ("BMW", "50"), ("ALV", "201")]:
        await asend_event("market.price_update", tick(symbol, price))

    assert await received_prices(narrowed, 2) == [("SAP", Decimal("100")), ("BMW", Decimal("50"))]
    assert await received_prices(everything, 4) == [
        ("SAP", Decimal("100")),
        ("ALV", Decimal("200")),
        ("BMW", Decimal("50")),
        ("ALV", Decimal("201")),
    ]
    await asend_event("market.price_update", tick("BMW", "51"))  # no ALV, and nothing twice, before it
    for client in (narrowed, everything):
        await client.nothing_before({"event": "market.price_update", "data": {"symbol": "BMW", "price": Decimal("51")}})


async def test_resubscribing_with_other_symbols_moves_the_filter_without_duplicates(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await subscribe(client, "market.alert")
    await subscribe(client, "market.alert", symbols=["SAP"])
    await asend_event("market.alert", alert("SAP", 1))
    await asend_event("market.alert", alert("BMW", 2))
    await asend_event("market.alert", alert("SAP", 3))
    narrowed = [(await client.receive_event("market.alert"))["data"]["message"] for _ in range(2)]
    await subscribe(client, "market.alert")  # back to all symbols
    await asend_event("market.alert", alert("BMW", 4))

    assert narrowed == ["alert 1", "alert 3"]
    assert (await client.receive_event("market.alert"))["data"]["message"] == "alert 4"
    await asend_event("market.alert", alert("SAP", 5))
    await client.nothing_before({"event": "market.alert", "data": {"message": "alert 5"}})


async def test_unsubscribing_some_symbols_keeps_the_others(ws_connect, staff_user):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await subscribe(client, "market.alert", symbols=["SAP", "BMW"])
    await client.send(
        {"type": "subscription", "event": "unsubscribe", "data": {"event_types": ["market.alert"], "symbols": ["SAP"]}}
    )
    narrowed = await client.receive()
    await asend_event("market.alert", alert("SAP", 1))
    await asend_event("market.alert", alert("BMW", 2))

    assert narrowed["data"]["symbols"] == ["BMW"]
    await client.nothing_before({"event": "market.alert", "data": {"message": "alert 2"}})


@pytest.mark.parametrize("symbols", [[], "SAP", ["sap"], ["SAP", 7], ["X" * 17], [f"S{n}" for n in range(101)]])
async def test_subscribe_with_bad_symbols_is_refused_and_subscribes_nothing(ws_connect, staff_user, symbols):
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    refused = await subscribe(client, "market.alert", symbols=symbols)
    await asend_event("market.alert", alert("SAP", 1))

    assert (refused["type"], refused["event"]) == ("error", "invalid_message")
    await client.nothing_before(await send_marker(client))


async def test_replay_after_reconnect_with_symbols_sends_only_those_symbols(ws_connect, staff_user):
    cookie = await login_cookie(staff_user)
    first, _ = await ws_connect(cookie=cookie)
    confirmed = await subscribe(first, "market.alert", symbols=["SAP"])
    await first.close()
    for n, symbol in enumerate(["BMW", "SAP", "ALV", "SAP"]):
        await asend_event("market.alert", alert(symbol, n))

    again, _ = await ws_connect(cookie=cookie)
    since = {"market.alert": {"seq": confirmed["data"]["seq"], "epoch": confirmed["data"]["epoch"]}}
    await again.send(
        {
            "type": "subscription",
            "event": "subscribe",
            "data": {"event_types": ["market.alert"], "symbols": ["SAP"], "since": since},
        }
    )
    replayed = [await again.receive() for _ in range(2)]
    done = await again.receive()

    assert [m["data"]["message"] for m in replayed] == ["alert 1", "alert 3"]
    assert done["event"] == "subscription.confirmed" and done["data"]["recovered"] is True
    await asend_event("market.alert", alert("SAP", 4))  # live, after the replay: nothing replayed twice before it
    await again.nothing_before({"event": "market.alert", "data": {"message": "alert 4"}})


async def test_symbols_do_not_narrow_event_types_without_a_symbol(ws_connect, superuser):
    client, _ = await ws_connect(cookie=await login_cookie(superuser))
    confirmed = await subscribe(client, "system.service_status", symbols=["SAP"])
    assert confirmed["event"] == "subscription.confirmed" and "symbols" not in confirmed["data"]


# Conflation


class GatedSocket:
    """A send that blocks until released, recording what it was given."""

    def __init__(self):
        self.sent: list[str] = []
        self.gate = asyncio.Event()

    async def send(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)


async def test_socket_behind_ends_on_the_last_price_per_symbol_and_keeps_every_trading_event():
    socket = GatedSocket()
    outbox = Outbox(socket.send, limit=100, on_overflow=lambda: pytest.fail("must not overflow"))
    outbox.put("first")  # the writer takes this one and blocks on it
    await asyncio.sleep(0)
    for n in range(50):
        outbox.put(f"SAP@{n}", conflate_key="market.price_update:SAP")
        outbox.put(f"BMW@{n}", conflate_key="market.price_update:BMW")
        if n % 10 == 0:
            outbox.put(f"fill-{n}")
    socket.gate.set()
    await outbox.flush()

    assert socket.sent == ["first", "SAP@49", "BMW@49", "fill-0", "fill-10", "fill-20", "fill-30", "fill-40"]
    assert outbox.conflated == 98


class BufferedWriter:
    """Stands in for `transport.SocketWriter`: the bytes the server holds are set by the test."""

    def __init__(self, waiting: int):
        self.waiting = waiting
        self.frames: list[bytes] = []

    def backlog(self) -> int:
        return self.waiting

    def write(self, frame: bytes, *, unless_over: int | None = None) -> bool:
        if unless_over is not None and self.waiting > unless_over:
            return False
        self.frames.append(frame)
        return True

    def texts(self) -> list[str]:
        return [frame[2:].decode() for frame in self.frames]  # short frames: two header bytes


async def test_socket_with_a_full_server_buffer_holds_frames_in_the_outbox_until_it_drains():
    writer = BufferedWriter(waiting=10**9)
    outbox = Outbox(pytest.fail, limit=100, on_overflow=lambda: None, writer=writer)
    for n in range(20):
        assert outbox.put(f"SAP@{n}", conflate_key="market.price_update:SAP") is False
    outbox.put("fill-1")
    await asyncio.sleep(Outbox.POLL_SECONDS * 3)
    assert writer.frames == [] and len(outbox) == 2

    writer.waiting = 0
    await asyncio.wait_for(outbox.flush(), 2)
    assert writer.texts() == ["SAP@19", "fill-1"]
    assert writer.frames[0] == bytes([0x81, 6]) + b"SAP@19"


async def test_socket_that_keeps_up_is_written_at_once_with_the_callers_frame():
    writer = BufferedWriter(waiting=0)
    outbox = Outbox(pytest.fail, limit=100, on_overflow=lambda: None, writer=writer)
    assert outbox.put("tick", wire=b"ready-made") is True
    assert outbox.put("fill") is True
    assert writer.frames == [b"ready-made", bytes([0x81, 4]) + b"fill"] and len(outbox) == 0


# Slow-socket isolation


async def test_stuck_socket_is_closed_with_slow_consumer_while_others_keep_receiving(ws_connect, staff_user, settings):
    settings.REALTIME = {**settings.REALTIME, "SEND_QUEUE_LIMIT": 5}
    cookie = await login_cookie(staff_user)
    stuck, _ = await ws_connect(cookie=cookie)
    fast, _ = await ws_connect(cookie=cookie)
    await subscribe(stuck, "market.alert")
    await subscribe(fast, "market.alert")
    (stuck_connection,) = connections.by_client_id(stuck.received[0]["data"]["client_id"])
    stuck_consumer = stuck_connection.consumer

    async def never_returns(text: str) -> None:
        await asyncio.Event().wait()

    stuck_consumer.outbox._send = never_returns
    for n in range(20):
        await asend_event("market.alert", alert("SAP", n))
        await asend_event("market.price_update", tick("SAP", str(100 + n)))

    assert await stuck.closed_with() == CloseCode.SLOW_CONSUMER
    assert len(stuck_consumer.outbox) == 0  # given up: nothing left queued for it
    assert [(await fast.receive_event("market.alert"))["data"]["message"] for _ in range(20)] == [
        f"alert {n}" for n in range(20)
    ]
