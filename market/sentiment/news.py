"""News about instruments coming in: records checked, stored once each, read from Alpha Vantage's news feed."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, DecimalException
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.exceptions import ValidationFailed

from ..models import NewsItem
from ..records import figure_clean, record_instruments, text_clean, unknown_fields_refuse

FOUR_PLACES = Decimal("0.0001")

NEWS_FIELDS = ("symbol", "published_at", "source", "headline", "summary", "language", "url", "provider_score")
# A published time at most this far ahead of our clock is accepted (the source's clock may be ahead).
CLOCK_SKEW = timedelta(minutes=5)


def news_record_clean(record: Any) -> dict[str, Any]:
    """Return one imported news record checked and typed; refuse it naming the first bad field.

    Keys: symbol, published_at (ISO 8601 with a time zone), source, headline, language (de, en),
    and optionally summary, url (http or https) and provider_score (-1 to 1).
    """
    unknown_fields_refuse(record, NEWS_FIELDS)
    cleaned = {
        "symbol": text_clean(record.get("symbol"), field="symbol", max_length=16).upper(),
        "published_at": _moment(record.get("published_at")),
        "source": text_clean(record.get("source"), field="source", max_length=64),
        "headline": text_clean(record.get("headline"), field="headline", max_length=500),
        "summary": text_clean(record.get("summary"), field="summary", max_length=5000, required=False),
    }
    url = cleaned["url"] = text_clean(record.get("url"), field="url", max_length=1000, required=False)
    language = record.get("language")
    if language not in NewsItem.Language.values:
        raise ValidationFailed(
            "validation_error", f"'language' must be one of {', '.join(NewsItem.Language.values)}.", field="language"
        )
    cleaned["language"] = language
    if url and not re.match(r"^https?://[^\s/]+\S*$", url):
        raise ValidationFailed("validation_error", "'url' must be an http or https address.", field="url")
    cleaned["provider_score"] = figure_clean(
        record.get("provider_score"), field="provider_score", low=Decimal(-1), high=Decimal(1)
    )
    return cleaned


def _moment(value: Any) -> datetime:
    try:
        moment = (
            datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if isinstance(value, str) and len(value) <= 40
            else None
        )
        moment = moment.astimezone(UTC) if moment is not None and moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.year < 1900:
        raise ValidationFailed(
            "validation_error",
            "'published_at' must be an ISO 8601 time with a time zone, from 1900 on, e.g. 2025-03-01T09:30:00+01:00.",
            field="published_at",
        )
    if moment > timezone.now() + CLOCK_SKEW:
        raise ValidationFailed(
            "validation_error", f"'published_at' {value.strip()} lies in the future.", field="published_at"
        )
    return moment


def news_fingerprint(*, published_at: datetime, source: str, headline: str) -> str:
    text = f"{published_at.astimezone(UTC).isoformat()}\n{source}\n{headline}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@transaction.atomic
def news_store(*, records: list[dict[str, Any]]) -> tuple[int, int]:
    """Store cleaned news records, skipping those already stored; return (added, already there).

    All or nothing: one unknown symbol stores none of the records.
    """
    instruments = record_instruments(records)
    added = 0
    for record in records:
        values = {key: value for key, value in record.items() if key != "symbol"}
        _, created = NewsItem.objects.get_or_create(
            instrument=instruments[record["symbol"]],
            fingerprint=news_fingerprint(
                published_at=record["published_at"], source=record["source"], headline=record["headline"]
            ),
            defaults=values,
        )
        added += created
    return added, len(records) - added


def news_from_alpha_vantage(payload: Any, *, symbol: str, ticker: str) -> list[dict[str, Any]]:
    """Return news records (not yet cleaned) of `symbol` from an Alpha Vantage NEWS_SENTIMENT answer.

    Alpha Vantage's feed is English; `time_published` (YYYYMMDDTHHMMSS) is taken as UTC. Its
    score for `ticker` (else its overall score) is kept as the provider's score. Items whose
    ticker list does not name `ticker` are about other companies and are left out.
    """
    if not isinstance(payload, dict):
        raise ValueError("the news answer is not an object")
    for key in ("Error Message", "Note", "Information"):
        if key in payload:
            raise ValueError(f"Alpha Vantage answered: {str(payload[key])[:200]}")
    feed = payload.get("feed")
    if not isinstance(feed, list):
        raise ValueError("the news answer has no feed list")
    records = []
    for index, item in enumerate(feed, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"feed item {index} is not an object")
        tickers = item.get("ticker_sentiment")
        score = item.get("overall_sentiment_score")
        if isinstance(tickers, list) and tickers:
            mine = [t for t in tickers if isinstance(t, dict) and str(t.get("ticker", "")).upper() == ticker.upper()]
            if not mine:
                continue
            score = mine[0].get("ticker_sentiment_score", score)
        published = str(item.get("time_published", ""))
        try:
            moment = datetime.strptime(published, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"feed item {index}: time_published {published[:20]!r} is not YYYYMMDDTHHMMSS") from None
        try:
            # Alpha Vantage sends six decimals; we keep four, rounded half to even.
            provider_score = None if score in (None, "") else str(Decimal(str(score)).quantize(FOUR_PLACES))
        except DecimalException:
            raise ValueError(f"feed item {index}: the sentiment score {str(score)[:20]!r} is not a number") from None
        records.append(
            {
                "symbol": symbol,
                "published_at": moment.isoformat(),
                "source": item.get("source") or "alpha_vantage",
                "headline": item.get("title"),
                "summary": item.get("summary") or "",
                # A TextChoices member; without Django's type stubs mypy reads it as its (value, label) tuple.
                "language": NewsItem.Language.ENGLISH.value,  # type: ignore[attr-defined]
                "url": item.get("url") or "",
                "provider_score": provider_score,
            }
        )
    return records
