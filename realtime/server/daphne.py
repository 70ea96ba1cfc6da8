"""Daphne's WebSocket protocol, lighter per open socket.

Autobahn's protocol copies its roughly thirty settings (frame limits, ping interval, masking
rules...) from the factory into every connection's `__dict__` when the connection is made, and
formats the whole list with `pprint` for a debug log line, whether or not debug logging is on.
With ten thousand idle desks that is the largest part of the protocol object, and `pprint` alone
was an eighth of the server CPU of a handshake. `LeanWebSocketProtocol` is daphne's protocol with
an empty copy list: a connection reads each setting from its factory, which holds the very values
the copy would have had (daphne sets them once at start, and neither daphne nor we set them per
connection). Once the socket is open it also lets go of the handshake's raw request and response,
which nothing reads again.

Most of what a desk sends are small text messages, each in one frame and one TCP segment (the
spec client's heartbeat, subscriptions, commands). Autobahn parses every frame through a general
state machine: about a dozen Python calls, a masker object and an incremental UTF-8 validator per
frame, which was half of the CPU a heartbeat cost the server. `LeanWebSocketProtocol` takes a read
that is exactly one complete, masked, unfragmented, uncompressed text frame within the size limits
straight to daphne's `onMessage`, unmasked in one integer operation and checked as UTF-8 by
Python's decoder. Anything else (a partial or coalesced read, control, binary or fragmented frames,
invalid UTF-8, debug logging of frames) goes through autobahn as before, which also answers every
violation.

`realtime.server.install()` makes daphne build its connections with it; the gateway's entry point
(`python -m realtime.server`) calls it before daphne starts.

Daphne's server also visits every connection once a second to reap the ones that are over: with
10,000 open sockets that sweep was more than half of the process's idle CPU. `LeanServer` runs
daphne's own reaping pass over just the connections that have ended (disconnected, or whose
application finished), which it learns of as it happens. Daphne also visits every connection every
two seconds to enforce its timeouts and send pings, though an open socket has nothing due before
its ping interval (35 s in our run targets) or its maximum lifetime has passed. `LeanServer` keeps
the connections in a queue ordered by when each is next due, and its pass (still every two
seconds, still daphne's own `check_timeouts`) visits only those.

An HTTP connection gets `REALTIME["HANDSHAKE_TIMEOUT_SECONDS"]` from being accepted to the end of
its request headers (and the same again for each further request on a kept-alive connection);
Twisted's own timeout restarts with every byte, so a client that trickles a partial request line
would otherwise hold its socket and its buffers for as long as it likes. `LeanServer` gives
daphne's HTTP factory `HeaderDeadlineChannel` connections, which close when the deadline passes.

`install()` also makes the cyclic garbage collector run less often. Every socket leaves a few
thousand long-lived objects, and with Python's default thresholds a full collection, which visits
all of them, ran every few seconds while desks connected: 15 full passes while 10,000 connected,
the last ones taking 0.6 s each and landing in what should have been idle time. Reference counting
frees almost everything a message or handshake allocates anyway; the collector is only needed for
reference cycles, such as a closed connection's objects, which can wait a little longer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import signal
import time
from functools import partial
from typing import Any

from autobahn.websocket.types import ConnectionDeny
from daphne import http_protocol, server, ws_protocol
from django.conf import settings
from twisted.internet.error import ReactorNotRunning

from realtime.connection import drain
from . import checks
from .http_channel import HeaderDeadlineChannel
from .input_queue import InputQueue
from .transport import plain_tcp, write_now

logger = logging.getLogger("realtime.server")

_SETTINGS = frozenset(ws_protocol.WebSocketProtocol.CONFIG_ATTRS)
# Allocations before a young collection (default 700), and young and middle collections before
# the next older one. A handshake allocates thousands of long-lived objects, so with the defaults a
# reconnect storm spends its time in full collections that find nothing to free (docs/benchmarks.md,
# "Garbage collector thresholds").
GC_THRESHOLDS = (50_000, 20, 10)


# Close codes (IANA's WebSocket registry) a server sends, with the reason sent along.
SERVER_CLOSE_REASONS = {1001: "going away", 1011: "internal error", 1012: "service restart", 1013: "try again later"}

_MASKED = 0x80
_TEXT_FIN = 0x81  # FIN, no RSV bits, opcode 1 (text)


def _fast_frame_limit(factory: Any) -> int:
    """The largest client frame payload the fast path takes under the factory's settings (0: none)."""
    limit = factory.__dict__.get("_lean_fast_frame_limit")
    if limit is None:
        limits = [size for size in (factory.maxFramePayloadSize, factory.maxMessagePayloadSize) if size > 0]
        usable = factory.applyMask and not (factory.logOctets or factory.logFrames)
        limit = factory._lean_fast_frame_limit = min([65535, *limits]) if usable else 0
    return limit


def unmasked_text(data: bytes, limit: int) -> str | None:
    """Return the text of `data` if it is exactly one masked, final, uncompressed text frame of at
    most `limit` payload bytes with valid UTF-8, else None (autobahn's parser then takes it)."""
    if len(data) < 6 or data[0] != _TEXT_FIN or not data[1] & _MASKED:
        return None
    length = data[1] & 0x7F
    if length < 126:
        header = 6
    elif length == 126 and len(data) >= 8:
        length, header = int.from_bytes(data[2:4], "big"), 8
        if length < 126:  # not the shortest length encoding: a protocol violation
            return None
    else:
        return None
    if length > limit or len(data) != header + length:
        return None
    mask = data[header - 4 : header]
    key = (mask * ((length >> 2) + 1))[:length]
    payload = (int.from_bytes(data[header:], "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _FactorySetting:
    """A protocol setting read from the connection's factory (a value set on the connection wins).

    One per setting on the class rather than a `__getattr__`: a class with `__getattr__` makes
    Python look up every attribute of its instances the slow, unspecialized way, and the protocol's
    attributes are read on every frame in and out.
    """

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __get__(self, protocol: Any, owner: type | None = None) -> Any:
        if protocol is None:
            return self
        return getattr(protocol.factory, self.name)


class LeanWebSocketProtocol(ws_protocol.WebSocketProtocol):
    CONFIG_ATTRS: tuple[str, ...] = ()
    refused = False  # the handshake was answered 503: daphne never learnt of this connection

    def onConnect(self, request: Any) -> Any:
        if drain.draining():
            # 503 before daphne makes an application for it; nginx (deploy/) tries the next process.
            self.refused = True
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "Service Unavailable (draining)")
        return super().onConnect(request)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.refused:
            super().onClose(wasClean, code, reason)

    def serverClose(self, code: int | None = None) -> None:
        """Daphne's close, also with the codes RFC 6455 registers for servers that autobahn's
        `sendClose` refuses (it allows only 1000 and 3000-4999)."""
        reason = SERVER_CLOSE_REASONS.get(code) if code is not None else None
        if reason is None:
            super().serverClose(code)
        else:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode(), isReply=False)

    def onOpen(self) -> None:
        super().onOpen()
        self.http_request_data = self.http_response_data = None

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's adapter formats a debug log line's arguments first, logging on or not.
        self._dataReceived(data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Autobahn's send of a whole frame (pings, closes, daphne's own sends) written at once.

        Autobahn hands the bytes to Twisted, which asks the loop to report the socket writable
        and writes them then: two `epoll_ctl` calls and a loop round per frame. When nothing waits
        before them and the connection is plain TCP, the bytes go to the socket now, as the
        fan-out's frames do (`transport.write_now`).
        """
        transport = self.transport
        if (
            sync
            or chopsize
            or self.send_queue
            or self.logOctets
            or not plain_tcp(transport)
            or transport.disconnecting
            or not transport.connected  # Twisted decides what happens to these
        ):
            super().sendData(data, sync, chopsize)
            return
        try:
            write_now(transport, data)
        except OSError:
            transport.write(data)  # a reset or broken pipe: Twisted finds out and closes as usual
        if self.state == self.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state == self.STATE_CONNECTING:
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)

    def _dataReceived(self, data: bytes) -> None:
        if self.state == self.STATE_OPEN and not self.data and self.current_frame is None and not self.inside_message:
            text = unmasked_text(data, _fast_frame_limit(self.factory))
            if text is not None:
                stats = self.trafficStats  # kept as autobahn keeps them
                stats.incomingOctetsWireLevel += len(data)
                payload = len(data) - (6 if len(data) < 132 else 8)  # the header: 6 bytes below 126
                stats.incomingOctetsWebSocketLevel += payload
                stats.incomingOctetsAppLevel += payload
                stats.incomingWebSocketFrames += 1
                stats.incomingWebSocketMessages += 1
                if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                    self._cancelAutoPingTimeoutCall()  # any data frame counts as the answer to a ping
                self._on_text(text)
                return
        super()._dataReceived(data)

    def _on_text(self, text: str) -> None:
        """Daphne's `onMessage` for a text message decoded already."""
        if self.muted:
            return
        self.last_ping = time.time()
        self.application_queue.put_nowait({"type": "websocket.receive", "text": text})


for _name in _SETTINGS:
    setattr(LeanWebSocketProtocol, _name, _FactorySetting(_name))


class LeanServer(server.Server):
    """Daphne's server, reaping only connections that have ended instead of sweeping all of them."""

    SLACK = 100  # reaped connections the timeout queue may hold beyond twice the open ones
    # Daphne's table (it assigns `{}` untyped): each protocol's details, "application_instance" among them.
    connections: dict[Any, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: set[Any] = set()  # protocols disconnected or with a finished application
        self.due: list[tuple[float, int, Any]] = []  # (when, arrival, protocol): when to check it next
        self._arrivals = itertools.count()  # orders equal times, so protocols are never compared

    def run(self) -> None:
        """Daphne's run, with SIGTERM draining the process instead of stopping it at once."""
        if self.signal_handlers and checks.part_usable("protocol"):  # it sends the 1012 closes
            # After Twisted's own handlers are in place (it installs them while starting up).
            server.reactor.callWhenRunning(self._drain_on_sigterm)
        super().run()

    def _drain_on_sigterm(self) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: server.reactor.callFromThread(self.drain))

    def drain(self) -> None:
        """Drain the process (realtime/connection/drain.py), then stop; stop regardless when the drain overruns."""
        if drain.draining():
            logger.info("SIGTERM again while draining: the drain goes on (SIGINT or SIGKILL stop at once)")
            return
        timeout = float(settings.REALTIME["DRAIN_TIMEOUT_SECONDS"])
        logger.info("SIGTERM: draining, stopping within %ss", timeout)
        drain.begin()  # handshakes are refused from this moment, before the task first runs
        # A last resort should the drain's own deadline not end it (the loop starved, a bug).
        server.reactor.callLater(timeout + 1, self._stop_once)
        task = asyncio.get_event_loop().create_task(drain.drain(), name="realtime-drain")
        task.add_done_callback(self._drained)

    def _drained(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("drain failed", exc_info=task.exception())
        self._stop_once()

    def _stop_once(self) -> None:
        try:
            self.stop()
        except ReactorNotRunning:  # stopping already
            pass

    @property
    def http_factory(self) -> Any:
        return self.__dict__.get("_http_factory")

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        """Daphne's HTTP factory (made in `run`), building `HeaderDeadlineChannel` connections."""
        if isinstance(factory, http_protocol.HTTPFactory):
            timeout = float(settings.REALTIME["HANDSHAKE_TIMEOUT_SECONDS"])
            channel = type("HeaderDeadlineChannel", (HeaderDeadlineChannel,), {"headers_timeout": timeout})
            factory.protocol = channel  # Twisted's own factory wraps its channel only to offer HTTP/2
        self.__dict__["_http_factory"] = factory

    def protocol_connected(self, protocol: Any) -> None:
        super().protocol_connected(protocol)
        self._check_at(time.time(), protocol)  # on the next pass, as daphne would

    def _check_at(self, when: float, protocol: Any) -> None:
        heapq.heappush(self.due, (when, next(self._arrivals), protocol))

    def next_check(self, protocol: Any, now: float) -> float:
        """When `protocol` can next have a timeout or a ping due: now for anything but an open socket.

        An open WebSocket is due when it has been silent for the ping interval (a client message
        or a ping moves `last_ping`) or has lived for the maximum lifetime; daphne's checks compare
        exactly these. Handshakes, closing sockets and HTTP requests are checked on every pass.
        """
        if not isinstance(protocol, ws_protocol.WebSocketProtocol) or protocol.state != protocol.STATE_OPEN:
            return now
        when = protocol.last_ping + self.ping_interval
        if self.websocket_timeout >= 0:
            when = min(when, protocol.socket_opened + self.websocket_timeout)
        return when

    def timeout_checker(self) -> None:
        """Run daphne's timeout and ping check on the connections that are due, then schedule them again."""
        now = time.time()
        due = []
        while self.due and self.due[0][0] <= now:
            due.append(heapq.heappop(self.due)[2])
        for protocol in due:
            if protocol in self.connections:  # else reaped: forget it
                protocol.check_timeouts()
                self._check_at(self.next_check(protocol, now), protocol)
        server.reactor.callLater(2, self.timeout_checker)

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.ended.add(protocol)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> InputQueue | None:
        """Start the connection's application as daphne does, with an `InputQueue` for its input.

        Returns None, starting nothing, for a connection daphne no longer holds (closed before
        its handshake came through).
        """
        details = self.connections.get(protocol)
        if details is None:
            return None
        queue = InputQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application = self.application(scope=scope, receive=queue.get, send=partial(self.handle_reply, protocol))
        instance = asyncio.get_event_loop().create_task(application)
        details["application_instance"] = instance
        instance.add_done_callback(lambda _instance: self.ended.add(protocol))
        return queue

    def application_checker(self) -> None:
        """Run daphne's pass over the ended connections only; keep watching those it still waits for."""
        everyone = self.connections
        watched = {protocol: everyone[protocol] for protocol in self.ended if protocol in everyone}
        self.ended = set(watched)
        self.connections = watched  # daphne's pass deletes the entries it reaps from this table
        try:
            super().application_checker()  # also schedules the next pass
        finally:
            self.connections = everyone
        for protocol in list(self.ended):
            details = watched.get(protocol)
            if details is None:  # reaped
                del everyone[protocol]
                self.ended.discard(protocol)
            elif "disconnected" not in details:  # its application finished; its disconnect brings it back
                self.ended.discard(protocol)
        if len(self.due) > 2 * len(everyone) + self.SLACK:
            self._drop_reaped()

    def _drop_reaped(self) -> None:
        """Rebuild the timeout queue without the connections reaped since they were queued.

        The check pass forgets a reaped connection when it comes due, up to a ping interval later;
        after many clients leave at once, this lets their protocols go now instead. The queue never
        holds much more than twice the open connections, and rebuilding it costs one pass over it.
        """
        live = self.connections
        self.due = [entry for entry in self.due if entry[2] in live]
        heapq.heapify(self.due)
