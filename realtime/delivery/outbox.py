"""The bounded outbox of one socket: frames wait here when the client cannot take them now.

One slow socket never delays the others: its frames queue here (price ticks conflating), and a
socket so far behind that a frame which must not be dropped cannot be queued is given up. The
fan-out (`fanout.py`) and the connection (`realtime/connection/socket.py`) put frames in; a
`FrameWriter` of the server adapter (`realtime/server/transport.py`) or the ASGI send takes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from realtime.runtime import metrics
from realtime.wire.frames import FrameWriter, text_frame

logger = logging.getLogger(__name__)


class OutboxOverflow(Exception):
    """A socket fell so far behind that a message which must not be dropped could not be queued."""


class Outbox:
    """A bounded send queue of one socket; one slow socket never delays the others.

    Frames with a conflation key (price ticks, by event type and symbol) replace a waiting frame
    with the same key, so a socket that falls behind still ends on the newest price. Every other
    frame is kept in order; when more than `limit` of them wait, the socket is given up.

    With a `FrameWriter` (daphne over TCP with the adapter, `realtime/server/transport.py`) a
    frame is written the moment it is put, as long as nothing waits before it and the server holds
    less than `HIGH_WATER` bytes for the client; otherwise it waits here, where it can be
    conflated and counted, and a writer task hands it over once the client reads again. A
    `WatchedWriter` tells the outbox when the client's buffer passes `HIGH_WATER` (`full`) and
    when it has emptied (`writable`), and the writer task sleeps until then; a writer that cannot
    tell has its `backlog()` measured every `POLL_SECONDS` instead. Without a writer, frames go
    through ASGI `send`.

    `put` tells whether it wrote the frame at once, so the caller (the fan-out, for a thousand
    sockets at a time) can count those itself; frames written later are reported to `on_sent`.
    """

    HIGH_WATER = 256 * 1024
    POLL_SECONDS = 0.02  # only for a writer that cannot tell when the client's buffer empties
    _resumed: asyncio.Future[None] | None = None  # what the writer task waits on while a watched writer is full

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        limit: int,
        on_overflow: Callable[[], None],
        on_sent: Callable[[str, tuple[str, float | None] | None], None] | None = None,
        writer: FrameWriter | None = None,
    ):
        self._send = send
        self._socket = writer
        self._limit = limit
        self._on_overflow = on_overflow
        self._on_sent = on_sent
        self._pending: OrderedDict[Hashable, tuple[str, bytes | None]] = OrderedDict()
        self._events: dict[Hashable, tuple[str, float | None]] = {}  # (event type, emitted at) per waiting event
        self._sequence = 0
        self._writer: asyncio.Task | None = None
        self._closed = False
        self.conflated = 0
        self.sent = 0
        self.dropped = 0
        self.fanned_out = 0  # events the fan-out wrote at once (see `Connection.frames_out`)
        self.fanned_out_at = 0.0
        # Last: a writer on a connection already gone closes the outbox from inside `watch`. A duck
        # test for a `WatchedWriter`, because isinstance on a runtime-checkable Protocol walks the
        # protocol's members on every call, and an outbox is made for every socket accepted.
        watch = getattr(writer, "watch", None)
        self._watched = watch is not None and watch(self, mark=self.HIGH_WATER)

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def writer(self) -> str:
        """How frames reach the socket: "socket" (a `FrameWriter`) or "asgi" (ASGI `send`)."""
        return "socket" if self._socket is not None else "asgi"

    @property
    def flow(self) -> str | None:
        """How the outbox learns that the server's buffer for the client is full: "told" (the writer
        is told by the server), "measured" (`backlog()` read, every `POLL_SECONDS` while over the
        mark), None (ASGI, which cannot tell)."""
        if self._socket is None:
            return None
        return "told" if self._watched else "measured"

    def server_backlog(self) -> int | None:
        """Bytes the server holds for the client beyond this outbox (None: ASGI cannot tell)."""
        return self._socket.backlog() if self._socket is not None else None

    def put(
        self,
        text: str,
        *,
        wire: bytes | None = None,
        conflate_key: Hashable | None = None,
        event: tuple[str, float | None] | None = None,
    ) -> bool:
        """Write or queue a frame; return True when it was written now.

        `wire` is the frame already framed (`transport.text_frame`), when the caller has it;
        `event` (type, emitted at) marks an event frame for the delivery metrics.
        """
        if self._closed:
            return False
        socket = self._socket
        if socket is not None and self._writer is None and not self._pending:
            frame = wire if wire is not None else text_frame(text.encode("utf-8"))
            try:  # over HIGH_WATER in the server, the frame waits here
                if self._watched:
                    written = not socket.full and socket.write(frame)  # type: ignore[attr-defined]
                else:  # one look at what the server holds for the client
                    written = socket.write(frame, unless_over=self.HIGH_WATER)
            except Exception:
                logger.debug("socket gone while sending", exc_info=True)
                self.close()
                return False
            if written:
                self.sent += 1
                return True
        if conflate_key is not None and conflate_key in self._pending:
            self._pending[conflate_key] = (text, wire)
            self.conflated += 1
            metrics.conflated()
        else:
            if conflate_key is None:
                if len(self._pending) >= self._limit:
                    self._closed = True
                    self.dropped += len(self._pending) + 1
                    self._pending.clear()
                    self._events.clear()
                    self._on_overflow()
                    return False
                self._sequence += 1
                conflate_key = self._sequence  # ints never equal a (string) conflation key
            self._pending[conflate_key] = (text, wire)
        if event is not None:
            self._events[conflate_key] = event
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())
        return False

    async def _drain(self) -> None:
        socket = self._socket
        try:
            while self._pending and not self._closed:
                if socket is not None:  # while the client is not reading, frames wait here
                    if self._watched:
                        if socket.full:  # type: ignore[attr-defined]
                            self._resumed = asyncio.get_running_loop().create_future()
                            await self._resumed  # until `writable` or `close`; no timer meanwhile
                            continue
                    elif socket.backlog() > self.HIGH_WATER:
                        await asyncio.sleep(self.POLL_SECONDS)
                        continue
                key, (text, wire) = self._pending.popitem(last=False)
                event = self._events.pop(key, None) if self._events else None
                if socket is not None:
                    socket.write(wire if wire is not None else text_frame(text.encode("utf-8")))
                else:
                    await self._send(text)
                self.sent += 1
                if self._on_sent is not None:
                    self._on_sent(text, event)
        except Exception:
            logger.debug("socket gone while sending", exc_info=True)
            self.close()
        finally:
            self._writer = None
            if self._pending and not self._closed:
                self._writer = asyncio.get_running_loop().create_task(self._drain())

    def writable(self) -> None:
        """The watched writer's client has taken everything the server held: the writer task goes on.

        Called by Twisted's reactor, which under daphne runs on the consumers' asyncio loop
        (daphne installs the asyncio reactor on the loop its applications run on), so the writer
        task's future is set directly.
        """
        resumed = self._resumed
        if resumed is not None:
            self._resumed = None
            if not resumed.done():
                resumed.set_result(None)

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        self._events.clear()
        self.writable()  # a writer task waiting for the client ends

    async def flush(self) -> None:
        """Wait until every queued frame was handed to the server."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
