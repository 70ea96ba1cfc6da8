"""A new outbox has counted nothing: the connection table adds its counters to the socket's own."""

from realtime.delivery.outbox import Outbox


async def send(text: str) -> None:
    pass


def test_a_new_outbox_has_sent_conflated_dropped_and_fanned_out_nothing():
    box = Outbox(send, limit=3, on_overflow=lambda: None)

    assert (box.sent, box.conflated, box.dropped, box.fanned_out, len(box)) == (0, 0, 0, 0, 0)
    # the time of its last fan-out write: none yet, which `Connection.last_active` takes as the epoch
    assert box.fanned_out_at == 0.0 and isinstance(box.fanned_out_at, float)
