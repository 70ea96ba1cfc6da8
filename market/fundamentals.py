"""The fundamental analysis: a company's stored figures scored (their import: `market.figures`).

A metric is scored against two thresholds, one that counts as good and one that counts as bad;
P/E and P/B are also compared with the median of the other instruments. Every figure the
analysis uses must be stored: a missing one refuses the analysis by name, it is never guessed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from core.exceptions import ValidationFailed
from portfolio.models import Instrument

from .conf import market_setting
from .models import FIGURE_DIGITS, Fundamentals
from .reasons import analysis_reason
from .records import decimal_or_none, figure_clean, parameters_object

FOUR_PLACES = Decimal("0.0001")
FIGURE_LIMIT = Decimal(10) ** (FIGURE_DIGITS["max_digits"] - FIGURE_DIGITS["decimal_places"])


@dataclass(frozen=True)
class Metric:
    name: str
    lower_is_better: bool
    # Lowest and highest value a source may report; beyond them the figure is refused as an error.
    low: Decimal
    high: Decimal
    # A value at or below zero is a loss (P/E) or negative equity (P/B): bad whatever the thresholds.
    positive_only: bool = False


METRICS = {
    metric.name: metric
    for metric in (
        Metric("pe_ratio", True, -FIGURE_LIMIT + 1, FIGURE_LIMIT - 1, positive_only=True),
        Metric("pb_ratio", True, -FIGURE_LIMIT + 1, FIGURE_LIMIT - 1, positive_only=True),
        Metric("dividend_yield", False, Decimal(0), Decimal(100)),
        Metric("roe", False, Decimal(-10000), Decimal(10000)),
        Metric("debt_to_equity", True, Decimal(0), Decimal(10000)),
        Metric("eps_growth", False, Decimal(-100000), Decimal(100000)),
        # Revenue cannot fall by more than all of it.
        Metric("revenue_growth", False, Decimal(-100), Decimal(100000)),
    )
}
# Metrics compared with the median of the other instruments' latest figures.
PEER_METRICS = ("pe_ratio", "pb_ratio")
# Stored and reported for context, not scored.
CONTEXT_FIGURES = {"eps": (-FIGURE_LIMIT + 1, FIGURE_LIMIT - 1), "market_cap": (Decimal(1), Decimal(10) ** 20 - 1)}
# A peer verdict needs the value this share below (good) or above (bad) the peers' median.
PEER_MARGIN = Decimal("0.2")
# Net votes (positive minus negative) as a share of all checks that make a buy or a sell.
DECISION_SHARE = Decimal("0.25")
# Confidence falls linearly from full at `fresh_days` to this floor at `stale_days` and beyond.
STALE_FLOOR = Decimal("0.25")
# name: (lowest, highest, default)
PARAMETER_DAYS = {"fresh_days": (1, 3650, 120), "stale_days": (2, 7300, 400), "min_peers": (1, 100, 2)}
PARAMETER_NAMES = ("metrics", "thresholds", *PARAMETER_DAYS)


def fundamental_parameters_clean(*, parameters: Any) -> dict[str, Any]:
    """Return the fundamental analysis parameters with defaults filled in; refuse unknown or bad ones.

    `metrics`: the metrics to score (default all); `thresholds`: per metric `{good, bad}` overriding
    the configured ones; `fresh_days`, `stale_days`: data age of full and of floor confidence;
    `min_peers`: other instruments needed for a peer comparison.
    """
    parameters = parameters_object(parameters, PARAMETER_NAMES)
    metrics = parameters.get("metrics", list(METRICS))
    if (
        not isinstance(metrics, list)
        or not metrics
        or not all(isinstance(name, str) and name in METRICS for name in metrics)
        or len(set(metrics)) != len(metrics)
    ):
        raise ValidationFailed(
            "validation_error",
            f"'metrics' must be a non-empty list of distinct names from {', '.join(METRICS)}.",
            field="parameters.metrics",
        )
    cleaned: dict[str, Any] = {"metrics": [name for name in METRICS if name in metrics]}
    cleaned["thresholds"] = _thresholds_clean(parameters.get("thresholds", {}))
    for name, (low, high, default) in PARAMETER_DAYS.items():
        value = parameters.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationFailed(
                "validation_error", f"'{name}' must be an integer from {low} to {high}.", field=f"parameters.{name}"
            )
        cleaned[name] = value
    if cleaned["fresh_days"] >= cleaned["stale_days"]:
        raise ValidationFailed(
            "validation_error", "'fresh_days' must be smaller than 'stale_days'.", field="parameters.fresh_days"
        )
    return cleaned


def _thresholds_clean(overrides: Any) -> dict[str, dict[str, str]]:
    """Return every metric's thresholds, overrides applied, as decimal strings (the parameters are stored as JSON)."""
    if not isinstance(overrides, dict) or not set(overrides) <= set(METRICS):
        raise ValidationFailed(
            "validation_error",
            f"'thresholds' must be an object keyed by metric ({', '.join(METRICS)}).",
            field="parameters.thresholds",
        )
    configured = market_setting("FUNDAMENTAL_THRESHOLDS")
    thresholds = {}
    for name, metric in METRICS.items():
        given = overrides.get(name, {})
        field = f"parameters.thresholds.{name}"
        if not isinstance(given, dict) or not set(given) <= {"good", "bad"}:
            raise ValidationFailed(
                "validation_error", f"'{name}' thresholds must be an object with good and bad.", field=field
            )
        pair = {}
        for key in ("good", "bad"):
            value = figure_clean(
                given.get(key, configured[name][key]), field=f"{field}.{key}", low=metric.low, high=metric.high
            )
            if value is None:
                raise ValidationFailed("validation_error", f"'{field}.{key}' must be a number.", field=f"{field}.{key}")
            pair[key] = value
        ordered = pair["good"] < pair["bad"] if metric.lower_is_better else pair["good"] > pair["bad"]
        if not ordered:
            relation = "below" if metric.lower_is_better else "above"
            raise ValidationFailed(
                "validation_error", f"The good {name} threshold must lie {relation} the bad one.", field=field
            )
        thresholds[name] = {key: str(value) for key, value in pair.items()}
    return thresholds


def metric_verdict(*, metric: str, value: Decimal, good: Decimal, bad: Decimal) -> str:
    """Return "positive", "neutral" or "negative" for a value; meeting a threshold counts as reaching it."""
    spec = METRICS[metric]
    if spec.positive_only and value <= 0:
        return "negative"
    if spec.lower_is_better:
        return "positive" if value <= good else "negative" if value >= bad else "neutral"
    return "positive" if value >= good else "negative" if value <= bad else "neutral"


def peer_verdict(*, value: Decimal, median: Decimal) -> str:
    """Return the verdict of a lower-is-better value against the peers' median."""
    if value <= 0 or median <= 0:
        return "negative" if value <= 0 else "neutral"
    if value <= median * (1 - PEER_MARGIN):
        return "positive"
    if value >= median * (1 + PEER_MARGIN):
        return "negative"
    return "neutral"


def freshness(*, age_days: int, fresh_days: int, stale_days: int) -> Decimal:
    """Return the confidence factor of data `age_days` old: 1 while fresh, falling to the floor when stale."""
    if age_days <= fresh_days:
        return Decimal(1)
    if age_days >= stale_days:
        return STALE_FLOOR
    fallen = Decimal(age_days - fresh_days) / Decimal(stale_days - fresh_days)
    return (1 - fallen * (1 - STALE_FLOOR)).quantize(FOUR_PLACES)


def fundamentals_missing(*, fundamentals: Fundamentals | None, metrics: list[str]) -> list[str]:
    """Return the metrics an analysis needs that the stored figures lack."""
    if fundamentals is None:
        return list(metrics)
    return [name for name in metrics if getattr(fundamentals, name) is None]


def fundamentals_latest(*, instrument: Instrument) -> Fundamentals | None:
    return Fundamentals.objects.filter(instrument=instrument).order_by("-as_of").first()


def fundamentals_peers(*, instrument: Instrument) -> dict[str, list[Decimal]]:
    """Return the latest P/E and P/B of every other instrument that has them, by metric."""
    newest = Fundamentals.objects.filter(instrument=OuterRef("instrument")).order_by("-as_of").values("id")[:1]
    latest = Fundamentals.objects.filter(id=Subquery(newest)).exclude(instrument=instrument)
    rows = list(latest.values(*PEER_METRICS))
    return {name: [row[name] for row in rows if row[name] is not None and row[name] > 0] for name in PEER_METRICS}


def fundamental_analysis_check(*, instrument: Instrument, parameters: dict[str, Any]) -> None:
    """Refuse an analysis whose metrics are not all stored, naming the missing ones."""
    fundamentals = fundamentals_latest(instrument=instrument)
    missing = fundamentals_missing(fundamentals=fundamentals, metrics=parameters["metrics"])
    if missing:
        where = f"in its figures of {fundamentals.as_of} ({fundamentals.source})" if fundamentals else "at all"
        raise ValidationFailed(
            "missing_data",
            f"{instrument.symbol} lacks {', '.join(missing)} {where}. Import them (manage.py import_fundamentals, "
            "load_alpha_vantage) or leave them out with parameters.metrics.",
            missing=missing,
            as_of=fundamentals.as_of.isoformat() if fundamentals else None,
        )


def fundamental_analysis_compute(
    *, fundamentals: Fundamentals, peers: dict[str, list[Decimal]], parameters: dict[str, Any], today: date
) -> tuple[dict[str, Any], Decimal, str]:
    """Return the scored metrics, confidence score and recommendation of a company's figures.

    Each metric votes +1 (positive), 0 or -1 against its thresholds, and P/E and P/B vote once
    more against the peers' median when at least `min_peers` others have one. Net votes of at
    least a quarter of all votes make a buy (at most minus a quarter a sell), anything else a
    hold. The confidence is the share of votes agreeing with the recommendation times the
    freshness of the figures.
    """
    missing = fundamentals_missing(fundamentals=fundamentals, metrics=parameters["metrics"])
    if missing:
        raise ValueError(f"missing metrics: {', '.join(missing)}")
    votes = {"positive": 1, "neutral": 0, "negative": -1}
    rows, cast, reasons = [], [], []
    for name in parameters["metrics"]:
        value = getattr(fundamentals, name)
        pair = {key: Decimal(value) for key, value in parameters["thresholds"][name].items()}
        verdict = metric_verdict(metric=name, value=value, good=pair["good"], bad=pair["bad"])
        cast.append(votes[verdict])
        better = "lower" if METRICS[name].lower_is_better else "higher"
        reasons.append(
            analysis_reason(
                f"metric_{verdict}_{better}",
                votes[verdict],
                metric=name,
                value=value,
                good=pair["good"],
                bad=pair["bad"],
            )
        )
        row: dict[str, Any] = {
            "metric": name,
            "value": value,
            "good": pair["good"],
            "bad": pair["bad"],
            "better": better,
            "verdict": verdict,
            "peers": None,
        }
        others = peers.get(name, [])
        if name in PEER_METRICS and len(others) >= parameters["min_peers"]:
            median = Decimal(statistics.median(others)).quantize(FOUR_PLACES)
            relative = peer_verdict(value=value, median=median)
            cast.append(votes[relative])
            row["peers"] = {"median": median, "count": len(others), "verdict": relative}
            reasons.append(
                analysis_reason(
                    f"peers_{relative}", votes[relative], metric=name, value=value, median=median, count=len(others)
                )
            )
        rows.append(row)
    score = sum(cast)
    share = Decimal(score) / len(cast)
    recommendation = "buy" if share >= DECISION_SHARE else "sell" if share <= -DECISION_SHARE else "hold"
    agreeing_vote = {"buy": 1, "sell": -1, "hold": 0}[recommendation]
    agreeing = sum(1 for vote in cast if vote == agreeing_vote)
    age_days = max(0, (today - fundamentals.as_of).days)
    fresh = freshness(age_days=age_days, fresh_days=parameters["fresh_days"], stale_days=parameters["stale_days"])
    confidence = (Decimal(agreeing) / len(cast) * fresh).quantize(FOUR_PLACES)
    result = {
        "metrics": rows,
        "votes": {verdict: cast.count(vote) for verdict, vote in votes.items()},
        "score": score,
        "checks": len(cast),
        "agreeing": agreeing,
        "as_of": fundamentals.as_of.isoformat(),
        "source": fundamentals.source,
        "data_age_days": age_days,
        "freshness": fresh,
        "currency": fundamentals.currency,
        "context": {"eps": fundamentals.eps, "market_cap": fundamentals.market_cap},
        "reasons": [
            *reasons,
            analysis_reason(
                "data_age",
                None,
                as_of=fundamentals.as_of.isoformat(),
                days=age_days,
                source=fundamentals.source,
                freshness=fresh,
            ),
            analysis_reason(
                f"fundamental_{recommendation}",
                None,
                score=score,
                checks=len(cast),
                agreeing=agreeing,
                share_percent=(DECISION_SHARE * 100).normalize(),
            ),
        ],
        "parameters": {
            "metrics": list(parameters["metrics"]),
            "thresholds": {name: parameters["thresholds"][name] for name in parameters["metrics"]},
            "fresh_days": parameters["fresh_days"],
            "stale_days": parameters["stale_days"],
            "min_peers": parameters["min_peers"],
        },
    }
    return result, confidence, recommendation


def fundamental_result_restore(result: dict[str, Any]) -> dict[str, Any]:
    """Return a stored fundamental result with its figures as Decimals again (JSON keeps them as strings)."""
    restored = dict(result)
    restored["metrics"] = [
        {
            **row,
            **{key: decimal_or_none(row.get(key)) for key in ("value", "good", "bad")},
            "peers": row["peers"] and {**row["peers"], "median": decimal_or_none(row["peers"]["median"])},
        }
        for row in result.get("metrics", [])
    ]
    restored["freshness"] = decimal_or_none(result.get("freshness"))
    restored["context"] = {key: decimal_or_none(value) for key, value in result.get("context", {}).items()}
    return restored


def fundamental_analysis_run(
    *, instrument: Instrument, parameters: dict[str, Any]
) -> tuple[dict[str, Any], Decimal, str]:
    """Score the instrument's latest stored figures."""
    fundamentals = fundamentals_latest(instrument=instrument)
    if fundamentals is None:
        raise ValueError(f"{instrument.symbol} has no fundamentals")
    return fundamental_analysis_compute(
        fundamentals=fundamentals,
        peers=fundamentals_peers(instrument=instrument),
        parameters=parameters,
        today=timezone.localdate(),
    )
