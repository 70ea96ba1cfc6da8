"""The command argument readers: what each accepts, what it returns, and the error each refusal names."""

from decimal import Decimal

import pytest

from core.exceptions import ValidationFailed
from core.numbers import Digits
from realtime.wire.payload import decimal_arg, id_arg, text_arg

MISSING = object()


def data_with(value):
    return {} if value is MISSING else {"field": value}


def refusal(reader, value, **options) -> tuple[str, str, dict]:
    with pytest.raises(ValidationFailed) as refused:
        reader(data_with(value), "field", **options)
    return refused.value.code, refused.value.message, refused.value.details


# (value, options, returned)
TEXT_ACCEPTED = [
    ("SAP", {}, "SAP"),
    ("  SAP \n", {}, "SAP"),
    ("x" * 64, {}, "x" * 64),
    (" " + "x" * 5 + " ", {"max_length": 5}, "xxxxx"),
    (MISSING, {"required": False}, None),
    (None, {"required": False}, None),
]


@pytest.mark.parametrize(("value", "options", "returned"), TEXT_ACCEPTED)
def test_a_text_argument_is_returned_trimmed(value, options, returned):
    assert text_arg(data_with(value), "field", **options) == returned


# (value, options, message)
TEXT_REFUSED = [
    (MISSING, {}, "'field' is required."),
    (None, {}, "'field' is required."),
    ("", {}, "'field' must be a non-empty string."),
    ("   ", {"required": False}, "'field' must be a non-empty string."),
    (5, {}, "'field' must be a non-empty string."),
    ("x" * 65, {}, "'field' may be at most 64 characters long."),
    ("x" * 6, {"max_length": 5}, "'field' may be at most 5 characters long."),
]


@pytest.mark.parametrize(("value", "options", "message"), TEXT_REFUSED)
def test_a_bad_text_argument_is_refused_naming_its_field(value, options, message):
    assert refusal(text_arg, value, **options) == ("validation_error", message, {"field": "field"})


PRICE = Digits(max_digits=6, decimal_places=2)

DECIMAL_ACCEPTED = [
    ("12.50", {}, Decimal("12.50")),
    (7, {}, Decimal("7")),
    (Decimal("0.001"), {}, Decimal("0.001")),
    ("1E+2", {"digits": PRICE}, Decimal("100")),
    ("9999.99", {"digits": PRICE}, Decimal("9999.99")),
    (MISSING, {"required": False}, None),
    (None, {"required": False}, None),
]


@pytest.mark.parametrize(("value", "options", "returned"), DECIMAL_ACCEPTED)
def test_a_number_argument_is_returned_exactly(value, options, returned):
    number = decimal_arg(data_with(value), "field", **options)

    assert number == returned and str(number) == str(returned)


NOT_A_NUMBER = "'field' must be a number (JSON number or decimal string of ASCII digits)."
# A value the column cannot store also names the column's digits, for the desk's texts.
COLUMN = {"decimal_places": 2, "integer_digits": 4}
DECIMAL_REFUSED = [
    (MISSING, {}, "'field' is required.", {}),
    (None, {}, "'field' is required.", {}),
    ("abc", {}, NOT_A_NUMBER, {}),
    (True, {"required": False}, NOT_A_NUMBER, {}),
    (1.5, {}, NOT_A_NUMBER, {}),
    ("1.005", {"digits": PRICE}, None, COLUMN),
    ("10000", {"digits": PRICE}, None, COLUMN),
]


@pytest.mark.parametrize(("value", "options", "message", "column"), DECIMAL_REFUSED)
def test_a_bad_number_argument_is_refused_naming_its_field(value, options, message, column):
    code, text, details = refusal(decimal_arg, value, **options)

    assert (code, details) == ("validation_error", {"field": "field", **column})
    assert text == message if message else text.startswith("'field' ")


ID_ACCEPTED = [
    (1, {}, 1),
    (2**63 - 1, {}, 2**63 - 1),
    ("42", {}, 42),
    (" 42 ", {}, 42),
    ("9" * 18, {}, int("9" * 18)),
    (MISSING, {"required": False}, None),
    (None, {"required": False}, None),
]


@pytest.mark.parametrize(("value", "options", "returned"), ID_ACCEPTED)
def test_an_id_argument_is_returned_as_an_int(value, options, returned):
    number = id_arg(data_with(value), "field", **options)

    assert number == returned and type(number) is type(returned)


ID_REFUSED = [
    (MISSING, {}, "'field' is required."),
    (None, {}, "'field' is required."),
    (0, {}, "'field' must be a positive integer id."),
    (-3, {}, "'field' must be a positive integer id."),
    (2**63, {}, "'field' must be a positive integer id."),
    (True, {}, "'field' must be a positive integer id."),
    (1.0, {}, "'field' must be a positive integer id."),
    ("1" * 19, {}, "'field' must be a positive integer id."),
    ("0", {}, "'field' must be a positive integer id."),
    ("1a", {}, "'field' must be a positive integer id."),
    # Other scripts' digits and superscripts: str.isdigit() takes them, int() takes some of them.
    ("²", {}, "'field' must be a positive integer id."),
    ("١٢", {}, "'field' must be a positive integer id."),
    ("０１", {}, "'field' must be a positive integer id."),
    ("", {"required": False}, "'field' must be a positive integer id."),
]


@pytest.mark.parametrize(("value", "options", "message"), ID_REFUSED)
def test_a_bad_id_argument_is_refused_naming_its_field(value, options, message):
    assert refusal(id_arg, value, **options) == ("validation_error", message, {"field": "field"})
