"""Reads of market data: price history, latest recommendations, alert rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import BigIntegerField, Count, F, Func, Max, Min, OuterRef, QuerySet, Subquery, Sum, Window
from django.db.models.functions import FirstValue
from django.utils import timezone

from core.exceptions import NotFound, ValidationFailed
from portfolio.models import PRICE_DIGITS, Instrument

from core.times import isoformat

from .fundamentals import fundamental_result_restore
from .models import AlertRule, Analysis, FeedState, PriceTick
from .reasons import reasons_restore
from .sentiment import sentiment_result_restore

PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_DIGITS["decimal_places"])


def instrument_for_symbol(*, symbol: Any) -> Instrument:
    """Return the instrument a symbol from a request names; refuse a symbol that is not text or unknown."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValidationFailed("validation_error", "'symbol' must be a non-empty string.", field="symbol")
    cleaned = symbol.strip().upper()
    try:
        return Instrument.objects.get(symbol=cleaned)
    except Instrument.DoesNotExist:
        raise NotFound("not_found", f"Unknown symbol {cleaned[:16]!r}.", field="symbol") from None


def price_history_list(*, symbol: str, limit: int = 500) -> list[PriceTick]:
    """Return the newest `limit` ticks of an instrument, oldest first."""
    ticks = list(
        PriceTick.objects.filter(instrument__symbol=symbol).select_related("instrument").order_by("-at", "-id")[:limit]
    )
    ticks.reverse()
    return ticks


def feed_quotes_read(*, symbols: list[str] | None = None, priced_only: bool = True) -> dict[str, Decimal | None]:
    """Return the last price of each instrument the feed moves (`symbols`, else all), by symbol."""
    instruments = Instrument.objects.all()
    if priced_only:
        instruments = instruments.filter(last_price__isnull=False)
    if symbols:
        instruments = instruments.filter(symbol__in=list(symbols))
    return dict(instruments.order_by("symbol").values_list("symbol", "last_price"))


def feed_state_read(*, name: str) -> FeedState | None:
    """Return what the feed called `name` last stored about itself, if it ever ran."""
    return FeedState.objects.filter(name=name).first()


def analysis_latest_list(*, symbol: str | None = None) -> list[Analysis]:
    """Return the newest completed analysis of each instrument (of one, with `symbol`)."""
    complete = Analysis.objects.filter(status=Analysis.Status.COMPLETE)
    newest = (
        complete.filter(instrument=OuterRef("instrument")).order_by("-completed_at", "-created_at").values("id")[:1]
    )
    latest = complete.filter(id=Subquery(newest)).select_related("instrument", "requested_by")
    if symbol is not None:
        latest = latest.filter(instrument__symbol=symbol)
    return list(latest.order_by("instrument__symbol"))


def recommendation_data(*, analysis: Analysis) -> dict[str, Any]:
    """Return a stored analysis as `get_recommendations` lists it, indicator values as numbers."""
    result = dict(analysis.result or {})
    if analysis.analysis_type == "fundamental":
        result = fundamental_result_restore(result)
    elif analysis.analysis_type == "sentiment":
        result = sentiment_result_restore(result)
    elif "indicators" in result:
        result["indicators"] = {k: None if v is None else Decimal(v) for k, v in result["indicators"].items()}
    result = reasons_restore(result)
    return {
        "analysis_id": str(analysis.id),
        "analysis_type": analysis.analysis_type,
        "symbol": analysis.instrument.symbol,
        "recommendation": analysis.recommendation,
        "confidence_score": analysis.confidence_score,
        "result": result,
        "completed_at": isoformat(analysis.completed_at),
        "requested_by": analysis.requested_by.get_username() if analysis.requested_by else None,
    }


def alert_rule_list(*, user: AbstractBaseUser) -> list[AlertRule]:
    """Return a user's alert rules, oldest first."""
    return list(AlertRule.objects.filter(user=user).select_related("instrument"))


def alert_rule_data(*, rule: AlertRule) -> dict[str, Any]:
    return {
        "alert_id": rule.id,
        "symbol": rule.instrument.symbol,
        "condition": rule.condition,
        "threshold": rule.threshold,
        "reference_price": rule.reference_price,
        "window": rule.window,
        "armed": rule.armed,
        "trigger_count": rule.trigger_count,
        "last_triggered_at": isoformat(rule.last_triggered_at) if rule.last_triggered_at else None,
        "created_at": isoformat(rule.created_at),
    }


# Ranges and bar sizes of `price_bars_list`, in seconds; `all` spans the stored history.
BAR_RANGES: dict[str, int | None] = {"15m": 900, "1h": 3600, "4h": 14400, "1d": 86400, "1w": 604800, "all": None}
BAR_SIZES: dict[str, int] = {"5s": 5, "15s": 15, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}
# Most bars one answer holds: the aggregation never returns more rows than this.
MAX_BARS = 1000


class EpochBucket(Func):
    """The number of whole `size`-second steps since 1970-01-01 UTC of a date-time column."""

    output_field = BigIntegerField()

    def __init__(self, expression: Any, *, size: int):
        super().__init__(expression)
        self.size = int(size)

    def as_sql(self, compiler, connection, **extra_context):
        # PostgreSQL (and the fallback): the epoch as a number, floored per bucket.
        template = f"CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / {self.size}) AS BIGINT)"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite keeps an aware date-time as UTC text; julianday reads it, rounded to the
        # millisecond so that a tick on a boundary is not put a bucket early.
        template = f"CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3) / {self.size} AS INTEGER)"
        return super().as_sql(compiler, connection, template=template, **extra_context)


@dataclass(frozen=True)
class PriceBar:
    """Open, high, low and close of the ticks in [start, start + size), with their summed volume."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    ticks: int


@dataclass(frozen=True)
class PriceBars:
    """The bars of one instrument over a window; a bar size without ticks has no bar (a gap)."""

    symbol: str
    period: str
    bar: str
    bar_seconds: int
    start: datetime
    end: datetime
    truncated: bool
    bars: list[PriceBar]


def price_bars_list(
    *, instrument: Instrument, period: str, bar: str | None = None, end: datetime | None = None
) -> PriceBars:
    """Return an instrument's ticks in `period` up to `end` as bars of size `bar` (chosen when None).

    Bars start at whole multiples of their size since the epoch (UTC), so a bar keeps its place as
    the window moves; the last bar is the one `end` falls in. A fixed range holds
    ceil(range / bar) bars and is refused when that is more than `MAX_BARS`; `all` starts at the
    oldest tick and is cut to the newest `MAX_BARS` bars (`truncated`). Without `bar`, the
    smallest size that needs no cut is taken.
    """
    if period not in BAR_RANGES:
        raise ValidationFailed("invalid_range", f"'range' must be one of {', '.join(BAR_RANGES)}.", field="range")
    if bar is not None and bar not in BAR_SIZES:
        raise ValidationFailed("invalid_bar", f"'bar' must be one of {', '.join(BAR_SIZES)}.", field="bar")
    end = end or timezone.now()
    ticks = PriceTick.objects.filter(instrument=instrument, at__lte=end)
    span = BAR_RANGES[period]
    if span is None:
        oldest = ticks.aggregate(oldest=Min("at"))["oldest"] or end

        def first_bucket(size: int) -> int:
            return math.floor(oldest.timestamp() / size)
    else:

        def first_bucket(size: int) -> int:
            return math.floor(end.timestamp() / size) - math.ceil(span / size) + 1

    def bars_needed(size: int) -> int:
        return math.floor(end.timestamp() / size) - first_bucket(size) + 1

    if bar is None:
        bar = next(
            (name for name, size in BAR_SIZES.items() if bars_needed(size) <= MAX_BARS), next(reversed(BAR_SIZES))
        )
    size = BAR_SIZES[bar]
    first, truncated = first_bucket(size), False
    if bars_needed(size) > MAX_BARS:
        if span is not None:
            raise ValidationFailed(
                "too_many_bars",
                f"Range {period} in {bar} bars would be more than {MAX_BARS} bars; choose a larger bar.",
                field="bar",
                max_bars=MAX_BARS,
            )
        first, truncated = math.floor(end.timestamp() / size) - MAX_BARS + 1, True
    start = datetime.fromtimestamp(first * size, tz=dt_timezone.utc)
    rows = _bar_rows(ticks.filter(at__gte=start), size)
    bars = [
        PriceBar(
            start=datetime.fromtimestamp(row["bucket"] * size, tz=dt_timezone.utc),
            open=_price(row["open"]),
            high=_price(row["high"]),
            low=_price(row["low"]),
            close=_price(row["close"]),
            volume=int(row["volume"]),
            ticks=int(row["ticks"]),
        )
        for row in rows
    ]
    return PriceBars(
        symbol=instrument.symbol,
        period=period,
        bar=bar,
        bar_seconds=size,
        start=start,
        end=end,
        truncated=truncated,
        bars=bars,
    )


def _bar_rows(ticks: QuerySet[PriceTick], size: int) -> list[dict[str, Any]]:
    """Aggregate ticks into one row per bucket of `size` seconds, in the database."""
    bucket = EpochBucket("at", size=size)

    def over(expression, order_by=None):
        return Window(expression, partition_by=[bucket], order_by=order_by)

    rows = (
        ticks.order_by()
        .annotate(
            bucket=bucket,
            open=over(FirstValue("price"), [F("at").asc(), F("id").asc()]),
            close=over(FirstValue("price"), [F("at").desc(), F("id").desc()]),
            high=over(Max("price")),
            low=over(Min("price")),
            volume_sum=over(Sum("volume")),
            ticks=over(Count("id")),
        )
        .values("bucket", "open", "close", "high", "low", "volume_sum", "ticks")
        .distinct()
    )
    return sorted(({**row, "volume": row["volume_sum"]} for row in rows), key=lambda row: row["bucket"])


def _price(value: Any) -> Decimal:
    """Return a stored price as the Decimal of the price field's precision (SQLite hands back floats)."""
    return Decimal(str(value)).quantize(PRICE_QUANTUM)
