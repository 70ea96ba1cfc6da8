"""The sentiment analysis: it scores the headlines of the news about an instrument (their import: `news`).

English headlines are scored by VADER (package vaderSentiment, its lexicon bundled), German ones
by the project's own financial lexicon and VADER's rules (german.py, de_lexicon.tsv). VADER does
not know the language of markets ("beats", "plunges", "profit warning"), so a small financial
lexicon of this module takes precedence over its own. Everything is read from the repository and
installed packages; nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from core.exceptions import ValidationFailed
from portfolio.models import Instrument
from core.times import isoformat

from .german import german_score
from .news import CLOCK_SKEW
from ..models import NewsItem
from ..reasons import analysis_reason
from ..records import decimal_or_none, integer_parameters, parameters_object

FOUR_PLACES = Decimal("0.0001")

# Valences on VADER's scale (-4 to 4) of market words: they replace a general lexicon's value.
FINANCIAL_EN = {
    **dict.fromkeys(
        ("beat", "beats", "outperform", "outperforms", "outperformed", "upgrade", "upgrades", "upgraded"), 2.0
    ),
    **dict.fromkeys(("surge", "surges", "surged", "soar", "soars", "soared", "rally", "rallies", "rallied"), 2.2),
    **dict.fromkeys(("jump", "jumps", "jumped", "climb", "climbs", "climbed", "rise", "rises", "rose"), 1.5),
    **dict.fromkeys(("rebound", "rebounds", "rebounded", "recover", "recovers", "recovered"), 1.5),
    **dict.fromkeys(("raise", "raises", "raised", "lift", "lifts", "lifted", "record"), 1.2),
    **dict.fromkeys(
        ("plunge", "plunges", "plunged", "tumble", "tumbles", "tumbled", "slump", "slumps", "slumped"), -2.2
    ),
    **dict.fromkeys(("crash", "crashes", "crashed", "bankruptcy", "insolvency", "default", "defaults"), -2.8),
    **dict.fromkeys(("downgrade", "downgrades", "downgraded", "underperform", "underperforms", "underperformed"), -2.0),
    **dict.fromkeys(("fall", "falls", "fell", "drop", "drops", "dropped", "sink", "sinks", "sank"), -1.5),
    **dict.fromkeys(("decline", "declines", "declined", "slide", "slides", "slid", "slip", "slips", "slipped"), -1.3),
    **dict.fromkeys(("miss", "misses", "missed", "recall", "recalls", "probe", "writedown", "layoffs"), -1.6),
    **dict.fromkeys(("warning", "warns", "warned", "cut", "cuts", "lawsuit"), -1.5),
    **dict.fromkeys(("profit", "profits"), 0.6),
    **dict.fromkeys(("bullish",), 2.0),
    **dict.fromkeys(("bearish",), -2.0),
    # Names of things in markets, not feelings: "shares", "interest", "securities", "gross margin".
    **dict.fromkeys(
        (
            "share",
            "shares",
            "interest",
            "interests",
            "credit",
            "gross",
            "security",
            "securities",
            "liability",
            "liabilities",
            "trust",
            "demand",
            "outstanding",
            "value",
        ),
        0.0,
    ),
}
# Phrases whose words mean something else together; each is scored as one token (VADER reads words).
FINANCIAL_EN_PHRASES = {
    "profit warning": ("profit_warning", -2.6),
    "profit warnings": ("profit_warning", -2.6),
    "falls short": ("falls_short", -1.8),
    "fell short": ("falls_short", -1.8),
    "tops estimates": ("tops_estimates", 2.0),
    "topped estimates": ("tops_estimates", 2.0),
}
# Items at or beyond this score count as positive (negative); VADER's own convention.
POLARITY_CUTOFF = Decimal("0.05")


@functools.cache
def english_analyzer() -> SentimentIntensityAnalyzer:
    """Return VADER with the financial words added to its lexicon."""
    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(FINANCIAL_EN)
    analyzer.lexicon.update(dict(FINANCIAL_EN_PHRASES.values()))
    return analyzer


def _english_phrases_joined(text: str) -> str:
    for phrase, (token, _) in FINANCIAL_EN_PHRASES.items():
        text = re.sub(rf"\b{phrase}\b", token, text, flags=re.IGNORECASE)
    return text


def english_score(text: str) -> tuple[float, list[dict[str, Any]]]:
    """Return an English text's VADER compound score and the lexicon words in it."""
    analyzer = english_analyzer()
    text = _english_phrases_joined(text)
    used = [
        {"word": word.replace("_", " "), "entry": word.lower(), "valence": analyzer.lexicon[word.lower()]}
        for word in re.findall(r"[^\W\d]+", text)
        if analyzer.lexicon.get(word.lower())
    ]
    return analyzer.polarity_scores(text)["compound"], used


def headline_score(*, text: str, language: str) -> tuple[Decimal, list[dict[str, Any]]]:
    """Return a headline's sentiment (-1 to 1, four decimals) in its language and the words behind it."""
    if language == NewsItem.Language.GERMAN:
        score, used = german_score(text)
    elif language == NewsItem.Language.ENGLISH:
        score, used = english_score(text)
    else:
        raise ValueError(f"no sentiment lexicon for language {language!r}")
    return Decimal(str(score)).quantize(FOUR_PLACES), used


def recency_weight(*, age: timedelta, half_life_hours: int) -> Decimal:
    """Return the weight of an item `age` old: 1 when new, halved every `half_life_hours`."""
    hours = max(age.total_seconds(), 0) / 3600
    return Decimal(str(0.5 ** (hours / half_life_hours))).quantize(Decimal("0.000001"))


def polarity(score: Decimal) -> str:
    return "positive" if score >= POLARITY_CUTOFF else "negative" if score <= -POLARITY_CUTOFF else "neutral"


# name: (lowest, highest, default)
PARAMETERS = {"days": (1, 365, 7), "half_life_hours": (1, 24 * 90, 24), "max_items": (1, 200, 50)}
# Weighted score at or beyond which the recommendation is buy (sell at its negative).
DECISION_SCORE = Decimal("0.15")
# Fewer items than this scale the confidence down in proportion.
FULL_CONFIDENCE_ITEMS = 5


def sentiment_parameters_clean(*, parameters: Any) -> dict[str, int]:
    """Return the sentiment analysis parameters with defaults filled in; refuse unknown or out-of-range ones.

    `days`: how far back items count; `half_life_hours`: age at which an item weighs half;
    `max_items`: the newest items scored at most.
    """
    return integer_parameters(parameters_object(parameters, PARAMETERS), PARAMETERS)


def news_recent(*, instrument: Instrument, parameters: dict[str, int], now: datetime) -> list[NewsItem]:
    """Return the newest items of the last `days` days, at most `max_items`, newest first."""
    since = now - timedelta(days=parameters["days"])
    return list(
        NewsItem.objects.filter(
            instrument=instrument, published_at__gte=since, published_at__lte=now + CLOCK_SKEW
        ).order_by("-published_at", "-id")[: parameters["max_items"]]
    )


def sentiment_analysis_check(*, instrument: Instrument, parameters: dict[str, int]) -> None:
    """Refuse an analysis of an instrument without news in the window, saying so."""
    if not news_recent(instrument=instrument, parameters={**parameters, "max_items": 1}, now=timezone.now()):
        raise ValidationFailed(
            "missing_data",
            f"{instrument.symbol} has no news items of the last {parameters['days']} days. Import some "
            "(manage.py import_news, load_alpha_vantage) or widen parameters.days.",
            missing=["news"],
            days=parameters["days"],
        )


def sentiment_analysis_compute(
    *, items: list[NewsItem], parameters: dict[str, int], now: datetime
) -> tuple[dict[str, Any], Decimal, str]:
    """Return the weighted headline sentiment, confidence score and recommendation of news items.

    Each headline is scored in its language (-1 to 1) and weighs 0.5 ** (age / half-life). A
    weighted mean of at least 0.15 is a buy, at most -0.15 a sell, else a hold. The confidence
    is the weight share of items whose polarity agrees with the recommendation (neutral ones
    for a hold), scaled down when fewer than five items were scored.
    """
    if not items:
        raise ValueError("no news items to score")
    scored = []
    for item in items:
        score, words = headline_score(text=item.headline, language=item.language)
        weight = recency_weight(age=now - item.published_at, half_life_hours=parameters["half_life_hours"])
        scored.append((item, score, weight, words))
    total_weight = sum((weight for _, _, weight, _ in scored), Decimal(0))
    if total_weight > 0:
        aggregate = sum((score * weight for _, score, weight, _ in scored), Decimal(0)) / total_weight
    else:
        aggregate = sum((score for _, score, _, _ in scored), Decimal(0)) / len(scored)
    aggregate = aggregate.quantize(FOUR_PLACES)
    recommendation = "buy" if aggregate >= DECISION_SCORE else "sell" if aggregate <= -DECISION_SCORE else "hold"
    wanted = {"buy": "positive", "sell": "negative", "hold": "neutral"}[recommendation]
    agreeing = [(score, weight) for _, score, weight, _ in scored if polarity(score) == wanted]
    if total_weight > 0:
        agreement = sum(weight for _, weight in agreeing) / total_weight
    else:
        agreement = Decimal(len(agreeing)) / len(scored)
    volume = min(Decimal(1), Decimal(len(scored)) / FULL_CONFIDENCE_ITEMS)
    confidence = min(Decimal(1), agreement * volume).quantize(FOUR_PLACES)
    headlines = [_item_data(item, score, weight, words) for item, score, weight, words in scored]
    strongest_positive = max((h for h in headlines if h["score"] > 0), key=lambda h: h["score"], default=None)
    strongest_negative = min((h for h in headlines if h["score"] < 0), key=lambda h: h["score"], default=None)
    provider = [(item.provider_score, weight) for item, _, weight, _ in scored if item.provider_score is not None]
    provider_weight = sum(weight for _, weight in provider)
    result = {
        "score": aggregate,
        "items": len(scored),
        "polarity": {
            name: sum(1 for _, score, _, _ in scored if polarity(score) == name)
            for name in ("positive", "neutral", "negative")
        },
        "agreeing_weight_share": Decimal(agreement).quantize(FOUR_PLACES),
        "strongest_positive": strongest_positive,
        "strongest_negative": strongest_negative,
        "headlines": headlines,
        "provider_score": (
            (sum(score * weight for score, weight in provider) / provider_weight).quantize(FOUR_PLACES)
            if provider and provider_weight > 0
            else None
        ),
        "provider_scored_items": len(provider),
        "languages": sorted({item.language for item in items}),
        "newest": isoformat(items[0].published_at),
        "parameters": dict(parameters),
        "reasons": [
            analysis_reason(
                "sentiment_polarity",
                None,
                positive=sum(1 for _, score, _, _ in scored if polarity(score) == "positive"),
                neutral=sum(1 for _, score, _, _ in scored if polarity(score) == "neutral"),
                negative=sum(1 for _, score, _, _ in scored if polarity(score) == "negative"),
                items=len(scored),
                half_life_hours=parameters["half_life_hours"],
            ),
            analysis_reason(
                f"sentiment_{recommendation}", None, score=aggregate, buy_at=DECISION_SCORE, sell_at=-DECISION_SCORE
            ),
        ],
    }
    return result, confidence, recommendation


def _item_data(item: NewsItem, score: Decimal, weight: Decimal, words: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "headline": item.headline,
        "score": score,
        "weight": weight,
        "published_at": isoformat(item.published_at),
        "source": item.source,
        "language": item.language,
        "url": item.url,
        "provider_score": item.provider_score,
        "words": [entry["word"] for entry in words],
    }


def sentiment_analysis_run(
    *, instrument: Instrument, parameters: dict[str, int]
) -> tuple[dict[str, Any], Decimal, str]:
    """Score the instrument's recent stored headlines."""
    now = timezone.now()
    return sentiment_analysis_compute(
        items=news_recent(instrument=instrument, parameters=parameters, now=now), parameters=parameters, now=now
    )


def sentiment_result_restore(result: dict[str, Any]) -> dict[str, Any]:
    """Return a stored sentiment result with its scores as Decimals again (JSON keeps them as strings)."""

    def item(data: dict[str, Any] | None) -> dict[str, Any] | None:
        if data is None:
            return None
        return {**data, **{key: decimal_or_none(data.get(key)) for key in ("score", "weight", "provider_score")}}

    restored = dict(result)
    for key in ("score", "agreeing_weight_share", "provider_score"):
        restored[key] = decimal_or_none(result.get(key))
    restored["strongest_positive"] = item(result.get("strongest_positive"))
    restored["strongest_negative"] = item(result.get("strongest_negative"))
    restored["headlines"] = [item(h) for h in result.get("headlines", [])]
    return restored
