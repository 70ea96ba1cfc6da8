"""Writes of prices: ticks with their consequences, the feed's state, the pruning of old ticks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.exceptions import ValidationFailed
from core.numbers import Digits, decimal_validate
from portfolio.models import Instrument

from . import signals
from .alerts import alert_rules_evaluate
from .conf import market_setting
from .models import FeedState, PriceTick
from .providers import Tick

logger = logging.getLogger(__name__)

TICK_PRICE = Digits.of(PriceTick, "price")


def price_tick_record(*, instrument: Instrument, price: Decimal, volume: int, at: datetime, source: str) -> PriceTick:
    """Store a tick, move the instrument's last price, fire alerts, then send `price_ticked`.

    The tick, the new last price, the alert states and their events commit together. What other
    apps do at a new price (resting orders, portfolio values) runs afterwards, as receivers of
    `price_ticked`, each in its own transactions, so a failure there never loses a price.
    """
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        raise ValidationFailed("validation_error", f"A price must be a positive Decimal; got {price!r}.")
    price = decimal_validate(price, digits=TICK_PRICE, field="price")
    if isinstance(volume, bool) or not isinstance(volume, int) or volume < 0:
        raise ValidationFailed("validation_error", f"A volume must be a non-negative integer; got {volume!r}.")
    with transaction.atomic():
        locked = Instrument.objects.select_for_update().get(pk=instrument.pk)
        tick = PriceTick.objects.create(
            instrument=locked,
            price=price,
            previous_price=locked.last_price or price,
            volume=volume,
            source=source,
            at=at,
        )
        locked.last_price = price
        locked.last_price_at = at
        locked.save(update_fields=["last_price", "last_price_at"])
        signals.tick_recorded.send(PriceTick, tick=tick)
        alert_rules_evaluate(tick=tick)
    instrument.last_price, instrument.last_price_at = price, at
    for receiver, outcome in signals.price_ticked.send_robust(PriceTick, instrument=locked, price=price, tick=tick):
        if isinstance(outcome, Exception):  # Django has logged it with its traceback
            logger.error("%s after a %s tick at %s failed", receiver.__qualname__, locked.symbol, price)
    return tick


def price_ticks_record(*, ticks: Iterable[Tick], source: str) -> tuple[list[PriceTick], list[str]]:
    """Record a round of a provider's ticks in order; return them and the symbols no instrument has."""
    ticks = list(ticks)
    by_symbol = {i.symbol: i for i in Instrument.objects.filter(symbol__in={tick.symbol for tick in ticks})}
    recorded, unknown = [], []
    for tick in ticks:
        instrument = by_symbol.get(tick.symbol)
        if instrument is None:
            logger.warning("provider %s sent a tick for unknown symbol %r", source, tick.symbol)
            unknown.append(tick.symbol)
            continue
        recorded.append(
            price_tick_record(instrument=instrument, price=tick.price, volume=tick.volume, at=tick.at, source=source)
        )
    for instrument in {tick.instrument_id: tick.instrument for tick in recorded}.values():
        price_history_prune(instrument=instrument)
    return recorded, unknown


def feed_state_save(*, name: str, report: dict[str, Any]) -> None:
    """Store what the feed reports about itself (see `PriceFeed.report`)."""
    fields = {
        key: report[key]
        for key in (
            "provider",
            "running",
            "symbol_problems",
            "last_answer_at",
            "retry_at",
            "interval_seconds",
            "stale_after_seconds",
        )
    }
    FeedState.objects.update_or_create(
        name=name, defaults={**fields, "reason": report["reason"] or "", "updated_at": timezone.now()}
    )


def price_history_prune(*, instrument: Instrument, keep: int | None = None) -> int:
    """Delete all but the newest `keep` ticks of an instrument; return how many went."""
    keep = market_setting("HISTORY_LIMIT") if keep is None else keep
    stale = list(
        PriceTick.objects.filter(instrument=instrument).order_by("-at", "-id").values_list("id", flat=True)[keep:]
    )
    if not stale:
        return 0
    deleted, _ = PriceTick.objects.filter(id__in=stale).delete()
    return deleted
