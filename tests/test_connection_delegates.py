"""The consumer's delegates without a socket: `Subscriptions` with the delivery filter, and
`CommandRunner`. A `Socket` stands in for the consumer, with a real outbox whose frames are kept."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings

from core.exceptions import DomainError
from core.times import utc_now
from realtime.connection import subscriptions
from realtime.connection.activity import UserActivity
from realtime.connection.command_runner import CommandRunner
from realtime.connection.commands import Command, registry
from realtime.connection.limits import ReplayBudget
from realtime.connection.socket import Socket
from realtime.delivery import messages
from realtime.delivery.outbox import Outbox
from realtime.runtime.connections import Connection
from realtime.wire.protocol import ClientMessage, decode

PRICE = "market.price_update"


class Groups:
    """The fan-out as far as one connection sees it: the groups each member is in."""

    def __init__(self):
        self.members: dict[str, set] = {}

    async def join(self, group, member):
        self.members.setdefault(group, set()).add(member)

    async def leave_all(self, member, groups):
        for group in groups:
            self.members.get(group, set()).discard(member)

    def of(self, member) -> list[str]:
        return sorted(group for group, members in self.members.items() if member in members)


class Socketless(Socket):
    deliver = subscriptions.deliver

    def __init__(self, permissions=()):
        self.user = SimpleNamespace(
            pk=7, get_username=lambda: "anna", is_authenticated=True, is_active=True, is_staff=True
        )
        self.permissions, self.config, self.client_id, self.remote_addr = (
            set(permissions),
            settings.REALTIME,
            "c-1",
            None,
        )
        self.loop = asyncio.get_running_loop()
        self.frames: list[dict] = []
        self.outbox = Outbox(self._write, limit=100, on_overflow=lambda: None, on_sent=self.sent)
        self.connection = Connection(
            client_id="c-1", user_id=7, username="anna", remote_addr=None, origin=None,
            connected_at=utc_now(), subscriptions=set(), consumer=self,
        )  # fmt: skip
        self.activity = UserActivity(user_id=7, username="anna", client_id="c-1")
        self.fanout = Groups()
        self.replay_budget = ReplayBudget(user_id=7, per_minute=100, per_user_per_minute=100)
        self.subs = subscriptions.Subscriptions(self)
        self.subscriptions, self.symbols, self.replaying = self.subs.event_types, self.subs.symbols, self.subs.replaying
        self.commands = CommandRunner(self)

    async def _write(self, text: str) -> None:
        self.frames.append(decode(text))

    async def sent_frames(self) -> list[dict]:
        await self.outbox.flush()
        return self.frames


def subscription(event: str, event_types: list[str], **data) -> ClientMessage:
    return ClientMessage(
        type="subscription", event=event, data={"event_types": event_types, **data}, correlation_id="s-1"
    )


def price_copies(symbol: str) -> list[dict]:
    """The channel-layer copies of one price update: the type's group and the instrument's."""
    data = {
        "symbol": symbol, "isin": "DE0007164600", "price": Decimal("100.50"), "previous_price": Decimal("100.00"),
        "change": Decimal("0.50"), "change_percent": Decimal("0.50"), "volume": 10,
        "timestamp": "2025-01-02T09:00:00.000Z", "source": "test",
    }  # fmt: skip
    return messages.broadcast_copies(messages.build_event_message(PRICE, data))


async def test_subscribing_to_some_symbols_joins_their_groups_and_confirms_them():
    socket = Socketless()
    await socket.subs.handle(subscription("subscribe", [PRICE], symbols=["SAP", "ALV"]))
    assert socket.fanout.of(socket) == [messages.symbol_group(PRICE, "ALV"), messages.symbol_group(PRICE, "SAP")]
    assert socket.subscriptions == {PRICE} and socket.symbols == {PRICE: frozenset({"SAP", "ALV"})}
    (frame,) = await socket.sent_frames()
    assert frame["event"] == "subscription.confirmed" and frame["correlation_id"] == "s-1"
    assert frame["data"]["event_type"] == PRICE and frame["data"]["symbols"] == ["ALV", "SAP"]


async def test_the_delivery_filter_passes_each_event_once_through_the_group_the_socket_is_in():
    everything, some = Socketless(), Socketless()
    await everything.subs.handle(subscription("subscribe", [PRICE]))
    await some.subs.handle(subscription("subscribe", [PRICE], symbols=["SAP"]))
    for symbol in ("SAP", "BAS"):
        for copy in price_copies(symbol):
            everything.deliver(copy)
            some.deliver(copy)
    prices = lambda frames: [f["data"]["symbol"] for f in frames if f["event"] == PRICE]  # noqa: E731
    assert prices(await everything.sent_frames()) == ["SAP", "BAS"]
    assert prices(await some.sent_frames()) == ["SAP"]


async def test_an_event_type_not_subscribed_is_not_delivered_and_unsubscribing_leaves_the_groups():
    socket = Socketless()
    for copy in price_copies("SAP"):
        socket.deliver(copy)
    await socket.subs.handle(subscription("subscribe", [PRICE]))
    await socket.subs.handle(subscription("unsubscribe", [PRICE]))
    assert socket.fanout.of(socket) == [] and socket.subscriptions == set()
    assert [f["event"] for f in await socket.sent_frames()] == ["subscription.confirmed", "subscription.removed"]


async def test_a_type_the_user_may_not_see_is_refused_and_one_whose_permission_went_is_revoked():
    socket = Socketless(permissions={"trading.view_order"})
    await socket.subs.handle(subscription("subscribe", ["trading.order_created", "system.error"]))
    assert socket.subscriptions == {"trading.order_created"}
    socket.permissions = set()
    assert await socket.subs.revoke_unpermitted() == ["trading.order_created"]
    assert socket.subscriptions == set() and socket.fanout.of(socket) == []
    frames = await socket.sent_frames()
    assert [(f["event"], f["data"].get("code") or f["data"].get("reason")) for f in frames] == [
        ("subscription.confirmed", None),  # each type in the order asked
        ("permission_denied", "permission_denied"),
        ("subscription.removed", "permission_revoked"),
    ]


def user_message(name: str, **data) -> ClientMessage:
    return ClientMessage(type="user", event=name, data=data, correlation_id="k-1")


async def answered(socket: Socketless) -> dict:
    await asyncio.gather(*set(socket.commands.in_flight))  # the command's task answers before it ends
    (frame,) = await socket.sent_frames()
    return frame


async def test_a_registered_command_runs_and_is_answered_with_its_result():
    socket = Socketless()
    socket.commands.start(user_message("get_connection_info"))
    frame = await answered(socket)
    assert frame["correlation_id"] == "k-1" and frame["data"]["status"] == "success"
    assert frame["data"]["result"]["client_id"] == "c-1"


@pytest.mark.parametrize(
    ("name", "code"),
    [("no_such_command", "unknown_command"), ("Bad Name", "unknown_command"), ("refused_here", "permission_denied")],
)
async def test_a_command_not_run_is_answered_with_why(name, code, monkeypatch):
    handler = pytest.fail  # never called
    monkeypatch.setitem(registry._commands, "refused_here", Command("refused_here", handler, "trading.add_order", ""))
    socket = Socketless()
    try:
        socket.commands.start(user_message(name))
    except Exception as error:  # a malformed name is a protocol error the consumer answers
        assert getattr(error, "code", None) == code
        return
    frame = await answered(socket)
    assert frame["data"]["status"] == "error" and frame["data"]["result"]["code"] == code


async def test_a_domain_error_is_answered_with_its_code_and_details(monkeypatch):
    async def rejects(ctx, data):
        raise DomainError("insufficient_cash", "Not enough cash.", missing="12.50")

    monkeypatch.setitem(registry._commands, "place_it", Command("place_it", rejects, None, ""))
    socket = Socketless()
    socket.commands.start(user_message("place_it"))
    frame = await answered(socket)
    result = frame["data"]["result"]
    assert frame["data"]["status"] == "error"
    assert (result["code"], result["error"], result["missing"]) == ("insufficient_cash", "Not enough cash.", "12.50")


async def test_a_closing_socket_starts_no_command():
    socket = Socketless()
    socket.draining = True
    socket.commands.start(user_message("get_connection_info"))
    assert socket.commands.in_flight == set() and await socket.sent_frames() == []
