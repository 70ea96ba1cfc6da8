"""Technical indicators on a price series, in exact decimal arithmetic.

Each function takes prices oldest first and returns a Decimal (or None where the series is too
short), so the values in `analysis.complete` can be checked against a hand computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

HUNDRED = Decimal(100)


def sma(prices: Sequence[Decimal], window: int) -> Decimal | None:
    """Return the simple moving average of the last `window` prices."""
    if window < 1 or len(prices) < window:
        return None
    return sum(prices[-window:], Decimal(0)) / window


def rsi(prices: Sequence[Decimal], period: int) -> Decimal | None:
    """Return Wilder's relative strength index (0-100) over `period` price changes.

    The first average gain and loss are plain means of the first `period` changes; every later
    change is folded in with Wilder's smoothing, avg = (avg * (period - 1) + current) / period.
    """
    if period < 1 or len(prices) < period + 1:
        return None
    changes = [b - a for a, b in zip(prices, prices[1:])]
    gains = [max(c, Decimal(0)) for c in changes]
    losses = [max(-c, Decimal(0)) for c in changes]
    avg_gain = sum(gains[:period], Decimal(0)) / period
    avg_loss = sum(losses[:period], Decimal(0)) / period
    for gain, loss in zip(gains[period:], losses[period:]):
        avg_gain = (avg_gain * (period - 1) + gain) / period
        avg_loss = (avg_loss * (period - 1) + loss) / period
    if avg_loss == 0:
        return Decimal(50) if avg_gain == 0 else HUNDRED
    return HUNDRED - HUNDRED / (1 + avg_gain / avg_loss)


def momentum(prices: Sequence[Decimal], period: int) -> Decimal | None:
    """Return the rate of change in percent between the price `period` steps ago and the last."""
    if period < 1 or len(prices) < period + 1:
        return None
    return (prices[-1] / prices[-1 - period] - 1) * HUNDRED


def returns(prices: Sequence[Decimal]) -> list[Decimal]:
    return [b / a - 1 for a, b in zip(prices, prices[1:])]


def volatility(prices: Sequence[Decimal], window: int) -> Decimal | None:
    """Return the sample standard deviation of the last `window` simple returns, in percent."""
    if window < 2 or len(prices) < window + 1:
        return None
    recent = returns(prices[-window - 1 :])
    mean = sum(recent, Decimal(0)) / window
    variance = sum(((r - mean) ** 2 for r in recent), Decimal(0)) / (window - 1)
    with localcontext() as context:
        context.prec = 28
        return variance.sqrt() * HUNDRED


def crossover(prices: Sequence[Decimal], short: int, long: int) -> tuple[Decimal, Decimal, str, bool] | None:
    """Return the short and long moving averages, the trend and whether it flipped on the last price.

    The trend is "bullish" when the short average is above the long one, "bearish" when below,
    "neutral" when equal; `crossed` says the trend differs from the one a price earlier.
    """
    if len(prices) < long + 1:
        return None
    short_now, long_now = sma(prices, short), sma(prices, long)
    short_before, long_before = sma(prices[:-1], short), sma(prices[:-1], long)
    if short_now is None or long_now is None or short_before is None or long_before is None:
        return None  # a window below 1, or wider than the prices before the last one
    trend_now, trend_before = _trend(short_now, long_now), _trend(short_before, long_before)
    return short_now, long_now, trend_now, trend_now != trend_before


def _trend(short: Decimal, long: Decimal) -> str:
    if short > long:
        return "bullish"
    if short < long:
        return "bearish"
    return "neutral"
