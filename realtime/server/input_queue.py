"""The queue between daphne and one connection's application: what the client sent, in order.

Daphne makes an `asyncio.Queue` per connection. Its four deques (the items, the waiting getters,
the waiting putters and an `Event`'s waiters) take about 3 KB of an idle socket's memory, a tenth
of what the gateway holds per open desk, though daphne only ever puts without waiting
(`put_nowait`) and the application only takes (`get`). `InputQueue` offers those two (and
`qsize`, `empty`, `get_nowait`) with a list that exists while items wait and the futures of the
callers waiting in `get`: an empty queue is one small object.

The items come out in the order they were put; a `get` that is cancelled takes nothing, and
passes its wake-up on to the next waiting `get`, as `asyncio.Queue` does.
"""

from __future__ import annotations

import asyncio
from typing import Any


class InputQueue:
    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.pop(0)  # a socket's backlog is a few messages: the gate limits their rate
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():  # woken, then cancelled: wake the next one
                    self._wake_next()
                raise
        return self.get_nowait()

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if not getters:
            self._getters = None
