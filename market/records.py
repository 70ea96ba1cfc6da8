"""Reading and checking imported records (files, provider answers), shared by fundamentals and news."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.exceptions import ValidationFailed
from portfolio.models import Instrument

# What a source writes for a figure it does not have.
EMPTY_FIGURES = ("", "-", "None")


def parameters_object(parameters: Any, known: Iterable[str]) -> dict[str, Any]:
    """Return an analysis's `parameters` as a dict (absent: empty); refuse another type or an unknown name."""
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise ValidationFailed("validation_error", "'parameters' must be an object.", field="parameters")
    known = list(known)
    unknown = sorted(str(key) for key in set(parameters) - set(known))
    if unknown:
        raise ValidationFailed(
            "validation_error",
            f"Unknown parameters: {', '.join(name[:40] for name in unknown[:5])}; known are {', '.join(known)}.",
            field="parameters",
        )
    return parameters


def integer_parameters(parameters: dict[str, Any], ranges: dict[str, tuple[int, int, int]]) -> dict[str, int]:
    """Return each integer parameter of `ranges` ({name: (low, high, default)}), its default when absent;
    refuse a value that is not an integer (booleans neither) within its range."""
    cleaned = {}
    for name, (low, high, default) in ranges.items():
        value = parameters.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationFailed(
                "validation_error", f"'{name}' must be an integer from {low} to {high}.", field=f"parameters.{name}"
            )
        cleaned[name] = value
    return cleaned


def figure_clean(value: Any, *, field: str, low: Decimal, high: Decimal, places: int = 4) -> Decimal | None:
    """Return a figure as a Decimal within [low, high] with at most `places` decimals; None if empty."""
    if value is None or (isinstance(value, str) and value.strip() in EMPTY_FIGURES):
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str, Decimal))
        or (isinstance(value, str) and len(value) > 40)
    ):
        raise ValidationFailed("validation_error", f"'{field}' must be a number.", field=field)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValidationFailed(
            "validation_error", f"'{field}' must be a number; got {str(value)[:40]!r}.", field=field
        ) from None
    if not number.is_finite():
        raise ValidationFailed("validation_error", f"'{field}' must be a finite number.", field=field)
    if not low <= number <= high:
        raise ValidationFailed(
            "validation_error", f"'{field}' must lie between {low} and {high}; got {number}.", field=field
        )
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(
            "validation_error", f"'{field}' may have at most {places} decimals; got {number}.", field=field
        )
    return number


def text_clean(value: Any, *, field: str, max_length: int, required: bool = True) -> str:
    """Return a text with its whitespace collapsed; "" if optional and empty."""
    if value is None or value == "":
        if required:
            raise ValidationFailed("validation_error", f"'{field}' is required.", field=field)
        return ""
    if not isinstance(value, str):
        raise ValidationFailed("validation_error", f"'{field}' must be a string.", field=field)
    value = " ".join(value.split())
    if required and not value:
        raise ValidationFailed("validation_error", f"'{field}' must not be blank.", field=field)
    if len(value) > max_length:
        raise ValidationFailed(
            "validation_error", f"'{field}' may be at most {max_length} characters long.", field=field
        )
    return value


def record_instruments(records: Iterable[dict[str, Any]]) -> dict[str, Instrument]:
    """Return the instrument of each symbol the records name; refuse them all if one is unknown."""
    symbols = {record["symbol"] for record in records}
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    unknown = sorted(symbols - instruments.keys())
    if unknown:
        raise ValidationFailed("not_found", f"Unknown symbols: {', '.join(unknown[:10])}.", field="symbol")
    return instruments


def unknown_fields_refuse(record: Any, known: set[str] | tuple[str, ...]) -> None:
    """Refuse a record that is not an object or has fields beyond `known`."""
    if not isinstance(record, dict):
        raise ValidationFailed("validation_error", "A record must be an object.")
    unknown = sorted(str(key) for key in set(record) - set(known))
    if unknown:
        raise ValidationFailed("validation_error", f"Unknown fields: {', '.join(name[:40] for name in unknown[:5])}.")


def decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def records_read(path: Path) -> list[tuple[str, Any]]:
    """Return the records of a CSV file (a header line, then one record a line) or a JSON file (a list of objects).

    Each record comes with where it stands ("line 3", "record 2"). JSON numbers are read as
    Decimals, never floats. Raise ValueError for a file that cannot be read as a whole.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except ValueError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(data, list):
            raise ValueError(f"{path} must hold a JSON list of objects")
        return [(f"record {index}", record) for index, record in enumerate(data, start=1)]
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        if not reader.fieldnames:
            raise ValueError(f"{path} has no header line")
        records = []
        try:
            for row in reader:
                if None in row:
                    records.append((f"line {reader.line_num}", {"__extra__": row.pop(None)}))
                    continue
                records.append((f"line {reader.line_num}", {key.strip(): value for key, value in row.items()}))
        except csv.Error as error:
            raise ValueError(f"{path} line {reader.line_num}: {error}") from None
        return records
    raise ValueError(f"{path}: the file name must end in .csv or .json")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def records_clean(
    records: list[tuple[str, Any]], clean: Callable[[Any], dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the cleaned records and, for each refused one, where it stands and why."""
    cleaned, errors = [], []
    for where, record in records:
        if isinstance(record, dict) and "__extra__" in record:
            errors.append(f"{where}: more values than the header has columns")
            continue
        try:
            cleaned.append(clean(record))
        except ValidationFailed as error:
            errors.append(f"{where}: {error.message}")
    return cleaned, errors
