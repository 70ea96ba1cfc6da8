"""A socket that fails under the outbox is logged once, at debug level, with the failure's traceback."""

from __future__ import annotations

import logging

from realtime.delivery.outbox import Outbox


class FailingWriter:
    def backlog(self) -> int:
        return 0

    def write(self, frame: bytes, *, unless_over: int | None = None) -> bool:
        raise ConnectionError("gone")


async def failing_send(text: str) -> None:
    raise ConnectionError("gone")


def logged(caplog) -> list[tuple[str, str]]:
    return [
        (record.getMessage(), record.exc_info[0].__name__ if record.exc_info else "")
        for record in caplog.records
        if record.name == "realtime.delivery.outbox"
    ]


async def test_a_socket_that_fails_on_a_direct_write_is_logged_with_its_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="realtime.delivery.outbox")
    box = Outbox(failing_send, limit=3, on_overflow=lambda: None, writer=FailingWriter())

    assert box.put("a") is False

    assert logged(caplog) == [("socket gone while sending", "ConnectionError")]


async def test_a_send_that_fails_while_draining_is_logged_with_its_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="realtime.delivery.outbox")
    box = Outbox(failing_send, limit=3, on_overflow=lambda: None)

    box.put("a")
    box.put("b")
    await box.flush()

    assert logged(caplog) == [("socket gone while sending", "ConnectionError")]
