"""Analyses on request: checked, counted against the user's quota, computed, stored, announced.

The technical, fundamental and sentiment analyses are computed by `market.technical`,
`market.fundamentals` and `market.sentiment`.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.exceptions import RateLimited, ValidationFailed

from . import fundamentals, sentiment, signals, technical
from .conf import market_setting
from .models import Analysis
from .selectors import instrument_for_symbol

logger = logging.getLogger(__name__)

ANALYSIS_TYPES = ("technical", "fundamental", "sentiment")


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
            "validation_error", f"'analysis_type' must be one of {', '.join(ANALYSIS_TYPES)}.", field="analysis_type"
        )
    clean, check, _ = ANALYSES[analysis_type]
    cleaned = clean(parameters=parameters)
    check(instrument=instrument, parameters=cleaned)
    analysis_quota_check(user=user)
    return Analysis.objects.create(
        instrument=instrument, requested_by=user, analysis_type=analysis_type, parameters=cleaned
    )


# analysis type: (clean its parameters, check its data is there, compute it)
ANALYSES = {
    "technical": (
        technical.technical_parameters_clean,
        technical.technical_history_check,
        technical.technical_analysis_run,
    ),
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
    """Compute a running analysis, store it and send `analysis_completed`.

    Published as `analysis.complete` to every connection of the user who asked (their user
    group), whether or not it subscribed to it: it answers their own request, and no one else's.
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
        signals.analysis_completed.send(Analysis, analysis=analysis, result=result)
    return analysis
