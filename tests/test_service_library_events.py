"""The service library's event classes and codec: generated from the schema table, the spec's dataclasses
with exact numbers, and a library that needs no Django.

The library is imported from `clients/python/src` (pytest.ini `pythonpath`), as an installed
copy would be; that it does not need Django a subprocess checks.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from decimal import Decimal

import pytest

import aktienanalyse_events as library
from aktienanalyse_events import codec
from realtime.bus.inbound import parse_bus_message
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import Field, Kind
from realtime.management.commands import generate_service_events
from realtime.wire.protocol import decode
from tests.fixtures import spec_bus_messages, spec_events
from tests.fixtures.service_library import LIBRARY


SPEC_SCHEMAS = [schema for schema in EVENT_SCHEMAS.values() if schema.spec_class]


def library_twin(spec_event):
    """Return the library's event with the same attribute values as a spec dataclass instance."""
    return library.EVENT_CLASSES[spec_event.event_type](**dataclasses.asdict(spec_event))


# Generated from the one schema table


def test_generated_event_classes_are_those_the_schema_table_writes_now():
    assert generate_service_events.TARGET.read_text(encoding="utf-8") == generate_service_events.render(), (
        "clients/python/src/aktienanalyse_events/events.py is stale: run `python manage.py generate_service_events`"
    )


def test_a_change_to_the_schema_table_makes_the_generated_file_stale(monkeypatch):
    # given a schema table in which market.alert has one field more
    schema = EVENT_SCHEMAS["market.alert"]
    grown = dataclasses.replace(schema, fields=schema.fields + (Field("venue", Kind.STRING),))
    monkeypatch.setitem(EVENT_SCHEMAS, "market.alert", grown)

    # then the generator writes it, and the file in the repository no longer matches
    text = generate_service_events.render()
    assert '    venue: str = ""' in text and '"venue": self.venue,' in text
    assert text != generate_service_events.TARGET.read_text(encoding="utf-8")


@pytest.mark.parametrize("spec_class", spec_events.SPEC_EVENT_CLASSES, ids=lambda c: c.__name__)
def test_each_library_class_is_the_spec_dataclass_with_its_fields_order_and_defaults(spec_class):
    ours = getattr(library, spec_class.__name__)
    spec_fields = [(f.name, f.default) for f in dataclasses.fields(spec_class)]
    assert [(f.name, f.default) for f in dataclasses.fields(ours)] == spec_fields
    assert ours().to_websocket_data().keys() == spec_class().to_websocket_data().keys()


@pytest.mark.parametrize("spec_event", spec_bus_messages.every_field_set("lib"), ids=lambda e: e.event_type)
def test_library_event_sends_the_numbers_the_spec_event_sends_but_exact(spec_event):
    ours = library_twin(spec_event).to_websocket_data()
    assert decode(codec.encode(ours)) == decode(json.dumps(spec_event.to_websocket_data()))
    money = [f.name for f in EVENT_SCHEMAS[spec_event.event_type].fields if f.kind is Kind.DECIMAL]
    assert all(isinstance(ours[name], (Decimal, int, type(None))) for name in money)


def test_an_amount_a_float_would_round_arrives_with_every_digit():
    amount = Decimal("12345678901234567.89")
    ours = library.OrderFilledEvent(order_id="o-1", total_value=amount, fees=Decimal("0.1") + Decimal("0.2"))
    theirs = spec_events.OrderFilledEvent(order_id="o-1", total_value=amount, fees=Decimal("0.1") + Decimal("0.2"))

    text = codec.encode(ours.to_websocket_data())

    assert '"total_value":12345678901234567.89' in text and '"fees":0.3' in text
    assert decode(json.dumps(theirs.to_websocket_data()))["total_value"] != amount  # what float() does


@pytest.mark.parametrize(
    ("value", "sent"),
    [(Decimal("0"), None), (None, None), (Decimal("101.50"), Decimal("101.50")), (12, 12), (0.1, Decimal("0.1"))],
)
def test_optional_price_is_sent_as_the_spec_sends_it_and_exact(value, sent):
    assert library.OrderCreatedEvent(order_id="o", price=value).to_websocket_data()["price"] == sent


def test_stack_trace_is_kept_on_the_event_but_not_sent():
    event = library.ErrorOccurredEvent(error_id="e-1", stack_trace="Traceback (most recent call last): ...")
    assert event.stack_trace.startswith("Traceback") and "stack_trace" not in event.to_websocket_data()


@pytest.mark.parametrize(
    "event",
    [library_twin(e) for e in spec_bus_messages.every_field_set("ok") + spec_bus_messages.few_fields_set("few")],
    ids=lambda e: e.event_type,
)
def test_library_message_is_accepted_by_the_gateways_bus_bridge_with_exact_numbers(event):
    # given the message the dispatcher publishes for an event, few or all fields set
    message = library.bus.event_message(event, service_name="news-service", correlation_id="c-1")

    # when the gateway's bridge reads it
    frame = decode(parse_bus_message(codec.encode(message))["text"])

    # then it is delivered under the library's ids, with exactly the data the library sent
    assert (frame["type"], frame["event"], frame["source_service"], frame["correlation_id"]) == (
        EVENT_SCHEMAS[event.event_type].category,
        event.event_type,
        "news-service",
        "c-1",
    )
    expected = decode(codec.encode(event.to_websocket_data()))
    for name in (f.name for f in EVENT_SCHEMAS[event.event_type].fields if f.kind is Kind.TIMESTAMP):
        if expected[name] == "":  # filled in by the gateway
            assert frame["data"][name].endswith("Z")
            expected[name] = frame["data"][name]
    assert frame["data"] == expected


# Codec


def test_codec_writes_decimals_exactly_and_reads_fractions_as_decimals():
    text = codec.encode({"a": Decimal("0.10"), "b": [Decimal("-1E+3"), 2, 2.5, None, True, "ü"], 3: "x"})
    assert text == '{"a":0.10,"b":[-1E+3,2,2.5,null,true,"ü"],"3":"x"}'
    assert (
        decode(text)
        == codec.decode(text)
        == {"a": Decimal("0.10"), "b": [Decimal("-1E+3"), 2, Decimal("2.5"), None, True, "ü"], "3": "x"}
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [(Decimal("NaN"), ValueError), (float("inf"), ValueError), (object(), TypeError), ({(1, 2): 1}, TypeError)],
)
def test_codec_refuses_what_json_cannot_carry(value, error):
    with pytest.raises(error):
        codec.encode({"x": value})


@pytest.mark.parametrize(
    ("value", "error"), [("abc", ValueError), (True, TypeError), (Decimal("Infinity"), ValueError), ([], TypeError)]
)
def test_amount_that_is_no_number_is_refused_when_the_event_is_built(value, error):
    with pytest.raises(error):
        library.PriceUpdateEvent(symbol="SAP", price=value).to_websocket_data()


def test_library_imports_without_django_and_depends_on_redis_only():
    check = "import sys, aktienanalyse_events; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=LIBRARY,
        env={"PYTHONPATH": str(LIBRARY / "src")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    project = tomllib.loads((LIBRARY / "pyproject.toml").read_text())["project"]
    assert (project["name"], project["version"], project["dependencies"]) == (
        "aktienanalyse-events",
        "0.1.0",
        ["redis>=5.0.1"],
    )
