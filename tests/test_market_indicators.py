"""Indicator math against hand-computed values, and how the indicators vote."""

from decimal import Decimal

import pytest

from market import indicators
from market.technical import technical_analysis_compute


def d(*values):
    return [Decimal(str(v)) for v in values]


def test_sma_is_the_mean_of_the_last_window_prices():
    assert indicators.sma(d(1, 2, 3, 4, 5), 3) == Decimal(4)
    assert indicators.sma(d(1, 2), 3) is None


def test_rsi_follows_wilders_smoothing():
    # changes +2, -1, +3; period 2: first averages gain 1, loss 0.5; then gain (1+3)/2 = 2,
    # loss (0.5+0)/2 = 0.25; RS = 8, RSI = 100 - 100/9
    assert indicators.rsi(d(10, 12, 11, 14), 2).quantize(Decimal("0.0001")) == Decimal("88.8889")
    # changes +1, -0.5, +1, +0.5, -1; period 3 ends with gain = loss = 11/27: RSI 50
    assert indicators.rsi(d(10, 11, 10.5, 11.5, 12, 11), 3).quantize(Decimal("0.0001")) == Decimal("50.0000")


def test_rsi_edge_cases():
    assert indicators.rsi(d(1, 2, 3, 4), 3) == Decimal(100)  # only gains
    assert indicators.rsi(d(5, 5, 5, 5), 3) == Decimal(50)  # no movement
    assert indicators.rsi(d(4, 3, 2, 1), 3) == Decimal(0)  # only losses
    assert indicators.rsi(d(1, 2, 3), 3) is None  # needs period + 1 prices


def test_momentum_is_the_rate_of_change_in_percent():
    assert indicators.momentum(d(100, 105, 110), 2) == Decimal(10)
    assert indicators.momentum(d(100, 105, 110), 1).quantize(Decimal("0.0001")) == Decimal("4.7619")
    assert indicators.momentum(d(100, 105), 2) is None


def test_volatility_is_the_sample_deviation_of_returns_in_percent():
    # returns +10 % and -10 %: mean 0, sample variance 0.02, deviation 0.1414...
    assert indicators.volatility(d(100, 110, 99), 2).quantize(Decimal("0.0001")) == Decimal("14.1421")
    assert indicators.volatility(d(100, 100, 100, 100), 3) == Decimal(0)


def test_crossover_reports_trend_and_the_flip_on_the_last_price():
    short, long, trend, crossed = indicators.crossover(d(1, 1, 1, 1, 5), 2, 4)
    assert (short, long, trend, crossed) == (Decimal(3), Decimal(2), "bullish", True)
    assert indicators.crossover(d(5, 4, 3, 2, 1), 2, 4)[2:] == ("bearish", False)


PARAMETERS = {
    "short_window": 5,
    "long_window": 20,
    "rsi_period": 14,
    "rsi_overbought": 70,
    "rsi_oversold": 30,
    "momentum_period": 10,
    "volatility_window": 10,
}


def zigzag(start, up, down, steps):
    prices, price = [], Decimal(start)
    for i in range(steps):
        price += Decimal(up) if i % 2 == 0 else -Decimal(down)
        prices.append(price)
    return prices


def test_rising_zigzag_is_a_buy_with_two_of_three_votes():
    # +2/-1 steps: uptrend, rising momentum, RSI near 67 (neutral)
    result, confidence, recommendation = technical_analysis_compute(prices=zigzag(100, 2, 1, 60), parameters=PARAMETERS)
    assert recommendation == "buy"
    assert result["votes"] == {"moving_average": 1, "rsi": 0, "momentum": 1}
    assert confidence == Decimal("0.6667")
    assert result["signals"]["trend"] == "bullish" and result["signals"]["rsi"] == "neutral"


def test_falling_zigzag_is_a_sell():
    result, confidence, recommendation = technical_analysis_compute(
        prices=zigzag(200, -2, -1, 60), parameters=PARAMETERS
    )
    assert recommendation == "sell"
    assert result["votes"] == {"moving_average": -1, "rsi": 0, "momentum": -1}


def test_straight_rise_is_overbought_and_a_hold():
    result, confidence, recommendation = technical_analysis_compute(
        prices=[Decimal(100 + i) for i in range(40)], parameters=PARAMETERS
    )
    assert result["indicators"]["rsi"] == Decimal("100.0000")
    assert result["votes"] == {"moving_average": 1, "rsi": -1, "momentum": 1}
    assert (recommendation, confidence) == ("hold", Decimal("0.0000"))


def test_too_short_a_series_is_refused():
    with pytest.raises(ValueError):
        technical_analysis_compute(prices=[Decimal(100 + i) for i in range(12)], parameters=PARAMETERS)
