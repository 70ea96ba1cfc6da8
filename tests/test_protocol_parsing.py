"""The wire format's functions on their own: envelopes, exact encoding, decoding and every client-message check."""

import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from realtime.wire import protocol
from realtime.wire.protocol import (
    ClientMessage,
    ErrorCode,
    ProtocolError,
    command_response,
    decode,
    encode,
    envelope,
    error_message,
    new_correlation_id,
    parse_client_message,
    parse_event_types,
    parse_since,
    parse_symbols,
)
from core.times import isoformat, utc_now, utc_now_iso

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_timestamps_are_utc_with_milliseconds_and_a_z():
    moment = datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))

    assert isoformat(moment) == "2026-03-01T12:30:05.123Z"
    assert ISO_MS.match(utc_now_iso())
    assert utc_now().tzinfo is timezone.utc


def test_a_correlation_id_is_a_version_4_uuid():
    ids = {new_correlation_id() for _ in range(200)}

    assert len(ids) == 200
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_an_envelope_has_every_spec_key_and_fills_timestamp_and_correlation():
    message = envelope("event", "market.alert", {"a": 1})

    assert list(message) == ["type", "event", "data", "timestamp", "correlation_id", "source_service", "target_client"]
    assert (message["type"], message["event"], message["data"]) == ("event", "market.alert", {"a": 1})
    assert ISO_MS.match(message["timestamp"]) and uuid.UUID(message["correlation_id"]).version == 4
    assert message["source_service"] is None and message["target_client"] is None


def test_an_envelope_keeps_what_the_caller_gives():
    message = envelope(
        "event", "x.y", {}, correlation_id="c-1", source_service="news", target_client="cl-1", timestamp="T"
    )

    assert (message["correlation_id"], message["source_service"], message["target_client"], message["timestamp"]) == (
        "c-1",
        "news",
        "cl-1",
        "T",
    )


# (message, encoded)
ENCODED = [
    ({"a": 1, "b": "ä"}, '{"a":1,"b":"ä"}'),
    ({"price": Decimal("200.10")}, '{"price":200.10}'),
    ({"n": [Decimal("1E+2"), Decimal("-0.000001")]}, '{"n":[1E+2,-0.000001]}'),
    ({"x": Decimal("12345678901234567890.123456789"), "s": "ü"}, '{"x":12345678901234567890.123456789,"s":"ü"}'),
]


@pytest.mark.parametrize(("message", "encoded"), ENCODED)
def test_encoding_is_compact_and_keeps_decimals_exact(message, encoded):
    assert encode(message) == encoded


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-sNaN"), object(), "\ud800"])
@pytest.mark.parametrize("decimal_first", [False, True])
def test_encoding_refuses_what_json_cannot_say(value, decimal_first):
    message = {"d": Decimal("1"), "v": value} if decimal_first else {"v": value, "d": Decimal("1")}
    with pytest.raises((ValueError, TypeError)) as refused:
        encode(message)

    if isinstance(value, Decimal):
        assert "is not a number JSON allows" in str(refused.value)
    if type(value) is object:
        assert "cannot be sent as JSON" in str(refused.value)
    if isinstance(value, str):
        assert "not valid Unicode" in str(refused.value)


def test_the_refusal_names_the_first_non_finite_decimal_wherever_it_is_nested():
    message = {"s": "text", "n": 1, "d": Decimal("1"), "l": [2, {"x": Decimal("2.5"), "y": Decimal("-Infinity")}]}
    with pytest.raises(ValueError) as refused:
        encode(message)

    assert str(refused.value) == "-Infinity is not a number JSON allows"


def test_a_non_finite_decimal_where_the_refusal_cannot_find_it_is_named_a_value():
    # The encoder writes a set as an array, but the search for the culprit walks dicts, lists and tuples only.
    with pytest.raises(ValueError) as refused:
        encode({"v": {Decimal("NaN")}})

    assert str(refused.value) == "a value is not a number JSON allows"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_float_is_written_as_null_since_json_has_no_nan(value):
    # Events never carry one (their schemas refuse non-finite numbers); anything else gets valid JSON.
    assert encode({"v": value, "d": Decimal("1.50")}) == '{"v":null,"d":1.50}'


# (text, decoded, types)
DECODED = [
    ('{"p": 1.10}', {"p": Decimal("1.10")}, Decimal),
    ('{"p": 7}', {"p": 7}, int),
    ('{"p": ' + "9" * 64 + "}", {"p": int("9" * 64)}, int),
    ('{"p": ' + "9" * 4300 + "}", {"p": int("9" * 4300)}, int),
    ('{"p": 1e999999}', {"p": Decimal("1E+999999")}, Decimal),
    (b'{"p": 2.5}', {"p": Decimal("2.5")}, Decimal),
    ('{"p": "\u00e4\u20ac"}'.encode(), {"p": "\u00e4\u20ac"}, str),
]


@pytest.mark.parametrize(("text", "decoded", "kind"), DECODED)
def test_decoding_keeps_numbers_exact(text, decoded, kind):
    result = decode(text)

    assert result == decoded and type(result["p"]) is kind


@pytest.mark.parametrize(
    "text",
    [
        b'{"p": "\xed\xa0\x80"}',  # a lone surrogate written as UTF-8 bytes: not UTF-8
        '{"p": "\\ud800"}',  # the same escaped: no character
        '{"p": "x"}'.encode("utf-16"),  # JSON between systems is UTF-8 (RFC 8259)
        b'\xef\xbb\xbf{"p": 1}',  # nor does it start with a byte order mark
        '{"p": 1} {"q": 2}',
        '{"p": 1,}',
    ],
)
def test_decoding_refuses_what_is_not_json_text(text):
    with pytest.raises(ValueError, match="JSON is malformed|truncated|Invalid UTF-8"):
        decode(text)


def test_a_whole_number_longer_than_python_reads_is_an_exact_decimal_for_its_fields_check():
    assert decode('{"p": ' + "9" * 5000 + ', "q": 1.5}') == {"p": Decimal("9" * 5000), "q": Decimal("1.5")}
    assert decode(('{"p": -' + "9" * 5000 + "}").encode()) == {"p": Decimal("-" + "9" * 5000)}


def test_beside_a_whole_number_too_long_to_read_integers_of_up_to_64_digits_stay_integers():
    text = '{"p": ' + "9" * 5000 + ', "a": 7, "b": ' + "9" * 64 + ', "c": ' + "9" * 65 + "}"
    decoded = decode(text)

    assert decoded == {"p": Decimal("9" * 5000), "a": 7, "b": int("9" * 64), "c": Decimal("9" * 65)}
    assert [type(decoded[key]) for key in "pabc"] == [Decimal, int, int, Decimal]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_beside_a_whole_number_too_long_to_read_nan_and_infinity_are_refused_by_name(constant):
    with pytest.raises(ValueError) as refused:
        decode('{"p": ' + "9" * 5000 + ', "q": %s}' % constant)

    assert str(refused.value) == f"{constant} is not a number JSON allows"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_decoding_refuses_nan_and_infinity(constant):
    with pytest.raises(ValueError, match="JSON is malformed|truncated|Invalid UTF-8"):
        decode('{"p": %s}' % constant)


def test_a_client_message_is_parsed_with_its_parts():
    message = parse_client_message(
        '{"type": "user", "event": "place_order", "data": {"q": 1.5}, "correlation_id": "c-1"}'
    )

    assert message == ClientMessage("user", "place_order", {"q": Decimal("1.5")}, "c-1")


def test_a_ping_without_event_is_a_heartbeat_and_data_defaults_to_empty():
    assert parse_client_message('{"type": "ping"}') == ClientMessage("ping", "heartbeat", {}, None)
    assert parse_client_message('{"type": "ping", "data": null}').data == {}
    assert parse_client_message('{"type": "user", "event": "' + "e" * 64 + '"}').event == "e" * 64
    assert parse_client_message('{"type": "ping", "correlation_id": "' + "c" * 128 + '"}').correlation_id == "c" * 128


BAD_CORRELATION = "'correlation_id' must be a string of 1 to 128 characters."
BAD_EVENT = "'event' must be a non-empty string of at most 64 characters."
# (frame, code, message, correlation id answered with)
REFUSED = [
    ("{not json", ErrorCode.INVALID_JSON, "Invalid JSON format", None),
    ("[" * 100_000, ErrorCode.INVALID_JSON, "Invalid JSON format", None),
    ('{"type": "ping", "x": NaN}', ErrorCode.INVALID_JSON, "Invalid JSON format", None),
    ("[1]", ErrorCode.INVALID_MESSAGE, "A message must be a JSON object.", None),
    ('{"type": "ping", "correlation_id": ""}', ErrorCode.INVALID_MESSAGE, BAD_CORRELATION, None),
    ('{"type": "ping", "correlation_id": 5}', ErrorCode.INVALID_MESSAGE, BAD_CORRELATION, None),
    ('{"type": "ping", "correlation_id": "' + "c" * 129 + '"}', ErrorCode.INVALID_MESSAGE, BAD_CORRELATION, None),
    ('{"correlation_id": "c"}', ErrorCode.INVALID_MESSAGE, "'type' must be a string.", "c"),
    (
        '{"type": "' + "t" * 100 + '", "correlation_id": "c"}',
        ErrorCode.UNKNOWN_MESSAGE_TYPE,
        f"Unknown message type {'t' * 64!r}; expected one of: ping, subscription, user.",
        "c",
    ),
    ('{"type": "user", "correlation_id": "c"}', ErrorCode.INVALID_MESSAGE, BAD_EVENT, "c"),
    ('{"type": "user", "event": "", "correlation_id": "c"}', ErrorCode.INVALID_MESSAGE, BAD_EVENT, "c"),
    ('{"type": "user", "event": 3, "correlation_id": "c"}', ErrorCode.INVALID_MESSAGE, BAD_EVENT, "c"),
    ('{"type": "user", "event": "' + "e" * 65 + '", "correlation_id": "c"}', ErrorCode.INVALID_MESSAGE, BAD_EVENT, "c"),
    (
        '{"type": "ping", "data": [], "correlation_id": "c"}',
        ErrorCode.INVALID_MESSAGE,
        "'data' must be an object.",
        "c",
    ),
]


@pytest.mark.parametrize(("frame", "code", "message", "correlation_id"), REFUSED)
def test_a_bad_client_message_is_refused_with_its_code_and_reason(frame, code, message, correlation_id):
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(frame)

    assert (refused.value.code, refused.value.message, refused.value.correlation_id) == (code, message, correlation_id)
    assert str(refused.value) == message and refused.value.details == {}


def subscription(data) -> ClientMessage:
    return ClientMessage("subscription", "subscribe", data, "c-9")


def refused(parse, data, limit) -> ProtocolError:
    with pytest.raises(ProtocolError) as refusal:
        parse(subscription(data), limit=limit)
    assert refusal.value.correlation_id == "c-9"
    return refusal.value


def test_event_types_are_returned_once_each_in_order():
    assert parse_event_types(subscription({"event_types": ["b.x", "a.y", "b.x"]}), limit=3) == ["b.x", "a.y"]
    assert parse_event_types(subscription({"event_types": ["a.b"] * 2}), limit=2) == ["a.b"]


NOT_A_LIST = "'data.event_types' must be a non-empty list of event type names."


@pytest.mark.parametrize(
    ("event_types", "code", "message", "details"),
    [
        (None, ErrorCode.INVALID_MESSAGE, NOT_A_LIST, {}),
        ([], ErrorCode.INVALID_MESSAGE, NOT_A_LIST, {}),
        ("a.b", ErrorCode.INVALID_MESSAGE, NOT_A_LIST, {}),
        (
            ["a.b", "c.d", "e.f"],
            ErrorCode.TOO_MANY_EVENT_TYPES,
            "At most 2 event types per message; got 3.",
            {"limit": 2},
        ),
        (["a.b", 5], ErrorCode.INVALID_MESSAGE, "Every entry of 'data.event_types' must be a string.", {}),
    ],
)
def test_bad_event_types_are_refused(event_types, code, message, details):
    error = refused(parse_event_types, {"event_types": event_types}, 2)

    assert (error.code, error.message, error.details) == (code, message, details)


def test_symbols_are_a_set_or_none_for_all():
    assert parse_symbols(subscription({}), limit=2) is None
    assert parse_symbols(subscription({"symbols": ["SAP", "BRK.B"]}), limit=2) == frozenset({"SAP", "BRK.B"})
    assert parse_symbols(subscription({"symbols": ["A" * 16]}), limit=1) == frozenset({"A" * 16})


BAD_LIST = "'data.symbols' must be a non-empty list of at most 2 instrument symbols."


@pytest.mark.parametrize(
    ("symbols", "message", "details"),
    [
        ("SAP", BAD_LIST, {"limit": 2}),
        ([], BAD_LIST, {"limit": 2}),
        (["A", "B", "C"], BAD_LIST, {"limit": 2}),
        (["sap"], "'sap' is not an instrument symbol (1-16 of A-Z, 0-9 and '.').", {}),
        (["A" * 25], f"{'A' * 20!r} is not an instrument symbol (1-16 of A-Z, 0-9 and '.').", {}),
        (["SAP", 7], "'int' is not an instrument symbol (1-16 of A-Z, 0-9 and '.').", {}),
        ([""], "'' is not an instrument symbol (1-16 of A-Z, 0-9 and '.').", {}),
    ],
)
def test_bad_symbols_are_refused(symbols, message, details):
    error = refused(parse_symbols, {"symbols": symbols}, 2)

    assert (error.code, error.message, error.details) == (ErrorCode.INVALID_MESSAGE, message, details)


def test_since_positions_are_returned_as_given():
    since = {"a.b": {"seq": 0, "epoch": "e"}, "c.d": {"seq": 12, "epoch": "x" * 64}}

    assert parse_since(subscription({}), limit=2) == {}
    assert parse_since(subscription({"since": since}), limit=2) == since


BAD_ENTRY = 'Each \'data.since\' entry must be {"seq": <integer >= 0>, "epoch": <string>}.'


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ([], "'data.since' must be an object of at most 2 event types."),
        (
            {"a.b": {"seq": 1, "epoch": "e"}, "c.d": {"seq": 1, "epoch": "e"}, "e.f": {"seq": 1, "epoch": "e"}},
            "'data.since' must be an object of at most 2 event types.",
        ),
        ({"a.b": 5}, BAD_ENTRY),
        ({"a.b": {"epoch": "e"}}, BAD_ENTRY),
        ({"a.b": {"seq": "1", "epoch": "e"}}, BAD_ENTRY),
        ({"a.b": {"seq": True, "epoch": "e"}}, BAD_ENTRY),
        ({"a.b": {"seq": -1, "epoch": "e"}}, BAD_ENTRY),
        ({"a.b": {"seq": 1}}, BAD_ENTRY),
        ({"a.b": {"seq": 1, "epoch": ""}}, BAD_ENTRY),
        ({"a.b": {"seq": 1, "epoch": "x" * 65}}, BAD_ENTRY),
        ({"a.b": {"seq": 1, "epoch": 7}}, BAD_ENTRY),
        ({"ok.one": {"seq": 1, "epoch": "e"}, "a.b": {"seq": 1.5, "epoch": "e"}}, BAD_ENTRY),
    ],
)
def test_bad_since_positions_are_refused(since, message):
    error = refused(parse_since, {"since": since}, 2)

    assert (error.code, error.message, error.details) == (ErrorCode.INVALID_MESSAGE, message, {})


def test_an_error_message_carries_its_code_as_event_and_in_data():
    message = error_message(
        ErrorCode.RATE_LIMITED, "Slow down.", correlation_id="c-1", source_service="gw", target_client="cl", retry=3
    )

    assert (message["type"], message["event"]) == ("error", "rate_limited")
    assert message["data"] == {"error": "Slow down.", "code": "rate_limited", "retry": 3}
    assert (message["correlation_id"], message["source_service"], message["target_client"]) == ("c-1", "gw", "cl")


def test_a_command_response_names_its_command():
    message = command_response(
        "place_order", "success", {"id": 1}, correlation_id="c-1", target_client="cl", source_service="trading"
    )

    assert (message["type"], message["event"]) == ("command_response", "place_order.response")
    assert message["data"] == {"status": "success", "command": "place_order", "result": {"id": 1}}
    assert (message["correlation_id"], message["target_client"], message["source_service"]) == ("c-1", "cl", "trading")
    assert command_response("x", "error", None, correlation_id=None, target_client="cl")["source_service"] is None


def test_a_protocol_error_keeps_its_details():
    error = ProtocolError(ErrorCode.NOT_FOUND, "gone", correlation_id="c", limit=2)

    assert (error.code, error.message, error.correlation_id, error.details, str(error)) == (
        ErrorCode.NOT_FOUND,
        "gone",
        "c",
        {"limit": 2},
        "gone",
    )
    assert json.loads(protocol.encode({"code": error.code}))["code"] == "not_found"
