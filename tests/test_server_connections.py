"""Daphne's connections under the project: settings read from the factory, nothing copied per socket,
ended ones reaped, open ones checked only when a ping or lifetime can be due."""

from __future__ import annotations

import asyncio
import time

import pytest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

from realtime.server import install
from realtime.server.daphne import GC_THRESHOLDS, LeanServer, LeanWebSocketProtocol


@pytest.fixture
def adapter(monkeypatch):
    """The adapter installed in this process as `python -m realtime.server` installs it; undone after."""
    import gc

    from daphne import cli, server

    from realtime.server import transport

    monkeypatch.setattr(WebSocketFactory, "protocol", WebSocketProtocol)
    monkeypatch.setattr(cli.CommandLineInterface, "server_class", server.Server)
    monkeypatch.setattr(transport, "installed", False)
    thresholds = gc.get_threshold()
    yield install()
    gc.set_threshold(*thresholds)


def test_daphne_builds_lean_connections_that_read_each_setting_from_their_factory(adapter):
    assert WebSocketFactory.protocol is LeanWebSocketProtocol
    factory = WebSocketFactory(None, server="Daphne")
    factory.setProtocolOptions(autoPingInterval=7, maxMessagePayloadSize=1234, openHandshakeTimeout=3)
    protocol = factory.buildProtocol(None)

    assert (protocol.autoPingInterval, protocol.maxMessagePayloadSize, protocol.openHandshakeTimeout) == (7, 1234, 3)
    assert not set(WebSocketProtocol.CONFIG_ATTRS) & set(vars(protocol))
    factory.setProtocolOptions(maxMessagePayloadSize=99)  # one place holds the value
    assert protocol.maxMessagePayloadSize == 99
    protocol.openHandshakeTimeout = 9  # a value set on one connection is that connection's alone
    assert (protocol.openHandshakeTimeout, factory.buildProtocol(None).openHandshakeTimeout) == (9, 3)
    with pytest.raises(AttributeError):
        protocol.no_such_attribute  # noqa: B018


def test_lean_server_reaps_ended_connections_and_keeps_the_others(adapter, monkeypatch):
    """Daphne's reaping, applied to what has ended: a closed connection whose application is done
    leaves the table; an open one and a closed one whose application still runs stay."""
    from daphne import server as daphne_server
    from daphne.cli import CommandLineInterface

    assert CommandLineInterface.server_class is LeanServer
    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda *args: None)  # no next pass

    async def scenario() -> None:
        finish = {name: asyncio.Event() for name in ("gone", "open", "closing")}

        def application(name):
            async def run(scope, receive, send):
                await finish[name].wait()

            return run

        lean = LeanServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])  # never run
        lean.connections = {}  # as run() starts it
        protocols = {name: type("Protocol", (), {"name": name})() for name in finish}
        for name, protocol in protocols.items():
            lean.application = application(name)
            lean.protocol_connected(protocol)
            lean.create_application(protocol, {"type": "websocket"})
        finish["gone"].set()
        lean.protocol_disconnected(protocols["gone"])
        lean.protocol_disconnected(protocols["closing"])
        await asyncio.sleep(0)  # the finished application's callback
        await asyncio.sleep(0)

        lean.application_checker()

        assert set(lean.connections) == {protocols["open"], protocols["closing"]}
        assert lean.ended == {protocols["closing"]}  # still waited for; the open one is not visited
        finish["closing"].set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        lean.application_checker()
        assert set(lean.connections) == {protocols["open"]} and not lean.ended
        finish["open"].set()

    asyncio.run(scenario())


def test_lean_server_checks_an_open_socket_only_when_its_ping_or_lifetime_can_be_due(monkeypatch):
    """Daphne's timeout and ping check, run on what is due: handshakes and HTTP on every pass, an
    open socket once it has been silent for the ping interval or lived its maximum lifetime."""
    from daphne import server as daphne_server

    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "time", lambda: clock["now"])  # daphne's and ours (both call time.time)
    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda *args: None)  # passes are run by hand
    lean = LeanServer(
        application=None,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        ping_interval=35,
        websocket_timeout=600,
        websocket_connect_timeout=600,
    )
    lean.connections = {}
    checked: list[str] = []
    pinged: list[float] = []

    class Http:
        def check_timeouts(self) -> None:
            checked.append("http")

    def websocket(name: str, state: int) -> WebSocketProtocol:
        protocol = LeanWebSocketProtocol.__new__(LeanWebSocketProtocol)
        protocol.__dict__.update(
            state=state, socket_opened=clock["now"], last_ping=clock["now"], server=lean, transport=None
        )
        original = protocol.check_timeouts

        def check_timeouts() -> None:
            checked.append(name)
            original()

        protocol.__dict__.update(
            check_timeouts=check_timeouts,
            _sendAutoPing=lambda: pinged.append(clock["now"]),
            serverClose=lambda: checked.append(f"{name} closed"),
            serverReject=lambda: checked.append(f"{name} rejected"),
        )
        return protocol

    http, talking = Http(), websocket("talking", WebSocketProtocol.STATE_OPEN)
    connecting = websocket("connecting", WebSocketProtocol.STATE_CONNECTING)
    for protocol in (http, talking, connecting):
        lean.protocol_connected(protocol)

    def run_pass(at: float) -> list[str]:
        clock["now"] = at
        checked.clear()
        lean.timeout_checker()
        return sorted(checked)

    assert run_pass(1002) == ["connecting", "http", "talking"]  # a first look at everything
    assert run_pass(1004) == ["connecting", "http"]  # the open socket has nothing due for 35 s
    talking.last_ping = 1010  # a client message counts as a sign of life
    assert run_pass(1036) == ["connecting", "http", "talking"] and not pinged  # due as of 1035: not silent
    assert run_pass(1040) == ["connecting", "http"]
    assert run_pass(1046) == ["connecting", "http", "talking"] and pinged == [1046]  # silent 36 s: pinged
    assert run_pass(1048) == ["connecting", "http"]
    assert run_pass(1080) == ["connecting", "http"]  # the next ping is due at 1081
    assert run_pass(1082) == ["connecting", "http", "talking"] and pinged == [1046, 1082]
    assert {"talking closed", "connecting rejected"} <= set(run_pass(1602))  # the 600 s lifetime and connect timeout

    del lean.connections[talking], lean.connections[connecting]  # reaped
    assert run_pass(1604) == ["http"] and [entry[2] for entry in lean.due] == [http]


def test_lean_server_lets_go_of_reaped_connections_when_many_leave_at_once(monkeypatch):
    """After a mass disconnect the timeout queue drops the reaped protocols at the next reaping
    pass, rather than holding each until its ping interval comes round."""
    from daphne import server as daphne_server

    monkeypatch.setattr(daphne_server.reactor, "callLater", lambda *args: None)  # passes are run by hand

    class Http:
        def check_timeouts(self) -> None:
            pass

    lean = LeanServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    lean.connections = {}
    protocols = [Http() for _ in range(300)]
    for protocol in protocols:
        lean.protocol_connected(protocol)
    leaving, staying = protocols[:20], protocols[20:]
    for protocol in leaving:
        lean.protocol_disconnected(protocol)
    lean.application_checker()
    assert len(lean.connections) == 280 and len(lean.due) == 300  # a few gone: forgotten when due

    leaving, staying = staying[:250], staying[250:]
    for protocol in leaving:
        lean.protocol_disconnected(protocol)
    lean.application_checker()

    assert set(lean.connections) == set(staying)
    assert sorted(map(id, (entry[2] for entry in lean.due))) == sorted(map(id, staying))
    lean.timeout_checker()  # the rebuilt queue still works as a heap
    assert len(lean.due) == len(staying)


def test_the_server_process_collects_cyclic_garbage_less_often(adapter):
    import gc

    assert adapter == []  # every name the adapter uses is there, at the versions it was checked against
    assert gc.get_threshold() == GC_THRESHOLDS
