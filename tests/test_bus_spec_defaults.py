"""Events built with the spec's dataclasses, defaults and all, are delivered from the bus."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from realtime.delivery import messages
from realtime.bus.inbound import BusMessageRejected, DropReason, parse_bus_message
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import EventValidationError, Kind
from realtime.wire.protocol import decode
from tests.fixtures import spec_events
from tests.fixtures.spec_bus_messages import every_field_set, few_fields_set, spec_bus_text


def delivered_data(text: str) -> dict:
    return decode(parse_bus_message(text)["text"])["data"]


def sent_data(event) -> dict:
    """Return an event's data as the gateway reads the spec's `json.dumps` of it."""
    return decode(json.dumps(event.to_websocket_data()))


def time_fields(event_type: str) -> list[str]:
    return [f.name for f in EVENT_SCHEMAS[event_type].fields if f.kind is Kind.TIMESTAMP]


@pytest.mark.parametrize("event", few_fields_set("few"), ids=lambda e: e.event_type)
def test_spec_event_with_only_some_fields_set_is_delivered_with_its_empty_times_filled_in(event):
    # given an event a service built setting only what it knows, published as the spec does
    raw = json.loads(spec_bus_text(event))
    raw["timestamp"] = "2026-11-23T10:00:00.123456"  # the spec's datetime.utcnow().isoformat()

    # when the gateway reads it
    data = delivered_data(json.dumps(raw))

    # then every default passes as written, and every empty time is the message's time, in UTC
    expected = sent_data(event)
    for name in time_fields(event.event_type):
        assert expected[name] == ""
        expected[name] = "2026-11-23T10:00:00.123Z"
    if "health_score" in expected:
        assert expected["health_score"] == Decimal("97.5")
    assert data == expected


@pytest.mark.parametrize("event", every_field_set("all"), ids=lambda e: e.event_type)
def test_spec_event_with_every_field_set_is_delivered_unchanged(event):
    assert delivered_data(spec_bus_text(event)) == sent_data(event)


def test_every_spec_event_type_has_its_dataclass_in_the_helper():
    # the helper's dataclasses are the contract the tests above publish; none may be left out
    spec_types = {name for name, schema in EVENT_SCHEMAS.items() if schema.spec_class}
    assert {event.event_type for event in few_fields_set("x")} == spec_types
    assert {event.event_type for event in every_field_set("x")} == spec_types
    assert {
        getattr(spec_events, schema.spec_class)().event_type for schema in EVENT_SCHEMAS.values() if schema.spec_class
    } == spec_types


@pytest.mark.parametrize("sent_at", ["not a time", None, 17, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_empty_time_without_a_usable_message_time_is_the_time_of_receipt(sent_at):
    raw = json.loads(spec_bus_text(spec_events.PriceUpdateEvent(symbol="SAP")))
    raw["timestamp"] = sent_at
    before = datetime.now(timezone.utc) - timedelta(milliseconds=1)

    stamped = datetime.fromisoformat(delivered_data(json.dumps(raw))["timestamp"])

    assert before <= stamped <= datetime.now(timezone.utc)


def test_time_with_an_offset_in_the_message_is_filled_in_as_utc():
    raw = json.loads(spec_bus_text(spec_events.OrderFailedEvent(order_id="o-1")))
    raw["timestamp"] = "2026-11-23T11:00:00+01:00"

    assert delivered_data(json.dumps(raw))["failed_at"] == "2026-11-23T10:00:00.000Z"


def test_whole_number_in_an_integer_field_becomes_an_integer_and_a_fraction_stays_exact():
    whole = delivered_data(spec_bus_text(spec_events.ServiceStatusEvent(service_name="s", health_score=95.0)))
    fraction = delivered_data(spec_bus_text(spec_events.PriceUpdateEvent(symbol="BTC", volume=0.25)))

    assert type(whole["health_score"]) is int and whole["health_score"] == 95
    assert fraction["volume"] == Decimal("0.25")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (spec_events.MarketAlertEvent(symbol="SAP", severity="urgent"), "severity must be one of"),
        (spec_events.PriceUpdateEvent(symbol="SAP", timestamp="yesterday"), "timestamp must be timestamp"),
        # The wrong types below are the point: what a careless service sends and the gateway refuses.
        (spec_events.PriceUpdateEvent(symbol="SAP", volume="1200"), "volume must be integer"),  # type: ignore[arg-type]
        (spec_events.ServiceStatusEvent(service_name="s", health_score=True), "health_score must be integer"),
        (spec_events.OrderFilledEvent(order_id="o", status=""), "status must be one of filled, partially_filled"),
        (spec_events.ErrorOccurredEvent(error_id="e", user_affected=0), "user_affected must be boolean"),  # type: ignore[arg-type]
    ],
    ids=[
        "unknown choice",
        "no time",
        "text for a number",
        "bool for a number",
        "empty choice not the default",
        "number for a bool",
    ],
)
def test_bus_event_with_a_value_the_spec_never_writes_is_still_dropped(event, reason):
    with pytest.raises(BusMessageRejected, match=reason):
        parse_bus_message(spec_bus_text(event))


def test_huge_whole_number_in_an_integer_field_is_refused_as_out_of_range_not_expanded():
    # A lenient integer reading must not open a way around the bus's limits on numbers: a value
    # of a million digits is refused whole (never expanded, never delivered).
    raw = json.loads(spec_bus_text(spec_events.PriceUpdateEvent(symbol="SAP")))
    text = json.dumps(raw).replace('"volume": 0', '"volume": 1e999999')

    with pytest.raises(BusMessageRejected, match="out of range") as refused:
        parse_bus_message(text)
    assert refused.value.reason == DropReason.INVALID_VALUE


@pytest.mark.parametrize(
    ("event_type", "change"),
    [
        ("market.alert", {"severity": ""}),
        ("market.price_update", {"timestamp": ""}),
        ("system.service_status", {"health_score": Decimal("97.5")}),
    ],
)
def test_our_own_producers_are_still_held_to_the_strict_schema(event_type, change):
    data = sent_data(every_field_set("strict")[[e.event_type for e in every_field_set("x")].index(event_type)])
    data = {**data, **change}

    with pytest.raises(EventValidationError):
        messages.build_event_message(event_type, data)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_spec_events_few_or_all_fields_set_reach_a_subscriber_on_each_of_two_processes_exactly_once(
    gateways, live_clients, superuser
):
    # given two gateway processes and a subscriber of every spec event type on each
    from tests.fixtures.bus import new_bus, shared_redis_url

    bus = new_bus(shared_redis_url())
    process_a, process_b = gateways(bus)
    spec_types = sorted(name for name, schema in EVENT_SCHEMAS.items() if schema.spec_class)
    clients = [await live_clients(process, superuser) for process in (process_a, process_b)]
    for client in clients:
        await client.subscribe(*spec_types)
    published = few_fields_set("few") + every_field_set("all")
    marker = spec_events.OrderFailedEvent(order_id="marker")

    # when a service publishes each of them as the spec's dispatcher does, then a marker
    for event in published + [marker]:
        assert bus.publish(spec_bus_text(event)) >= 2

    # then each client got every event once, in the order published, with its data as sent
    for client in clients:
        frames = await client.receive_until(
            lambda f: f["event"] == "trading.order_failed" and f["data"]["order_id"] == "marker"
        )
        events = [f for f in frames if f["event"] in spec_types][:-1]
        assert [f["event"] for f in events] == [e.event_type for e in published]
        for frame, event in zip(events, published):
            expected = sent_data(event)
            for name in time_fields(event.event_type):
                if expected[name] == "":
                    expected[name] = frame["data"][name]
                    assert frame["data"][name].endswith("Z")
            assert frame["data"] == expected
