"""The event-flow log: one grep on a correlation id tells a command's whole story, without bodies."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import pytest

from realtime.connection.commands import registry
from realtime.delivery.dispatch import asend_event
from realtime.runtime.logs import JsonFormatter, TextFormatter, log_flow
from tests.fixtures.ws import login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@registry.register("test_raise_alert")
async def _raise_alert(ctx, data):
    """Publish a market alert, as a handler that emits events does."""
    await asend_event(
        "market.alert",
        {
            "alert_type": "price",
            "symbol": "SAP",
            "message": "crossed",
            "severity": "info",
            "trigger_value": Decimal("1"),
            "current_value": Decimal("2"),
            "threshold": Decimal("1.5"),
            "timestamp": "2026-11-23T10:00:00.000Z",
        },
    )
    return {"raised": True}


def lines_of(caplog, correlation_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "correlation_id", None) == correlation_id]


async def test_one_correlation_id_shows_received_authorized_handled_emitted_and_delivered(
    ws_connect, staff_user, caplog
):
    caplog.set_level(logging.DEBUG, logger="realtime.flow")
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    client_id = client.received[0]["target_client"]
    await client.subscribe("market.alert")

    await client.send(
        {"type": "user", "event": "test_raise_alert", "data": {"note": "body-secret-42"}, "correlation_id": "trace-7"}
    )
    arrived = {}
    while len(arrived) < 2:  # on Redis the event may come after the response
        message = await client.receive(timeout=5)
        if message["event"] in ("market.alert", "test_raise_alert.response"):
            arrived[message["event"]] = message
    alert = arrived["market.alert"]
    for _ in range(100):  # on Redis the delivery may be logged just after the response
        if any(r.stage == "delivered" for r in lines_of(caplog, "trace-7")):
            break
        await asyncio.sleep(0.01)

    assert alert["correlation_id"] == "trace-7"  # the event inherits the command's correlation id
    story = lines_of(caplog, "trace-7")
    stages = [r.stage for r in story]
    assert sorted(stages) == sorted(["received", "authorized", "emitted", "delivered", "handled"])
    assert stages.index("received") < stages.index("authorized") < stages.index("emitted") < stages.index("delivered")
    assert stages.index("authorized") < stages.index("handled")
    by_stage = {r.stage: r for r in story}
    for stage in ("received", "authorized", "delivered", "handled"):
        assert by_stage[stage].client_id == client_id
        assert by_stage[stage].user == "anna"
    assert by_stage["received"].event_type == "test_raise_alert"
    assert by_stage["emitted"].event_type == by_stage["delivered"].event_type == "market.alert"
    assert by_stage["handled"].details["status"] == "success"
    formatted = "\n".join(TextFormatter().format(r) + JsonFormatter().format(r) for r in caplog.records)
    assert "body-secret-42" not in formatted
    assert "sessionid" not in formatted


async def test_refused_commands_are_logged_with_their_code(ws_connect, staff_user, caplog):
    caplog.set_level(logging.INFO, logger="realtime.flow")
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await client.command("no_such_thing", correlation_id="trace-8")
    story = lines_of(caplog, "trace-8")
    assert [r.stage for r in story] == ["received", "refused"]
    assert story[1].details["code"] == "unknown_command"


async def test_deliveries_are_not_logged_at_info(ws_connect, staff_user, caplog):
    caplog.set_level(logging.INFO, logger="realtime.flow")
    client, _ = await ws_connect(cookie=await login_cookie(staff_user))
    await client.subscribe("market.alert")
    await client.command("test_raise_alert", correlation_id="trace-9")
    assert "delivered" not in [r.stage for r in lines_of(caplog, "trace-9")]
    assert "emitted" in [r.stage for r in lines_of(caplog, "trace-9")]


def flow_record(caplog) -> logging.LogRecord:
    with caplog.at_level(logging.INFO, logger="realtime.flow"):
        log_flow(
            "handled", correlation_id="c-1", client_id="cl-1", user="anna", event_type="place_order", status="success"
        )
    return caplog.records[-1]


def test_json_format_writes_one_object_with_the_context_as_keys(caplog):
    entry = json.loads(JsonFormatter().format(flow_record(caplog)))
    assert entry["logger"] == "realtime.flow" and entry["level"] == "INFO"
    assert {k: entry[k] for k in ("stage", "correlation_id", "client_id", "user", "event_type", "status")} == {
        "stage": "handled",
        "correlation_id": "c-1",
        "client_id": "cl-1",
        "user": "anna",
        "event_type": "place_order",
        "status": "success",
    }


def test_text_format_appends_the_context_as_key_value_pairs(caplog):
    line = TextFormatter().format(flow_record(caplog))
    assert line.endswith(
        "realtime.flow handled correlation_id=c-1 client_id=cl-1 user=anna event_type=place_order status=success"
    )
