"""Alert rules: created and deleted by their owners, evaluated on every tick."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core.exceptions import NotFound, ValidationFailed
from core.numbers import Digits, decimal_from_input, decimal_validate
from core.times import isoformat

from . import indicators, signals
from .conf import market_setting
from .models import AlertRule, PriceTick
from .selectors import instrument_for_symbol

FOUR_PLACES = Decimal("0.0001")
ALERT_TYPES = {
    AlertRule.Condition.ABOVE: "price_threshold",
    AlertRule.Condition.BELOW: "price_threshold",
    AlertRule.Condition.CHANGE_PERCENT: "price_change",
    AlertRule.Condition.VOLUME_SPIKE: "volume_spike",
    AlertRule.Condition.VOLATILITY: "volatility",
}
THRESHOLD = Digits.of(AlertRule, "threshold")
THRESHOLD_LIMITS = {
    AlertRule.Condition.ABOVE: (Decimal("0.0001"), Decimal("100000000")),
    AlertRule.Condition.BELOW: (Decimal("0.0001"), Decimal("100000000")),
    AlertRule.Condition.CHANGE_PERCENT: (Decimal("0.0001"), Decimal("1000")),
    AlertRule.Condition.VOLUME_SPIKE: (Decimal("1.0001"), Decimal("1000")),
    AlertRule.Condition.VOLATILITY: (Decimal("0.0001"), Decimal("100")),
}
# Ticks a volatility rule may measure over (its `window`).
VOLATILITY_WINDOW_LIMITS = (2, 500)


def alert_rule_create(
    *, user: AbstractBaseUser, symbol: Any, condition: Any, threshold: Any, window: Any = None
) -> AlertRule:
    """Store an alert rule of `user`, armed; refuse unknown symbols and thresholds out of range.

    `window` is the number of ticks a `volatility` rule measures over (None: the setting's).
    """
    instrument = instrument_for_symbol(symbol=symbol)
    if condition not in AlertRule.Condition.values:
        raise ValidationFailed(
            "validation_error",
            f"'condition' must be one of {', '.join(AlertRule.Condition.values)}.",
            field="condition",
        )
    value = decimal_from_input(threshold)
    if value is None:
        raise ValidationFailed("validation_error", "'threshold' must be a number.", field="threshold")
    value = decimal_validate(value, digits=THRESHOLD, field="threshold")
    low, high = THRESHOLD_LIMITS[AlertRule.Condition(condition)]
    if not low <= value <= high:
        raise ValidationFailed(
            "validation_error",
            f"'threshold' of a {condition} alert must lie between {low} and {high}.",
            field="threshold",
        )
    if window is not None:
        low_window, high_window = VOLATILITY_WINDOW_LIMITS
        if condition != AlertRule.Condition.VOLATILITY:
            raise ValidationFailed("validation_error", "'window' belongs to a volatility alert only.", field="window")
        if isinstance(window, bool) or not isinstance(window, int) or not low_window <= window <= high_window:
            raise ValidationFailed(
                "validation_error",
                f"'window' must be a whole number of ticks from {low_window} to {high_window}.",
                field="window",
            )
    with transaction.atomic():
        # Lock the user's rules so two concurrent requests cannot both pass the limit.
        existing = list(AlertRule.objects.select_for_update().filter(user=user).values_list("id", flat=True))
        limit = market_setting("ALERT_RULES_PER_USER")
        if len(existing) >= limit:
            raise ValidationFailed("too_many_alerts", f"You already have {limit} alert rules; remove one first.")
        return AlertRule.objects.create(
            user=user,
            instrument=instrument,
            condition=condition,
            threshold=value,
            window=window,
            reference_price=instrument.last_price if condition == AlertRule.Condition.CHANGE_PERCENT else None,
        )


def alert_rule_delete(*, user: AbstractBaseUser, alert_id: Any) -> None:
    """Delete one of the user's alert rules."""
    if isinstance(alert_id, bool) or not isinstance(alert_id, int):
        raise ValidationFailed("validation_error", "'alert_id' must be an integer.", field="alert_id")
    deleted, _ = AlertRule.objects.filter(user=user, id=alert_id).delete()
    if not deleted:
        raise NotFound("not_found", f"You have no alert rule {alert_id}.")


def alert_rules_evaluate(*, tick: PriceTick) -> list[AlertRule]:
    """Fire the armed rules a tick meets and re-arm those whose condition no longer holds.

    Runs inside the tick's transaction; each firing sends `alert_fired` (published as one
    `market.alert` to the rule's owner after the commit). Return the rules that fired.
    """
    rules = list(AlertRule.objects.select_for_update().filter(instrument_id=tick.instrument_id).order_by("id"))
    if not rules:
        return []
    baseline = None
    if any(rule.condition == AlertRule.Condition.VOLUME_SPIKE for rule in rules):
        baseline = _volume_baseline(tick=tick)
    windows = [_volatility_window(rule) for rule in rules if rule.condition == AlertRule.Condition.VOLATILITY]
    prices = _recent_prices(tick=tick, count=max(windows) + 1) if windows else []
    fired = []
    for rule in rules:
        measured = _alert_measure(rule=rule, tick=tick, volume_baseline=baseline, prices=prices)
        if measured is None:
            continue
        holds = (
            measured <= rule.threshold if rule.condition == AlertRule.Condition.BELOW else measured >= rule.threshold
        )
        if holds and rule.armed:
            rule.armed = False
            rule.trigger_count += 1
            rule.last_triggered_at = tick.at
            rule.save(update_fields=["armed", "trigger_count", "last_triggered_at"])
            signals.alert_fired.send(AlertRule, rule=rule, tick=tick, measured=measured)
            fired.append(rule)
        elif not holds and not rule.armed:
            rule.armed = True
            rule.save(update_fields=["armed"])
    return fired


def _volume_baseline(*, tick: PriceTick) -> Decimal | None:
    count = market_setting("VOLUME_BASELINE_TICKS")
    earlier = (
        PriceTick.objects.filter(instrument_id=tick.instrument_id)
        .exclude(id=tick.id)
        .order_by("-at", "-id")
        .values_list("volume", flat=True)[:count]
    )
    volumes = list(earlier)
    if not volumes or sum(volumes) == 0:
        return None
    return Decimal(sum(volumes)) / len(volumes)


def _volatility_window(rule: AlertRule) -> int:
    return rule.window or market_setting("VOLATILITY_WINDOW_TICKS")


def _recent_prices(*, tick: PriceTick, count: int) -> list[Decimal]:
    """Return the prices of the instrument's last `count` ticks up to `tick`, oldest first."""
    newest = (
        PriceTick.objects.filter(instrument_id=tick.instrument_id)
        .order_by("-at", "-id")
        .values_list("price", flat=True)[:count]
    )
    return list(reversed(newest))


def _alert_measure(
    *, rule: AlertRule, tick: PriceTick, volume_baseline: Decimal | None, prices: list[Decimal]
) -> Decimal | None:
    if rule.condition == AlertRule.Condition.VOLATILITY:
        # Realised volatility: the sample deviation of the last `window` tick returns, in
        # percent, as the technical analysis computes it; None until that much history exists.
        measured = indicators.volatility(prices, _volatility_window(rule))
        return measured.quantize(FOUR_PLACES) if measured is not None else None
    if rule.condition in (AlertRule.Condition.ABOVE, AlertRule.Condition.BELOW):
        return tick.price
    if rule.condition == AlertRule.Condition.CHANGE_PERCENT:
        if not rule.reference_price:
            return None
        return (abs(tick.price / rule.reference_price - 1) * 100).quantize(FOUR_PLACES)
    if volume_baseline is None:
        return None
    return (Decimal(tick.volume) / volume_baseline).quantize(FOUR_PLACES)


def alert_data(*, rule: AlertRule, tick: PriceTick, measured: Decimal) -> dict[str, Any]:
    """Return the `market.alert` data of a firing: what was measured, in words, and how severe it is."""
    symbol = tick.instrument.symbol
    condition = AlertRule.Condition(rule.condition)
    if condition == AlertRule.Condition.ABOVE:
        message, severity = f"{symbol} is at {tick.price}, at or above {rule.threshold}.", "warning"
    elif condition == AlertRule.Condition.BELOW:
        message, severity = f"{symbol} is at {tick.price}, at or below {rule.threshold}.", "warning"
    elif condition == AlertRule.Condition.CHANGE_PERCENT:
        message = f"{symbol} moved {measured} % from {rule.reference_price} to {tick.price}."
        severity = "critical" if measured >= 2 * rule.threshold else "warning"
    elif condition == AlertRule.Condition.VOLATILITY:
        window = _volatility_window(rule)
        message = f"{symbol}: realised volatility {measured} % over the last {window} ticks, now at {tick.price}."
        severity = "critical" if measured >= 2 * rule.threshold else "warning"
    else:
        message = f"{symbol} traded {tick.volume}, {measured} times its recent average volume."
        severity = "warning" if measured >= 2 * rule.threshold else "info"
    return {
        "alert_type": ALERT_TYPES[condition],
        "symbol": symbol,
        "message": message,
        "severity": severity,
        "trigger_value": measured,
        "current_value": tick.price,
        "threshold": rule.threshold,
        "timestamp": isoformat(tick.at),
    }
