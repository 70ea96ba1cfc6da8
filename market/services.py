"""Writes of market data: ticks and their consequences, analyses, alert rules, the demo history."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.exceptions import NotFound, RateLimited, ValidationFailed
from core.numbers import Digits, decimal_from_input, decimal_validate
from portfolio.models import Instrument
from realtime.api import send_event_on_commit, user_group
from core.times import isoformat

from . import fundamentals, indicators, sentiment
from .conf import market_setting
from .models import AlertRule, Analysis, FeedState, PriceTick
from .providers import SimulatedMarket, Tick
from .reasons import analysis_reason
from .records import integer_parameters, parameters_object

logger = logging.getLogger(__name__)

FOUR_PLACES = Decimal("0.0001")
TICK_PRICE = Digits.of(PriceTick, "price")


# Ticks


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


def price_tick_record(*, instrument: Instrument, price: Decimal, volume: int, at: datetime, source: str) -> PriceTick:
    """Store a tick, move the instrument's last price, fire alerts, then let orders and portfolios follow.

    The tick, the new last price, the alert states and their events commit together. Resting
    orders and portfolio values run afterwards, each in its own transaction, so a failure there
    never loses a price.
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
        send_event_on_commit("market.price_update", price_update_data(tick=tick))
        alert_rules_evaluate(tick=tick)
    instrument.last_price, instrument.last_price_at = price, at
    tick_consequences_apply(instrument=locked, price=price)
    return tick


def tick_consequences_apply(*, instrument: Instrument, price: Decimal) -> None:
    """Execute resting orders at the new price, then revalue the portfolios holding the instrument.

    Both belong to portfolio/trading (issue 3), called through their published contract.
    """
    from portfolio.services import portfolios_revalue
    from trading.execution import resting_orders_execute

    for name, step in (
        ("resting orders", lambda: resting_orders_execute(instrument=instrument, price=price)),
        ("portfolio revaluation", lambda: portfolios_revalue(instrument=instrument, trigger_reason="price_update")),
    ):
        try:
            step()
        except Exception:
            logger.exception("%s after a %s tick at %s failed", name, instrument.symbol, price)


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
    fields = {key: report[key] for key in (
        "provider", "running", "symbol_problems", "last_answer_at", "retry_at", "interval_seconds", "stale_after_seconds"
    )}
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


DEMO_INSTRUMENTS = [
    ("SAP", "DE0007164600", "SAP SE", Decimal("215.40")),
    ("SIE", "DE0007236101", "Siemens AG", Decimal("178.90")),
    ("ALV", "DE0008404005", "Allianz SE", Decimal("287.60")),
    ("BAS", "DE000BASF111", "BASF SE", Decimal("46.35")),
    ("DTE", "DE0005557508", "Deutsche Telekom AG", Decimal("28.12")),
]


def price_history_seed(*, points: int = 240, seed: int | None = None) -> int:
    """Give every instrument at least `points` ticks of simulated history; return how many were added.

    The demo instruments are created if missing, so an analysis of SAP works right after
    `make run`. History is laid out backwards from now at the feed interval and ends at the
    instrument's current price; running it again adds nothing.
    """
    for symbol, isin, name, price in DEMO_INSTRUMENTS:
        if not Instrument.objects.filter(symbol=symbol).exists() and not Instrument.objects.filter(isin=isin).exists():
            Instrument.objects.create(symbol=symbol, isin=isin, name=name, last_price=price, last_price_at=timezone.now())
    interval = market_setting("FEED_INTERVAL")
    market = SimulatedMarket(
        interval=interval,
        volatility=market_setting("SIMULATED_VOLATILITY"),
        time_scale=market_setting("SIMULATED_TIME_SCALE"),
        seed=seed,
    )
    added = 0
    now = timezone.now()
    for instrument in Instrument.objects.all():
        have = PriceTick.objects.filter(instrument=instrument).count()
        if have >= points:
            continue
        oldest = PriceTick.objects.filter(instrument=instrument).order_by("at", "id").first()
        end_price = oldest.previous_price if oldest else (instrument.last_price or Decimal("100.00"))
        end_at = oldest.at - timedelta(seconds=interval) if oldest else now
        # Walk backwards from the known price, then store the path oldest first.
        path = [end_price]
        for _ in range(points - have):
            path.append(market.next_price(path[-1]))
        path.reverse()
        ticks = [
            PriceTick(
                instrument=instrument,
                price=price,
                previous_price=before,
                volume=market.next_volume(before, price),
                source="seed",
                at=end_at - timedelta(seconds=interval * (len(path) - 1 - index)),
            )
            for index, (before, price) in enumerate(zip(path, path[1:]), start=1)
        ]
        PriceTick.objects.bulk_create(ticks)
        if instrument.last_price is None:
            instrument.last_price, instrument.last_price_at = path[-1], end_at
            instrument.save(update_fields=["last_price", "last_price_at"])
        added += len(ticks)
    return added


# Alerts

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

    Runs inside the tick's transaction; each firing emits one `market.alert` to the rule's
    owner after the commit. Return the rules that fired.
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
        holds = measured <= rule.threshold if rule.condition == AlertRule.Condition.BELOW else measured >= rule.threshold
        if holds and rule.armed:
            rule.armed = False
            rule.trigger_count += 1
            rule.last_triggered_at = tick.at
            rule.save(update_fields=["armed", "trigger_count", "last_triggered_at"])
            send_event_on_commit(
                "market.alert",
                _alert_data(rule=rule, tick=tick, measured=measured),
                group=user_group(rule.user_id),
                audience=[rule.user_id],
            )
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


def _alert_data(*, rule: AlertRule, tick: PriceTick, measured: Decimal) -> dict[str, Any]:
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


# Analysis

ANALYSIS_TYPES = ("technical", "fundamental", "sentiment")
# name: (lowest, highest, default)
ANALYSIS_PARAMETERS = {
    "short_window": (2, 200, 20),
    "long_window": (3, 500, 50),
    "rsi_period": (2, 100, 14),
    "rsi_overbought": (50, 100, 70),
    "rsi_oversold": (0, 50, 30),
    "momentum_period": (1, 200, 10),
    "volatility_window": (2, 500, 20),
}
ANALYSIS_HISTORY_MAX = 1000


def instrument_for_symbol(*, symbol: Any) -> Instrument:
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValidationFailed("validation_error", "'symbol' must be a non-empty string.", field="symbol")
    cleaned = symbol.strip().upper()
    try:
        return Instrument.objects.get(symbol=cleaned)
    except Instrument.DoesNotExist:
        raise NotFound("not_found", f"Unknown symbol {cleaned[:16]!r}.", field="symbol") from None


def analysis_parameters_clean(*, parameters: Any) -> dict[str, int]:
    """Return the analysis parameters with defaults filled in; refuse unknown or out-of-range ones."""
    cleaned = integer_parameters(parameters_object(parameters, ANALYSIS_PARAMETERS), ANALYSIS_PARAMETERS)
    if cleaned["short_window"] >= cleaned["long_window"]:
        raise ValidationFailed(
            "validation_error", "'short_window' must be smaller than 'long_window'.", field="parameters.short_window"
        )
    if cleaned["rsi_oversold"] >= cleaned["rsi_overbought"]:
        raise ValidationFailed(
            "validation_error", "'rsi_oversold' must be below 'rsi_overbought'.", field="parameters.rsi_oversold"
        )
    return cleaned


def analysis_history_required(*, parameters: dict[str, int]) -> int:
    """Return how many prices an analysis with these parameters needs."""
    return 1 + max(
        parameters["long_window"],
        parameters["rsi_period"],
        parameters["momentum_period"],
        parameters["volatility_window"],
    )


ANALYSIS_QUOTA_WINDOW = timedelta(seconds=60)


def analysis_quota_check(*, user: AbstractBaseUser) -> None:
    """Refuse one more analysis of `user` beyond the analyses running at once or started per minute.

    The count is of the stored analyses, which every gateway process shares. Call it in the
    transaction that stores the analysis: it locks the user's row, so requests of one user
    are counted one after the other.
    """
    get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
    now = timezone.now()
    mine = Analysis.objects.filter(requested_by=user)
    running_limit = market_setting("ANALYSES_RUNNING_PER_USER")
    lost_before = now - timedelta(seconds=market_setting("ANALYSIS_LOST_AFTER"))
    running = mine.filter(status=Analysis.Status.RUNNING, created_at__gte=lost_before).count()
    if running >= running_limit:
        raise RateLimited(
            "too_many_analyses",
            f"You have {running} analyses running; at most {running_limit} may run at once. Wait for analysis.complete.",
            limit=running_limit,
            running=running,
        )
    minute_limit = market_setting("ANALYSES_PER_MINUTE_PER_USER")
    recent = mine.filter(created_at__gt=now - ANALYSIS_QUOTA_WINDOW).order_by("-created_at")
    started = list(recent.values_list("created_at", flat=True)[:minute_limit])
    if len(started) >= minute_limit:
        # The oldest of the last `minute_limit` starts leaving the window frees a place.
        retry_after = max(1, math.ceil((started[-1] + ANALYSIS_QUOTA_WINDOW - now).total_seconds()))
        raise RateLimited(
            "rate_limited",
            f"At most {minute_limit} analyses per minute; try again in {retry_after} s.",
            limit=minute_limit,
            retry_after_seconds=retry_after,
        )


@transaction.atomic
def analysis_start(*, user: AbstractBaseUser, symbol: Any, analysis_type: Any, parameters: Any) -> Analysis:
    """Check an analysis request, its data and the user's quota, and store it as running; `analysis_run` computes it."""
    instrument = instrument_for_symbol(symbol=symbol)
    if analysis_type not in ANALYSIS_TYPES:
        raise ValidationFailed(
            "validation_error",
            f"'analysis_type' must be one of {', '.join(ANALYSIS_TYPES)}.",
            field="analysis_type",
        )
    clean, check, _ = ANALYSES[analysis_type]
    cleaned = clean(parameters=parameters)
    check(instrument=instrument, parameters=cleaned)
    analysis_quota_check(user=user)
    return Analysis.objects.create(
        instrument=instrument, requested_by=user, analysis_type=analysis_type, parameters=cleaned
    )


def technical_history_check(*, instrument: Instrument, parameters: dict[str, int]) -> None:
    """Refuse a technical analysis of an instrument with fewer prices than its parameters need."""
    required = analysis_history_required(parameters=parameters)
    available = PriceTick.objects.filter(instrument=instrument).count()
    if available < required:
        raise ValidationFailed(
            "insufficient_history",
            f"{instrument.symbol} has {available} prices; this analysis needs {required}.",
            required=required,
            available=available,
        )


def technical_analysis_compute(*, prices: list[Decimal], parameters: dict[str, int]) -> tuple[dict[str, Any], Decimal, str]:
    """Return the indicator result, confidence score and recommendation for a price series.

    Three indicators vote: the moving-average trend (+1 bullish, -1 bearish), RSI (+1 at or
    below oversold, -1 at or above overbought) and momentum (+1 rising, -1 falling). A score of
    +2 or more is a buy, -2 or less a sell, anything else a hold; the confidence is the share
    of the three votes that agree with the recommendation.
    """
    p = parameters
    averages = indicators.crossover(prices, p["short_window"], p["long_window"])
    rsi = indicators.rsi(prices, p["rsi_period"])
    momentum = indicators.momentum(prices, p["momentum_period"])
    volatility = indicators.volatility(prices, p["volatility_window"])
    if averages is None or None in (rsi, momentum, volatility):
        raise ValueError("price series too short for these parameters")
    short_avg, long_avg, trend, crossed = averages
    rsi_signal = "oversold" if rsi <= p["rsi_oversold"] else "overbought" if rsi >= p["rsi_overbought"] else "neutral"
    votes = {
        "moving_average": {"bullish": 1, "bearish": -1}.get(trend, 0),
        "rsi": {"oversold": 1, "overbought": -1}.get(rsi_signal, 0),
        "momentum": (momentum > 0) - (momentum < 0),
    }
    score = sum(votes.values())
    recommendation = "buy" if score >= 2 else "sell" if score <= -2 else "hold"
    agreeing_vote = {"buy": 1, "sell": -1, "hold": 0}[recommendation]
    confidence = (Decimal(sum(1 for vote in votes.values() if vote == agreeing_vote)) / len(votes)).quantize(FOUR_PLACES)
    result = {
        "indicators": {
            "last_price": prices[-1],
            "sma_short": short_avg.quantize(FOUR_PLACES),
            "sma_long": long_avg.quantize(FOUR_PLACES),
            "rsi": rsi.quantize(FOUR_PLACES),
            "momentum_percent": momentum.quantize(FOUR_PLACES),
            "volatility_percent": volatility.quantize(FOUR_PLACES),
        },
        "signals": {
            "trend": trend,
            "crossover": crossed,
            "rsi": rsi_signal,
            "momentum": {1: "rising", -1: "falling", 0: "flat"}[votes["momentum"]],
        },
        "votes": votes,
        "score": score,
        "parameters": dict(parameters),
        "history_points": len(prices),
        # The same findings as codes with their figures, for a client to word in its language.
        "reasons": [
            analysis_reason(
                f"trend_{trend}",
                votes["moving_average"],
                sma_short=short_avg.quantize(FOUR_PLACES),
                sma_long=long_avg.quantize(FOUR_PLACES),
                short_window=p["short_window"],
                long_window=p["long_window"],
                crossed=crossed,
            ),
            analysis_reason(
                f"rsi_{rsi_signal}",
                votes["rsi"],
                rsi=rsi.quantize(FOUR_PLACES),
                oversold=p["rsi_oversold"],
                overbought=p["rsi_overbought"],
                period=p["rsi_period"],
            ),
            analysis_reason(
                f"momentum_{ {1: 'rising', -1: 'falling', 0: 'flat'}[votes['momentum']] }",
                votes["momentum"],
                momentum_percent=momentum.quantize(FOUR_PLACES),
                period=p["momentum_period"],
            ),
            analysis_reason(
                f"technical_{recommendation}", None, score=score, votes=len(votes), buy_at=2, sell_at=-2
            ),
        ],
    }
    return result, confidence, recommendation


def technical_analysis_run(*, instrument: Instrument, parameters: dict[str, int]) -> tuple[dict[str, Any], Decimal, str]:
    """Compute a technical analysis from the instrument's stored price history."""
    ticks = list(
        PriceTick.objects.filter(instrument=instrument).order_by("-at", "-id").values_list("price", "at")[:ANALYSIS_HISTORY_MAX]
    )
    ticks.reverse()
    result, confidence, recommendation = technical_analysis_compute(prices=[price for price, _ in ticks], parameters=parameters)
    result["history_from"], result["history_to"] = isoformat(ticks[0][1]), isoformat(ticks[-1][1])
    return result, confidence, recommendation


# analysis type: (clean its parameters, check its data is there, compute it)
ANALYSES = {
    "technical": (analysis_parameters_clean, technical_history_check, technical_analysis_run),
    "fundamental": (
        fundamentals.fundamental_parameters_clean,
        fundamentals.fundamental_analysis_check,
        fundamentals.fundamental_analysis_run,
    ),
    "sentiment": (
        sentiment.sentiment_parameters_clean,
        sentiment.sentiment_analysis_check,
        sentiment.sentiment_analysis_run,
    ),
}


def analysis_run(*, analysis_id: Any) -> Analysis:
    """Compute a running analysis from the stored price history, store it and emit `analysis.complete`.

    The event goes to every connection of the user who asked (their user group), whether or
    not it subscribed to `analysis.complete`: it answers their own request, and no one else's.
    """
    analysis = Analysis.objects.select_related("instrument").get(id=analysis_id, status=Analysis.Status.RUNNING)
    try:
        _, _, compute = ANALYSES[analysis.analysis_type]
        result, confidence, recommendation = compute(instrument=analysis.instrument, parameters=analysis.parameters)
    except Exception as exc:
        logger.exception("analysis %s of %s failed", analysis.id, analysis.instrument.symbol)
        Analysis.objects.filter(id=analysis.id).update(
            status=Analysis.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:500], completed_at=timezone.now()
        )
        raise
    with transaction.atomic():
        analysis.status = Analysis.Status.COMPLETE
        analysis.result = result
        analysis.confidence_score = confidence
        analysis.recommendation = recommendation
        analysis.completed_at = timezone.now()
        analysis.save(update_fields=["status", "result", "confidence_score", "recommendation", "completed_at"])
        if analysis.requested_by_id is not None:
            send_event_on_commit(
                "analysis.complete",
                analysis_complete_data(analysis=analysis, result=result),
                group=user_group(analysis.requested_by_id),
                audience=[analysis.requested_by_id],
            )
    return analysis


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
