"""The `portfolio.*` events, each built once with the spec's exact fields.

Receivers of `portfolio.signals`, connected in `PortfolioConfig.ready()`. Each publishes on
commit and only to the portfolio's members.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from realtime.api import send_event_on_commit
from core.times import utc_now_iso

from .models import Instrument, Portfolio
from .selectors import money, percent
from .services import portfolios_revalue


def position_changed_publish(
    *,
    portfolio: Portfolio,
    instrument: Instrument,
    action: str,
    previous_quantity: Decimal,
    quantity: Decimal,
    price: Decimal,
    member_ids: list[int],
    correlation_id: str | None = None,
    **kwargs: Any,
) -> None:
    change = quantity - previous_quantity
    send_event_on_commit(
        "portfolio.position_changed",
        {
            "portfolio_id": str(portfolio.pk),
            "symbol": instrument.symbol,
            "isin": instrument.isin,
            "action": action,
            "quantity": quantity,
            "price": price,
            "value": money(quantity * price),
            "change": change,
            "change_percent": percent(change, previous_quantity),
            "timestamp": utc_now_iso(),
        },
        audience=member_ids,
        correlation_id=correlation_id,
    )


def value_changed_publish(
    *,
    portfolio: Portfolio,
    previous: Decimal,
    current: Decimal,
    trigger_reason: str,
    member_ids: list[int],
    correlation_id: str | None = None,
    **kwargs: Any,
) -> None:
    change = current - previous
    send_event_on_commit(
        "portfolio.value_changed",
        {
            "portfolio_id": str(portfolio.pk),
            "previous_value": previous,
            "current_value": current,
            "change": change,
            "change_percent": percent(change, previous),
            "trigger_reason": trigger_reason,
            "timestamp": utc_now_iso(),
        },
        audience=member_ids,
        correlation_id=correlation_id,
    )


def portfolio_updated_publish(
    *, snapshot: dict[str, Any], member_ids: list[int], correlation_id: str | None = None, **kwargs: Any
) -> None:
    send_event_on_commit("portfolio.update", snapshot, audience=member_ids, correlation_id=correlation_id)


def price_ticked_revalue(*, instrument: Instrument, **kwargs: Any) -> None:
    """Revalue the portfolios holding an instrument whose price ticked (`market.signals.price_ticked`).

    Connected by `TradingConfig.ready()`, after the execution of resting orders: see there.
    """
    portfolios_revalue(instrument=instrument, trigger_reason="price_update")
