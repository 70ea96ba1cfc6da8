"""Reads of market data: price history, latest recommendations, alert rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, Subquery

from portfolio.models import Instrument
from realtime.protocol import isoformat

from .fundamentals import fundamental_result_restore
from .models import AlertRule, Analysis, FeedState, PriceTick
from .sentiment import sentiment_result_restore


def price_history_list(*, symbol: str, limit: int = 500) -> list[PriceTick]:
    """Return the newest `limit` ticks of an instrument, oldest first."""
    ticks = list(PriceTick.objects.filter(instrument__symbol=symbol).select_related("instrument").order_by("-at", "-id")[:limit])
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
    newest = complete.filter(instrument=OuterRef("instrument")).order_by("-completed_at", "-created_at").values("id")[:1]
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
        "armed": rule.armed,
        "trigger_count": rule.trigger_count,
        "last_triggered_at": isoformat(rule.last_triggered_at) if rule.last_triggered_at else None,
        "created_at": isoformat(rule.created_at),
    }
