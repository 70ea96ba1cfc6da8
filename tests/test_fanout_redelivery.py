"""A numbered event copy the channel layer hands over twice reaches the local sockets once."""

from channels.layers import InMemoryChannelLayer

from realtime.delivery.messages import build_event_message
from realtime.delivery.fanout import Fanout
from tests.fixtures.waiting import aeventually


class Recorder:
    def __init__(self):
        self.texts: list[str] = []

    def deliver(self, message, delivery=None):
        self.texts.append(message["text"])


def alert(n: int) -> dict:
    return {
        "alert_type": "price_above",
        "symbol": "SAP",
        "message": f"alert {n}",
        "severity": "info",
        "trigger_value": 1,
        "current_value": 2,
        "threshold": 1,
        "timestamp": "2026-12-06T10:00:00.000Z",
    }


def numbered(message: dict, seq: int, epoch: str = "e1") -> dict:
    return {**message, "seq": seq, "text": message["text"][:-1] + f',"seq":{seq},"epoch":"{epoch}"}}'}


async def test_a_numbered_copy_handed_over_twice_is_routed_once_and_others_pass():
    layer = InMemoryChannelLayer()
    fanout = Fanout(layer)
    member = Recorder()
    message = build_event_message("market.alert", alert(1))
    group = message["group"]
    await fanout.join(group, member)
    try:
        first = numbered(message, 7)
        unnumbered = build_event_message("market.alert", alert(2))
        for sent in (first, first, numbered(message, 7, epoch="e2"), unnumbered, unnumbered, numbered(message, 8)):
            await layer.group_send(group, sent)
        # The layer hands them over in order: once the last is routed, the repeated one was judged.
        await aeventually(lambda: numbered(message, 8)["text"] in member.texts, timeout=5)
        assert member.texts == [
            first["text"],
            numbered(message, 7, epoch="e2")["text"],
            unnumbered["text"],
            unnumbered["text"],
            numbered(message, 8)["text"],
        ]
    finally:
        fanout._reader.cancel()


def test_the_remembered_copies_are_bounded():
    fanout = Fanout(InMemoryChannelLayer())
    message = build_event_message("market.alert", alert(1))
    for seq in range(Fanout.REMEMBERED + 10):
        assert fanout.redelivered(numbered(message, seq)) is False
    assert len(fanout._routed) == len(fanout._routed_order) == Fanout.REMEMBERED
    assert fanout.redelivered(numbered(message, Fanout.REMEMBERED + 5)) is True
    assert fanout.redelivered(numbered(message, 0)) is False  # forgotten long ago
