"""The TypeScript event types (`static/ts/events.generated.ts`), generated from the one schema table."""

from __future__ import annotations

import dataclasses
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import Field, Kind
from realtime.management.commands import generate_ts_events


def interface_fields(text: str, name: str) -> dict[str, str]:
    """Return the fields of one generated interface as name -> TypeScript type."""
    block = re.search(rf"export interface {name} \{{\n(.*?)\n\}}", text, re.S)
    assert block, f"no interface {name}"
    fields = {}
    for line in block.group(1).split("\n"):
        field = re.fullmatch(r"  (\w+): (.+);", line)
        assert field, f"{name}: not a field line: {line!r}"
        fields[field.group(1)] = field.group(2)
    return fields


def test_generated_typescript_types_are_those_the_schema_table_writes_now(capsys):
    call_command("generate_ts_events", "--check")  # raises CommandError when stale
    assert "is up to date" in capsys.readouterr().out


def test_a_change_to_the_schema_table_makes_the_typescript_types_stale(monkeypatch):
    # given a schema table in which market.alert has one field more
    schema = EVENT_SCHEMAS["market.alert"]
    grown = dataclasses.replace(schema, fields=schema.fields + (Field("venue", Kind.STRING),))
    monkeypatch.setitem(EVENT_SCHEMAS, "market.alert", grown)

    # then the generator writes the field, and the check refuses the file in the repository
    assert interface_fields(generate_ts_events.render(), "MarketAlertData")["venue"] == "string"
    with pytest.raises(CommandError, match="events.generated.ts is stale"):
        call_command("generate_ts_events", "--check")


@pytest.mark.parametrize("schema", EVENT_SCHEMAS.values(), ids=lambda s: s.name)
def test_each_event_type_has_an_interface_with_exactly_its_wire_fields_in_order(schema):
    text = generate_ts_events.TARGET.read_text(encoding="utf-8")
    name = generate_ts_events.interface_name(schema)

    assert list(interface_fields(text, name)) == list(schema.field_names)
    assert f'  "{schema.name}": {name};' in text  # in SchemaEventDataMap


def test_kinds_map_to_typescript_types():
    fields = interface_fields(generate_ts_events.render(), "OrderCreatedData")

    assert fields["quantity"] == "DecimalNumber"
    assert fields["price"] == "DecimalNumber | null"  # nullable
    assert fields["created_at"] == "Timestamp"
    assert fields["status"] == "string"
    snapshot = interface_fields(generate_ts_events.render(), "GatewaySnapshotData")
    assert snapshot["connections_total"] == "number"
    assert snapshot["connections"] == "Record<string, unknown>[]"
    assert snapshot["events_delivered"] == "Record<string, unknown>"


def test_a_choice_admits_the_default_the_gateway_accepts_from_bus_services():
    text = generate_ts_events.render()

    # market.alert comes from bus services too, whose dataclass leaves severity at ""
    assert interface_fields(text, "MarketAlertData")["severity"] == '"info" | "warning" | "critical" | ""'
    # a choice whose spec default is one of the choices gains nothing
    assert interface_fields(text, "OrderFilledData")["status"] == '"filled" | "partially_filled"'


def test_an_event_type_no_service_sends_is_typed_strictly(monkeypatch):
    # given a gateway-only event type (no spec dataclass) with a choice
    schema = EVENT_SCHEMAS["system.gateway_snapshot"]
    chosen = dataclasses.replace(schema, fields=schema.fields + (Field("state", Kind.STRING, choices=("up", "down")),))
    monkeypatch.setitem(EVENT_SCHEMAS, schema.name, chosen)

    # then only its choices are admitted: no bus service sends it with the spec's default
    assert interface_fields(generate_ts_events.render(), "GatewaySnapshotData")["state"] == '"up" | "down"'


def test_a_nullable_choice_admits_null_once(monkeypatch):
    # given a bus-sent event type with a nullable choice, whose spec default is None
    schema = EVENT_SCHEMAS["market.alert"]
    grown = dataclasses.replace(
        schema, fields=schema.fields + (Field("session", Kind.STRING, nullable=True, choices=("open", "closed")),)
    )
    monkeypatch.setitem(EVENT_SCHEMAS, schema.name, grown)

    assert interface_fields(generate_ts_events.render(), "MarketAlertData")["session"] == '"open" | "closed" | null'
