"""Daphne's connections under the project: settings read from the factory, nothing copied per socket."""

from __future__ import annotations

import pytest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

import aktienanalyse.asgi  # noqa: F401  (installs the protocol, as every daphne process of ours does)
from realtime.server import LeanWebSocketProtocol


def test_daphne_builds_lean_connections_that_read_each_setting_from_their_factory():
    assert WebSocketFactory.protocol is LeanWebSocketProtocol
    factory = WebSocketFactory(None, server="Daphne")
    factory.setProtocolOptions(autoPingInterval=7, maxMessagePayloadSize=1234, openHandshakeTimeout=3)
    protocol = factory.buildProtocol(None)

    assert (protocol.autoPingInterval, protocol.maxMessagePayloadSize, protocol.openHandshakeTimeout) == (7, 1234, 3)
    assert not set(WebSocketProtocol.CONFIG_ATTRS) & set(vars(protocol))
    factory.setProtocolOptions(maxMessagePayloadSize=99)  # one place holds the value
    assert protocol.maxMessagePayloadSize == 99
    with pytest.raises(AttributeError):
        protocol.no_such_attribute  # noqa: B018
