"""Exact decimals from outside, the digits each stored field holds, and the context money is computed in.

A number a client sends is stored only if the database keeps it exactly: a value with more
decimal places or integer digits than its column would be rounded or refused by the database
after the service had already answered with the value as sent. So every decimal input is
checked against the `max_digits` and `decimal_places` of the model field it goes into (read
from the field itself, never restated), exactly, before any arithmetic. The arithmetic of
trading and portfolios runs in `ARITHMETIC`, not the thread's default context: its precision
holds every product of stored values exactly, and an invalid operation raises instead of
rounding silently.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from typing import Any, TypeVar

from .exceptions import ValidationFailed

# Stored values have at most 20 digits; a product of two and a sum of many stay far below 60.
ARITHMETIC = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])

# The JSON number grammar (RFC 8259), ASCII digits only: no "1_0", no "١٠", no spaces, no "NaN".
NUMBER_TEXT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
MAX_NUMBER_TEXT = 40

F = TypeVar("F", bound=Callable[..., Any])

_ASCII_DIGITS_RE = re.compile(r"[0-9]+")


def ascii_int(text: str, *, max_digits: int = 18) -> int | None:
    """Return the integer a string of ASCII digits spells (surrounding spaces allowed), else None.

    `str.isdigit()` and `int()` also take other scripts' digits ("١٢", "０１"), and `isdigit()`
    superscripts that `int()` then refuses ("²"); no client types those, and the second would
    escape as an exception instead of a refusal. At most `max_digits` digits (ids fit bigint).
    """
    text = text.strip()
    if len(text) > max_digits or not _ASCII_DIGITS_RE.fullmatch(text):
        return None
    return int(text)


def computed_exactly(function: F) -> F:
    """Run `function` with `ARITHMETIC` as the decimal context of its thread."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with localcontext(ARITHMETIC):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # wraps() keeps `function`'s signature; F says so


def decimal_from_input(value: Any) -> Decimal | None:
    """Return the Decimal a JSON number or an ASCII decimal string denotes, None for anything else.

    Booleans, floats, NaN, infinities and strings outside the JSON number grammar are None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT or not NUMBER_TEXT_RE.fullmatch(value):
            return None
        return Decimal(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


@dataclass(frozen=True)
class Digits:
    """The numbers a decimal column holds exactly: `max_digits` in all, `decimal_places` of them after the point."""

    max_digits: int
    decimal_places: int

    @classmethod
    def of(cls, model: Any, name: str) -> Digits:
        """Return the digits of the DecimalField `name` of `model`."""
        field = model._meta.get_field(name)
        return cls(max_digits=field.max_digits, decimal_places=field.decimal_places)

    @property
    def integer_digits(self) -> int:
        return self.max_digits - self.decimal_places

    @property
    def step(self) -> Decimal:
        """The smallest stored unit (0.0001 for four places)."""
        return Decimal(1).scaleb(-self.decimal_places)

    def fault(self, value: Decimal) -> str | None:
        """Return what keeps the finite `value` from being stored exactly, None if nothing does.

        Worked out from the digits of the exact value, not by rounding it in some context:
        1.00000000000000000000000000001 has 29 places whatever the context's precision.
        """
        _, digits, exponent = value.as_tuple()
        if not any(digits):
            return None  # zero, in whatever notation (0E-50, -0.000)
        # Only NaN ('n', 'N') and infinity ('F') have a letter for an exponent, and they are not finite.
        assert isinstance(exponent, int)
        significant = len(digits)
        while significant > 1 and digits[significant - 1] == 0 and exponent < 0:
            significant -= 1
            exponent += 1
        places = max(0, -exponent)
        if places > self.decimal_places:
            return f"has more than {self.decimal_places} decimal places"
        if significant + exponent > self.integer_digits:
            return f"has more than {self.integer_digits} digits before the decimal point"
        return None


def decimal_validate(value: Decimal, *, digits: Digits, field: str) -> Decimal:
    """Return `value` in plain notation if its column stores it exactly; else raise `validation_error` naming `field`."""
    fault = digits.fault(value)
    if fault is not None:
        raise ValidationFailed(
            "validation_error",
            f"'{field}' {fault}.",
            field=field,
            decimal_places=digits.decimal_places,
            integer_digits=digits.integer_digits,
        )
    if value.is_zero():
        return Decimal(0)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # `value` is finite (the callers refuse NaN and infinity)
    if exponent > 0:  # 1E+2: the same number as 100, written as it is stored
        return value.quantize(Decimal(1), context=ARITHMETIC)
    return value
