"""What the bridge accepts from the spec's bus, and what it makes of it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from realtime.delivery import messages
from realtime.bus.forwarding import backend_event, forwards
from realtime.bus.inbound import BusMessageRejected, parse_bus_message
from realtime.wire.protocol import ClientMessage, decode
from tests.fixtures.bus import spec_command_response, spec_price_update


def test_spec_price_update_becomes_an_event_for_its_subscribers_with_exact_numbers():
    message = parse_bus_message(json.dumps(spec_price_update("SAP", 142.37, previous=141.1)))
    frame = decode(message["text"])
    assert (message["type"], message["group"]) == (messages.EVENT, "ev.market.price_update")
    assert (frame["type"], frame["event"], frame["source_service"]) == (
        "market",
        "market.price_update",
        "market-data-service",
    )
    assert frame["data"]["price"] == Decimal("142.37")
    assert frame["correlation_id"] and frame["timestamp"].endswith("Z")


def test_event_with_target_client_goes_only_to_that_client():
    raw = spec_price_update("SAP", 1.5)
    raw["target_client"] = "desk-7"
    message = parse_bus_message(json.dumps(raw))
    assert message["group"] == "client.desk-7"


def test_spec_command_response_becomes_a_direct_frame_for_its_client():
    message = parse_bus_message(json.dumps(spec_command_response("desk-7", "start_analysis", {"id": "a1"}, "c-9")))
    frame = decode(message["text"])
    assert (message["type"], message["group"]) == (messages.DIRECT, "client.desk-7")
    assert (frame["type"], frame["event"], frame["correlation_id"]) == (
        "command_response",
        "start_analysis.response",
        "c-9",
    )
    assert frame["data"] == {"status": "success", "command": "start_analysis", "result": {"id": "a1"}}


def _response(**changes):
    raw = spec_command_response("desk-7", "start_analysis", {}, "c-1")
    raw.update(changes)
    return json.dumps(raw)


def _price(**data_changes):
    raw = spec_price_update("SAP", 1.0)
    raw["data"].update(data_changes)
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{oops", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        ('{"type": "market", "event": "market.price_update", "data": {"price": NaN}}', "malformed JSON"),
        ("[]", "not a JSON object"),
        ('{"type": 1, "event": "market.alert"}', "'type' and 'event' must be strings"),
        ('{"type": "market", "event": "market.moon"}', "unknown event type 'market.moon'"),
        (json.dumps({**spec_price_update("SAP", 1.0), "type": "trading"}), "does not match the category"),
        (_price(volume="1"), "volume must be integer"),  # a fraction passes: the spec's int is not enforced
        (_price(price="1.0"), "price must be decimal"),
        (_price(extra=1), "unexpected extra"),
        (
            json.dumps({**spec_price_update("SAP", 1.0), "target_client": "no spaces allowed"}),
            "target_client must be a client id",
        ),
        (json.dumps({**spec_price_update("SAP", 1.0), "correlation_id": 7}), "correlation_id must be a string"),
        (_response(target_client=None), "needs a target_client"),
        (_response(event="start_analysis"), "'<command>.response'"),
        (_response(data={"status": "success", "command": "start_analysis"}), "exactly status, command and result"),
        (
            _response(data={"status": "maybe", "command": "start_analysis", "result": 1}),
            "status must be success or error",
        ),
        (_response(data={"status": "error", "command": "other", "result": 1}), "command must match"),
        ("x" * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_bad_bus_message_is_rejected_with_its_reason(raw, reason):
    with pytest.raises(BusMessageRejected) as caught:
        parse_bus_message(raw)
    assert reason in str(caught.value)


def test_backend_event_keeps_the_clients_correlation_id_and_the_spec_keys():
    message = ClientMessage(type="user", event="start_analysis", data={"symbol": "SAP"}, correlation_id="mine-1")
    event = backend_event(client_id="desk-7", message=message)
    assert set(event) == {"type", "event", "data", "client_id", "timestamp", "correlation_id"}
    assert (event["type"], event["event"], event["client_id"], event["correlation_id"]) == (
        "user_command",
        "start_analysis",
        "desk-7",
        "mine-1",
    )


def test_by_default_the_spec_command_handlers_commands_are_forwarded_when_a_bus_is_configured(settings):
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": "redis://127.0.0.1:6379/0", "BRIDGE": "local"}
    assert forwards("start_analysis") and forwards("place_order") and forwards("get_system_status")
    assert not forwards("launch_rockets")
    settings.REALTIME_BUS = {**settings.REALTIME_BUS, "URL": ""}
    assert not forwards("start_analysis")
