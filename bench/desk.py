"""One trader's desk client for the rolling-restart drill (`drill.py`), behaving like the TypeScript
client (static/ts/event-client.ts): subscribe, resubscribe with `since` after a reconnect, ping,
place market orders with a `client_order_id` and send an unanswered one again on the next
connection, and remember what it saw for the drill's checks.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where it runs (`Desk.run`), as websockets is only needed there
    from websockets.asyncio.client import ClientConnection

PING_SECONDS = 25
IN_FLIGHT = 4  # orders a desk has sent and awaits answers for (the gateway allows 8 commands)


@dataclass
class OrderRecord:
    client_order_id: str
    symbol: str
    sent_at: float
    sends: int = 0
    answer: dict[str, Any] | None = None  # the data of the first answer
    order_ids: set[str] = field(default_factory=set)


class Desk:
    """One trader's desk client, behaving like the TypeScript client."""

    def __init__(self, number: int, user_id: int, cookie: str, listen: str, symbols: list[str]):
        self.number = number
        self.user_id = user_id
        self.cookie = cookie
        self.listen = listen
        self.symbols = symbols
        self.client_id = ""
        self.ws: ClientConnection | None = None  # the open connection, if any
        self.connected = asyncio.Event()
        self.orders: dict[str, OrderRecord] = {}
        self.unanswered: dict[str, OrderRecord] = {}  # sent on the current connection, no answer yet
        self.queued: list[OrderRecord] = []  # placed while disconnected
        self.positions: dict[str, dict[str, Any]] = {}  # event type -> {"seq", "epoch"}
        self.gaps = 0
        self.epoch_changes = 0
        self.replays_refused = 0
        self.ticks = 0
        self.filled_seen: set[str] = set()
        self.disconnections: list[tuple[float, float | None, int | None]] = []  # (lost at, back at, close code)
        self.close_codes: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.stopping = False

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Origin
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        attempt = 0
        immediate = False
        while not self.stopping:
            if attempt and not immediate:  # the client's backoff: full jitter under a doubling ceiling
                await asyncio.sleep(random.uniform(0, min(5.0, 0.5 * 2 ** (attempt - 1))))
            try:
                async with connect(
                    f"ws://{self.listen}/ws/{self.client_id}",
                    origin=Origin(f"http://{self.listen}"),
                    additional_headers={"Cookie": self.cookie},
                    open_timeout=10,
                    ping_interval=None,
                    max_size=2**22,
                ) as ws:
                    if self.stopping:
                        break
                    self.ws = ws
                    attempt = 0
                    await self._session(ws)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            code = None
            if self.ws is not None:
                code = self.ws.close_code
                self._lost(code)
                self.ws = None
            immediate = code == 1012  # the server drains: reconnect at once, as the desk client does
            attempt += 1

    def _lost(self, code: int | None) -> None:
        if self.connected.is_set() and not self.stopping:
            self.connected.clear()
            self.disconnections.append((time.monotonic(), None, code))
        self.close_codes[code or 0] += 1
        # Commands without an answer are sent again on the next connection (by client_order_id).
        self.queued = list(self.unanswered.values()) + self.queued
        self.unanswered.clear()

    async def _session(self, ws) -> None:
        welcome = json.loads(await ws.recv())
        assert welcome["event"] == "connection.established", welcome
        self.client_id = welcome["data"]["client_id"]
        if self.disconnections and self.disconnections[-1][1] is None:
            lost_at, _, code = self.disconnections[-1]
            self.disconnections[-1] = (lost_at, time.monotonic(), code)
        data: dict[str, Any] = {"event_types": ["market.price_update", "trading.order_filled"]}
        since = {event_type: position for event_type, position in self.positions.items() if "seq" in position}
        if since:
            data["since"] = since
        await ws.send(json.dumps({"type": "subscription", "event": "subscribe", "data": data}))
        self.connected.set()
        await self._send_queued()
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for raw in ws:
                self._received(json.loads(raw))
        finally:
            pinger.cancel()

    async def _ping(self, ws) -> None:
        while True:
            await asyncio.sleep(PING_SECONDS)
            await ws.send(json.dumps({"type": "ping", "event": "heartbeat", "data": {}}))

    def _received(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "subscription.confirmed":
            data = message["data"]
            if data.get("recovered") is False:
                self.replays_refused += 1
            if "seq" in data:
                known = self.positions.get(data["event_type"])
                if known is None or known.get("epoch") != data.get("epoch") or data["seq"] > known["seq"]:
                    self.positions[data["event_type"]] = {"seq": data["seq"], "epoch": data.get("epoch")}
        elif event == "market.price_update":
            self.ticks += 1
            self._numbered("market.price_update", message, contiguous=True)
        elif event == "trading.order_filled":
            self.filled_seen.add(str(message["data"]["order_id"]))
            self._numbered("trading.order_filled", message, contiguous=False)
        elif event == "place_order.response":
            data = message["data"]
            client_order_id = (message.get("correlation_id") or "").rsplit(":", 1)[0]
            order = self.orders.get(client_order_id)
            if order is None:
                return
            if self.unanswered.pop(client_order_id, None) is not None and self.queued:
                asyncio.get_running_loop().create_task(self._send_queued())
            if order.answer is None:
                order.answer = data
            if data.get("status") == "success":
                order.order_ids.add(str(data["result"]["order_id"]))
            else:
                self.errors[str(data.get("result", {}).get("code", "error"))] += 1

    def _numbered(self, event_type: str, message: dict[str, Any], *, contiguous: bool) -> None:
        seq, epoch = message.get("seq"), message.get("epoch")
        if seq is None:
            return
        known = self.positions.get(event_type)
        if known is not None and known.get("epoch") != epoch:
            self.epoch_changes += 1
        elif known is not None and contiguous and seq > known["seq"] + 1:
            self.gaps += seq - known["seq"] - 1
        if known is None or known.get("epoch") != epoch or seq > known["seq"]:
            self.positions[event_type] = {"seq": seq, "epoch": epoch}

    async def place(self, serial: int) -> None:
        order = OrderRecord(f"drill-{self.number:04d}-{serial:05d}", random.choice(self.symbols), time.monotonic())
        self.orders[order.client_order_id] = order
        self.queued.append(order)
        if self.ws is not None and self.connected.is_set():
            await self._send_queued()

    async def _send_queued(self) -> None:
        """Send queued orders while fewer than IN_FLIGHT of this desk's await their answer."""
        while self.queued and len(self.unanswered) < IN_FLIGHT and self.ws is not None:
            await self._send_order(self.queued.pop(0))

    async def _send_order(self, order: OrderRecord) -> None:
        order.sends += 1
        self.unanswered[order.client_order_id] = order
        frame = {
            "type": "user",
            "event": "place_order",
            "correlation_id": f"{order.client_order_id}:{order.sends}",
            "data": {
                "symbol": order.symbol,
                "side": "buy",
                "order_type": "market",
                "quantity": 1,
                "client_order_id": order.client_order_id,
            },
        }
        ws = self.ws
        if ws is None:
            return  # the connection is gone; `_lost` queues it again
        try:
            await ws.send(json.dumps(frame))
        except Exception:
            pass  # the connection is going; `_lost` queues it again
