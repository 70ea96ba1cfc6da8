"""CPU of outboxes whose clients stopped reading: measured on a timer (the poll) or told (Twisted's
producer API), with stand-in writers whose server buffer is over the mark the whole time.

    .venv/bin/python bench/stalled_outboxes.py [outboxes]   (default 1000)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktienanalyse.settings")

import django  # noqa: E402

django.setup()

from realtime.delivery.outbox import Outbox  # noqa: E402


class Measured:
    """A writer that can only be asked how much the server holds: always more than the mark."""

    def backlog(self) -> int:
        return 10**9

    def write(self, frame: bytes, *, unless_over: int | None = None) -> bool:
        return unless_over is None


class Told(Measured):
    """A writer whose server says the client's buffer is full, and never says it emptied."""

    full = True

    def watch(self, listener: object, *, mark: int) -> bool:
        return True


async def stalled(kind: type[Measured], count: int, seconds: float = 3.0) -> float:
    boxes = [Outbox(None, limit=100, on_overflow=lambda: None, writer=kind()) for _ in range(count)]  # type: ignore[arg-type]
    for box in boxes:
        box.put("tick")
    await asyncio.sleep(0.1)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    used = (time.process_time() - cpu) / (time.perf_counter() - wall) * 100
    assert all(len(box) == 1 for box in boxes), "a frame left an outbox whose client does not read"
    for box in boxes:
        box.close()
    return used


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for kind in (Measured, Told, Measured, Told):
        print(f"{kind.__name__.lower():8} {count} stalled outboxes: {asyncio.run(stalled(kind, count)):.1f}% of a core")


if __name__ == "__main__":
    main()
