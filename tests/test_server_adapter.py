"""The daphne adapter's system check: every private name and version it relies on, reported plainly."""

from __future__ import annotations

import functools
import logging

import pytest
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from channels_redis.core import RedisChannelLayer
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from realtime.server import checks, transport
from realtime.server.checks import adapter_errors, part_usable


@pytest.fixture(autouse=True)
def fresh_decisions():
    """Each test decides anew which parts are usable and logs its own fallbacks."""
    part_usable.cache_clear()
    checks.log_fallback.cache_clear()
    yield
    part_usable.cache_clear()
    checks.log_fallback.cache_clear()


def test_the_installed_libraries_have_every_name_the_adapter_uses_at_the_versions_it_was_checked_against():
    assert adapter_errors() == []
    call_command("check")  # raises SystemCheckError on any Error


def test_a_private_method_gone_from_autobahn_is_an_error_naming_it(monkeypatch):
    monkeypatch.delattr(AutobahnProtocol, "_cancelAutoPingTimeoutCall")

    errors = adapter_errors()

    assert [(error.id, error.msg) for error in errors] == [
        (
            "realtime.E001",
            "The daphne adapter's protocol part uses "
            "daphne.ws_protocol:WebSocketProtocol._cancelAutoPingTimeoutCall, which the installed library lacks.",
        )
    ]
    with pytest.raises(SystemCheckError, match="_cancelAutoPingTimeoutCall"):
        call_command("check")
    assert not part_usable("protocol") and part_usable("writer")


def test_a_library_at_another_version_is_an_error(monkeypatch):
    monkeypatch.setitem(checks.VERSIONS, "daphne", "4.0.0")
    (error,) = adapter_errors()
    assert error.id == "realtime.E002" and "daphne 4.2.3 (the adapter was checked against 4.0.0)" in error.msg


def test_without_the_names_it_needs_the_socket_writer_is_not_used_and_that_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(transport, "installed", True)
    monkeypatch.delattr(RedisChannelLayer, "_group_key")  # another part: the writer stays usable
    send = functools.partial(lambda protocol, message: None, object())  # daphne's send: a partial on the protocol
    assert part_usable("writer") and not part_usable("layer")

    monkeypatch.setattr(
        checks,
        "PARTS",
        tuple(
            checks.Part(part.name, part.purpose, (*part.uses, ("twisted.internet.tcp:Server", ("_gone",))))
            if part.name == "writer"
            else part
            for part in checks.PARTS
        ),
    )
    part_usable.cache_clear()
    with caplog.at_level(logging.WARNING, logger="realtime.server"):
        assert transport.socket_writer(send) is None
        assert transport.socket_writer(send) is None
    assert [record.getMessage() for record in caplog.records] == [
        "daphne adapter: writer part not in use (names it needs are missing, see manage.py check); "
        "the slower public path serves instead"
    ]


def test_a_daphne_connection_outside_the_adapters_entry_point_gets_no_writer_and_it_is_logged(monkeypatch, caplog):
    monkeypatch.setattr(transport, "installed", False)
    send = functools.partial(lambda protocol, message: None, object())
    with caplog.at_level(logging.WARNING, logger="realtime.server"):
        assert transport.socket_writer(send) is None
    assert "realtime.server.install() did not run" in caplog.text
