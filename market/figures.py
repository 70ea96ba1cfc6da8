"""Company fundamentals coming in: records checked and stored, Alpha Vantage's company overview read.

Which figures a record may carry is what the fundamental analysis scores (`METRICS`) or reports
for context (`CONTEXT_FIGURES`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, DecimalException
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.exceptions import ValidationFailed

from .fundamentals import CONTEXT_FIGURES, FOUR_PLACES, METRICS
from .models import Fundamentals
from .records import figure_clean, record_instruments, text_clean, unknown_fields_refuse


def fundamentals_record_clean(record: Any) -> dict[str, Any]:
    """Return one imported fundamentals record checked and typed; refuse it naming the first bad field.

    Keys: symbol, as_of (YYYY-MM-DD, not in the future), source, currency (optional ISO code),
    the metrics of `METRICS` and the figures of `CONTEXT_FIGURES`, each optional.
    """
    unknown_fields_refuse(record, {"symbol", "as_of", "source", "currency", *METRICS, *CONTEXT_FIGURES})
    symbol = text_clean(record.get("symbol"), field="symbol", max_length=16).upper()
    source = text_clean(record.get("source"), field="source", max_length=32)
    currency = record.get("currency") or ""
    if not isinstance(currency, str) or (currency and not (len(currency.strip()) == 3 and currency.strip().isalpha())):
        raise ValidationFailed(
            "validation_error", "'currency' must be a three-letter code such as EUR.", field="currency"
        )
    as_of = _date(record.get("as_of"), field="as_of")
    cleaned: dict[str, Any] = {"symbol": symbol, "source": source, "currency": currency.strip().upper(), "as_of": as_of}
    for name, metric in METRICS.items():
        cleaned[name] = figure_clean(record.get(name), field=name, low=metric.low, high=metric.high)
    low, high = CONTEXT_FIGURES["eps"]
    cleaned["eps"] = figure_clean(record.get("eps"), field="eps", low=low, high=high)
    low, high = CONTEXT_FIGURES["market_cap"]
    cleaned["market_cap"] = figure_clean(record.get("market_cap"), field="market_cap", low=low, high=high, places=0)
    return cleaned


def _date(value: Any, *, field: str) -> date:
    parsed: date | None
    if isinstance(value, date) and not isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = date.fromisoformat(value.strip()) if isinstance(value, str) and len(value.strip()) == 10 else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationFailed("validation_error", f"'{field}' must be a date YYYY-MM-DD.", field=field)
    if parsed > timezone.localdate():
        raise ValidationFailed("validation_error", f"'{field}' {parsed} lies in the future.", field=field)
    return parsed


@transaction.atomic
def fundamentals_store(*, records: list[dict[str, Any]]) -> list[Fundamentals]:
    """Store cleaned records, replacing an instrument's figures of the same date; refuse unknown symbols.

    All or nothing: one unknown symbol stores none of the records.
    """
    instruments = record_instruments(records)
    stored = []
    for record in records:
        values = {key: value for key, value in record.items() if key not in ("symbol", "as_of")}
        row, _ = Fundamentals.objects.update_or_create(
            instrument=instruments[record["symbol"]], as_of=record["as_of"], defaults=values
        )
        stored.append(row)
    return stored


# Alpha Vantage company overview

# Overview key: (our field, factor to our unit). Alpha Vantage sends fractions where we store percent.
ALPHA_VANTAGE_OVERVIEW_FIELDS = {
    "PERatio": ("pe_ratio", Decimal(1)),
    "PriceToBookRatio": ("pb_ratio", Decimal(1)),
    "DividendYield": ("dividend_yield", Decimal(100)),
    "ReturnOnEquityTTM": ("roe", Decimal(100)),
    "EPS": ("eps", Decimal(1)),
    "QuarterlyEarningsGrowthYOY": ("eps_growth", Decimal(100)),
    "QuarterlyRevenueGrowthYOY": ("revenue_growth", Decimal(100)),
    "MarketCapitalization": ("market_cap", Decimal(1)),
}


def fundamentals_from_alpha_vantage_overview(payload: Any, *, symbol: str) -> dict[str, Any]:
    """Return a fundamentals record (not yet cleaned) of `symbol` from an Alpha Vantage OVERVIEW answer.

    Its figures are strings, "None" or "-" where it has none; the date is its `LatestQuarter`.
    It has no debt/equity figure, so that metric stays missing.
    """
    if not isinstance(payload, dict) or not payload:
        raise ValueError("the company overview is empty (unknown symbol?)")
    for key in ("Error Message", "Note", "Information"):
        if key in payload:
            raise ValueError(f"Alpha Vantage answered: {str(payload[key])[:200]}")
    record: dict[str, Any] = {
        "symbol": symbol,
        "source": "alpha_vantage",
        "as_of": payload.get("LatestQuarter"),
        "currency": payload.get("Currency") or "",
    }
    for key, (field, factor) in ALPHA_VANTAGE_OVERVIEW_FIELDS.items():
        raw = payload.get(key)
        if raw is None or (isinstance(raw, str) and raw.strip() in ("", "-", "None")):
            continue
        try:
            value = (Decimal(str(raw).strip()) * factor).quantize(Decimal(1) if field == "market_cap" else FOUR_PLACES)
        except DecimalException:
            raise ValueError(f"{key} is not a number we can store: {str(raw)[:40]!r}") from None
        record[field] = value
    return record
