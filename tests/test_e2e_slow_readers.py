"""A daphne socket under a client that reads slowly or not at all: frames intact and in order, the
socket writer told by Twisted when the buffer fills, a bounded buffer, then the close with 4008."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import urllib.request
import uuid
from decimal import Decimal

import pytest
from channels_redis.core import RedisChannelLayer
from websockets.asyncio.client import connect

from realtime.delivery.messages import build_event_message
from tests.fixtures.servers import E2E_REDIS_URL, decode_frame, recv_event, server_env, start_daphne
from tests.fixtures.ws import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def alert(n: int, size: int) -> dict:
    return {
        "alert_type": "price_above",
        "symbol": "SAP",
        "message": f"{n}:" + "x" * size,
        "severity": "info",
        "trigger_value": Decimal("1.5"),
        "current_value": Decimal("2.25"),
        "threshold": Decimal("1.75"),
        "timestamp": "2026-11-23T10:00:00.000Z",
    }


def test_frames_of_every_length_arrive_intact_and_in_order_also_after_the_client_stopped_reading(
    redis_server, staff_user
):
    """Ready-made frames go straight to the socket; what the kernel does not take waits in order.

    One client reads all along; the other stops reading until about 12 MB are on their way, more
    than the kernel buffers hold, so writes are cut short, the rest waits in daphne's buffer and
    then in the outbox. Both must get every event whole (short, 16-bit and 64-bit frame lengths)
    and in order.
    """
    server, layer = redis_server
    cookie = session_cookie(staff_user).decode()
    sizes = [10, 1000, 70_000]
    count = 180  # 60 of each size: about 4.3 MB of 70 KB frames alone, three times over with the others

    async def subscribed(**options):
        ws = await connect(
            server.ws_url + "/",
            additional_headers={"Cookie": cookie},
            origin=server.http_url,
            max_size=2**20,
            **options,
        )
        await ws.recv()
        await ws.send(
            json.dumps({"type": "subscription", "event": "subscribe", "data": {"event_types": ["market.alert"]}})
        )
        await recv_event(ws, "subscription.confirmed")
        return ws

    async def read_all(ws) -> list[dict]:
        events: list[dict] = []
        async with asyncio.timeout(60):
            while len(events) < count:
                message = decode_frame(await ws.recv())
                if message["event"] == "market.alert":
                    events.append(message)
        return events

    async def scenario() -> None:
        reader = await subscribed()
        sleeper = await subscribed(max_queue=1)  # stops reading from the socket once one message waits
        reading = asyncio.create_task(read_all(reader))
        for n in range(count):
            message = build_event_message("market.alert", alert(n, sizes[n % 3]))
            await layer.group_send(message["group"], message)
        got = await reading
        await asyncio.sleep(1)  # let the sleeper's buffers fill while nothing reads them
        slept = await read_all(sleeper)
        for events in (got, slept):
            assert [e["data"]["message"] for e in events] == [f"{n}:" + "x" * sizes[n % 3] for n in range(count)]
            assert all(e["data"]["current_value"] == Decimal("2.25") for e in events)
        await reader.close()
        await sleeper.close()

    asyncio.run(scenario())


def _read_to_end(sock: socket.socket, seconds: float) -> tuple[list[tuple[int, bytes]], bool]:
    """Read server frames until the connection ends (a close frame, EOF or a reset) or `seconds`
    pass; return (opcode, payload) of each whole frame and whether the connection ended."""
    from tests.fixtures.frames import read_frames

    frames, ended = read_frames(sock, seconds, until=0x8)
    return frames, ended or bool(frames and frames[-1][0] == 0x8)


def test_a_daphne_socket_writer_is_told_by_twisted_when_its_client_buffer_fills(daphne_server, django_user_model):
    """Under real daphne the socket writer stands in Twisted's producer slot (taking it over from
    the HTTP channel that upgraded the connection), so its outbox waits to be told, not on a timer."""
    from tests.fixtures.users import grant

    monitor_user = django_user_model.objects.create_user("mona", password="mona-pass-1234", is_staff=True)
    grant(monitor_user, "realtime.monitor_gateway")
    cookie = session_cookie(monitor_user).decode()

    async def scenario() -> None:
        async with connect(
            daphne_server.ws_url + "/", additional_headers={"Cookie": cookie}, origin=daphne_server.http_url
        ) as monitor:
            client_id = decode_frame(await monitor.recv())["data"]["client_id"]
            await monitor.send('{"type":"user","event":"monitor_snapshot","data":{},"correlation_id":"s"}')
            snapshot = await recv_event(monitor, "system.gateway_snapshot", timeout=15)
            (entry,) = [c for c in snapshot["data"]["connections"] if c["client_id"] == client_id]
            assert (entry["writer"], entry["writer_flow"]) == ("socket", "told")

    asyncio.run(scenario())


def test_a_client_that_stops_reading_costs_the_server_a_bounded_buffer_then_is_closed_with_4008(
    transactional_db, tmp_path, staff_user, django_user_model
):
    """Under real daphne, the socket writer takes the fast path, and a raw socket that stops reading
    makes the server hold at most `Outbox.HIGH_WATER` bytes (plus the frame that crossed it) for
    it; price ticks waiting behind are conflated; more waiting frames than the queue limit close
    it with 4008. Every figure is the server's own, from the monitoring snapshot."""
    from realtime.delivery.outbox import Outbox
    from realtime.wire.protocol import CloseCode
    from tests.fixtures.users import grant
    from tests.fixtures.waiting import aeventually
    from tests.fixtures.frames import client_frame, open_socket, server_frames

    limit, size, batch = 40, 50_000, 20  # a batch never reaches the limit alone
    bound = Outbox.HIGH_WATER + size + 1000  # one alert frame may cross the mark
    monitor_user = django_user_model.objects.create_user("mona", password="mona-pass-1234", is_staff=True)
    grant(monitor_user, "realtime.monitor_gateway")
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    server = start_daphne(
        tmp_path,
        env=server_env(REDIS_URL=E2E_REDIS_URL, CHANNEL_LAYER_PREFIX=prefix, REALTIME_SEND_QUEUE_LIMIT=str(limit)),
    )
    layer = RedisChannelLayer(hosts=[E2E_REDIS_URL], prefix=prefix)
    stuck = open_socket(server, staff_user, receive_buffer=4096)
    stuck.sendall(
        client_frame(
            json.dumps(
                {
                    "type": "subscription",
                    "event": "subscribe",
                    "data": {"event_types": ["market.alert", "market.price_update"]},
                }
            ).encode()
        )
    )
    texts = [decode_frame(payload.decode()) for opcode, payload in server_frames(stuck, 2) if opcode == 0x1]
    assert [m["event"] for m in texts][-1] == "subscription.confirmed"
    stuck_id = texts[0]["target_client"]
    monitor_cookie = session_cookie(monitor_user).decode()
    published = 0

    newest: tuple[str, str] | None = None  # event type and identity of the newest event published

    def slow_consumer_closes() -> float:
        request = urllib.request.Request(server.http_url + "/metrics", headers={"Cookie": monitor_cookie})
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read().decode()
        samples = [
            line.split()[-1]
            for line in text.splitlines()
            if line.startswith("realtime_slow_consumer_disconnects_total ")
        ]
        return float(samples[0]) if samples else 0.0

    def identity(data: dict) -> str:
        return str(data.get("message") or data.get("price"))

    async def publish(event_type: str, data: dict) -> None:
        nonlocal newest
        message = build_event_message(event_type, data)
        await layer.group_send(message["group"], message)
        newest = (event_type, identity(data))

    async def scenario() -> None:
        nonlocal published
        async with connect(
            server.ws_url + "/", additional_headers={"Cookie": monitor_cookie}, origin=server.http_url, max_size=2**20
        ) as monitor:
            await monitor.recv()
            # The monitor subscribes to the same events: once it has the newest one, the server's
            # fan-out has handed every event published before it to the stuck socket too.
            await monitor.send(
                json.dumps(
                    {
                        "type": "subscription",
                        "event": "subscribe",
                        "data": {"event_types": ["market.alert", "market.price_update"]},
                    }
                )
            )
            await recv_event(monitor, "subscription.confirmed")
            await recv_event(monitor, "subscription.confirmed")

            async def caught_up() -> None:
                nonlocal newest
                if newest is None:
                    return
                async with asyncio.timeout(30):
                    while True:
                        frame = decode_frame(await monitor.recv())
                        if (frame["event"], identity(frame.get("data") or {})) == newest:
                            newest = None  # caught up until the next publish
                            return

            async def stuck_entry() -> dict | None:
                """The server's view of the stuck socket, after everything published before it."""
                await caught_up()
                await monitor.send('{"type":"user","event":"monitor_snapshot","data":{},"correlation_id":"s"}')
                snapshot = await recv_event(monitor, "system.gateway_snapshot", timeout=15)
                listed = {c["client_id"]: c for c in snapshot["data"]["connections"]}
                assert all(c["writer"] == "socket" for c in listed.values())  # daphne's sockets get the fast writer
                return listed.get(stuck_id)

            async def stuck_listed() -> dict:
                """`stuck_entry` while the server still holds the socket."""
                entry = await stuck_entry()
                assert entry is not None, f"{stuck_id} is not in the snapshot"
                return entry

            entry = await stuck_listed()
            assert entry["writer"] == "socket" and entry["queued_frames"] == 0
            while entry["queued_frames"] == 0:  # fill the kernel's buffers, then Twisted's up to the mark
                assert published < 600, "the server never held frames back"
                for _ in range(batch):
                    await publish("market.alert", alert(published, size))
                    published += 1
                entry = await stuck_listed()
                assert entry["server_buffered_bytes"] <= bound
            assert entry["server_buffered_bytes"] > Outbox.HIGH_WATER

            held_back = entry["queued_frames"]
            for cents in range(50):
                await publish(
                    "market.price_update",
                    {
                        "symbol": "SAP",
                        "isin": "DE0007164600",
                        "price": Decimal(f"187.{cents:02d}"),
                        "previous_price": Decimal("187.00"),
                        "change": Decimal("0.15"),
                        "change_percent": Decimal("0.08"),
                        "volume": 1500,
                        "timestamp": "2026-11-23T10:00:00.000Z",
                        "source": "e2e",
                    },
                )
            entry = await stuck_listed()
            assert entry["queued_frames"] == held_back + 1  # fifty ticks of one symbol wait as one
            assert entry["server_buffered_bytes"] <= bound

            for _ in range(limit):
                await publish("market.alert", alert(published, size))
                published += 1
            # The server closes it as a slow consumer and lets go of it, by its own account.
            await aeventually(lambda: slow_consumer_closes() == 1, timeout=30, message="closed as a slow consumer")
            while await stuck_entry() is not None:  # until the server has let go of it
                await asyncio.sleep(0.1)  # polls paced under the monitor's own rate limit
            # The client reads again: what the server still held for it, then the connection's end.
            # The close frame (4008) comes last; the server waits a moment for the client's answer
            # and then drops the connection, so a client still reading megabytes through a 4 KiB
            # window when that moment passes sees the end without the frame: both are this close.
            frames, ended = await asyncio.to_thread(_read_to_end, stuck, 60)
            assert ended, "the server never ended the connection"
            if frames and frames[-1][0] == 0x8:
                assert struct.unpack("!H", frames[-1][1][:2])[0] == CloseCode.SLOW_CONSUMER
            alerts = [
                decode_frame(payload.decode())["data"]["message"].split(":")[0]
                for opcode, payload in frames
                if opcode == 0x1 and b'"market.alert"' in payload
            ]
            assert alerts == sorted(alerts, key=int), "frames out of order"

    try:
        asyncio.run(scenario())
        stuck.close()
    finally:
        server.stop()
