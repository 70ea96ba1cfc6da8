"""The technical analysis: moving averages, RSI and momentum of the stored price history vote."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.exceptions import ValidationFailed
from portfolio.models import Instrument
from core.times import isoformat

from . import indicators
from .models import PriceTick
from .reasons import analysis_reason
from .records import integer_parameters, parameters_object

FOUR_PLACES = Decimal("0.0001")
# name: (lowest, highest, default)
TECHNICAL_PARAMETERS = {
    "short_window": (2, 200, 20),
    "long_window": (3, 500, 50),
    "rsi_period": (2, 100, 14),
    "rsi_overbought": (50, 100, 70),
    "rsi_oversold": (0, 50, 30),
    "momentum_period": (1, 200, 10),
    "volatility_window": (2, 500, 20),
}
TECHNICAL_HISTORY_MAX = 1000


def technical_parameters_clean(*, parameters: Any) -> dict[str, int]:
    """Return the technical analysis parameters with defaults filled in; refuse unknown or out-of-range ones."""
    cleaned = integer_parameters(parameters_object(parameters, TECHNICAL_PARAMETERS), TECHNICAL_PARAMETERS)
    if cleaned["short_window"] >= cleaned["long_window"]:
        raise ValidationFailed(
            "validation_error", "'short_window' must be smaller than 'long_window'.", field="parameters.short_window"
        )
    if cleaned["rsi_oversold"] >= cleaned["rsi_overbought"]:
        raise ValidationFailed(
            "validation_error", "'rsi_oversold' must be below 'rsi_overbought'.", field="parameters.rsi_oversold"
        )
    return cleaned


def technical_history_required(*, parameters: dict[str, int]) -> int:
    """Return how many prices a technical analysis with these parameters needs."""
    return 1 + max(
        parameters["long_window"],
        parameters["rsi_period"],
        parameters["momentum_period"],
        parameters["volatility_window"],
    )


def technical_history_check(*, instrument: Instrument, parameters: dict[str, int]) -> None:
    """Refuse a technical analysis of an instrument with fewer prices than its parameters need."""
    required = technical_history_required(parameters=parameters)
    available = PriceTick.objects.filter(instrument=instrument).count()
    if available < required:
        raise ValidationFailed(
            "insufficient_history",
            f"{instrument.symbol} has {available} prices; this analysis needs {required}.",
            required=required,
            available=available,
        )


def technical_analysis_compute(
    *, prices: list[Decimal], parameters: dict[str, int]
) -> tuple[dict[str, Any], Decimal, str]:
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
    if averages is None or rsi is None or momentum is None or volatility is None:
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
    confidence = (Decimal(sum(1 for vote in votes.values() if vote == agreeing_vote)) / len(votes)).quantize(
        FOUR_PLACES
    )
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
            analysis_reason(f"technical_{recommendation}", None, score=score, votes=len(votes), buy_at=2, sell_at=-2),
        ],
    }
    return result, confidence, recommendation


def technical_analysis_run(
    *, instrument: Instrument, parameters: dict[str, int]
) -> tuple[dict[str, Any], Decimal, str]:
    """Compute a technical analysis from the instrument's stored price history."""
    ticks = list(
        PriceTick.objects.filter(instrument=instrument)
        .order_by("-at", "-id")
        .values_list("price", "at")[:TECHNICAL_HISTORY_MAX]
    )
    ticks.reverse()
    result, confidence, recommendation = technical_analysis_compute(
        prices=[price for price, _ in ticks], parameters=parameters
    )
    result["history_from"], result["history_to"] = isoformat(ticks[0][1]), isoformat(ticks[-1][1])
    return result, confidence, recommendation
