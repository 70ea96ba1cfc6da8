"""The market's events, each built once with the spec's exact fields from `market.signals`.

Receivers connected in `MarketConfig.ready()`; each publishes on commit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from realtime.api import send_event_on_commit, user_group
from core.times import isoformat

from .alerts import alert_data
from .models import AlertRule, Analysis, PriceTick


def on_tick_grid(value: Decimal) -> Decimal:
    """Return `value` with two decimals if it has no more (the database pads prices to four)."""
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value


def price_update_data(*, tick: PriceTick) -> dict[str, Any]:
    """Return the `market.price_update` data of a stored tick."""
    instrument = tick.instrument
    return {
        "symbol": instrument.symbol,
        "isin": instrument.isin,
        "price": on_tick_grid(tick.price),
        "previous_price": on_tick_grid(tick.previous_price),
        "change": on_tick_grid(tick.change),
        "change_percent": tick.change_percent,
        "volume": int(tick.volume),
        "timestamp": isoformat(tick.at),
        "source": tick.source,
    }


def price_update_publish(*, tick: PriceTick, **kwargs: Any) -> None:
    """Publish a tick to the subscribers of `market.price_update`."""
    send_event_on_commit("market.price_update", price_update_data(tick=tick))


def alert_publish(*, rule: AlertRule, tick: PriceTick, measured: Decimal, **kwargs: Any) -> None:
    """Publish a firing to the rule's owner alone."""
    send_event_on_commit(
        "market.alert",
        alert_data(rule=rule, tick=tick, measured=measured),
        group=user_group(rule.user_id),
        audience=[rule.user_id],
    )


def analysis_complete_data(*, analysis: Analysis, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "analysis_id": str(analysis.id),
        "analysis_type": analysis.analysis_type,
        "symbol": analysis.instrument.symbol,
        "result": result,
        "confidence_score": analysis.confidence_score,
        "recommendation": analysis.recommendation,
        "completed_at": isoformat(analysis.completed_at),
    }


def analysis_complete_publish(*, analysis: Analysis, result: dict[str, Any], **kwargs: Any) -> None:
    """Publish a completed analysis to the user who asked for it, if anyone did."""
    if analysis.requested_by_id is not None:
        send_event_on_commit(
            "analysis.complete",
            analysis_complete_data(analysis=analysis, result=result),
            group=user_group(analysis.requested_by_id),
            audience=[analysis.requested_by_id],
        )
