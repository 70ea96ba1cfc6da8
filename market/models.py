"""Price history, technical analyses and the alert rules of users."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from portfolio.models import PRICE_DIGITS, Instrument


class PriceTick(models.Model):
    """One observed price of an instrument, with the price before it and the traded volume."""

    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.CASCADE, related_name="ticks"
    )
    price = models.DecimalField(_("price"), **PRICE_DIGITS)
    previous_price = models.DecimalField(_("previous price"), **PRICE_DIGITS)
    volume = models.PositiveBigIntegerField(_("volume"))
    source = models.CharField(_("source"), max_length=32)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("price tick")
        verbose_name_plural = _("price ticks")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["instrument", "-at", "-id"], name="pricetick_instrument_at")]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="pricetick_price_positive"),
            models.CheckConstraint(condition=Q(previous_price__gt=0), name="pricetick_previous_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.price} @ {self.at:%Y-%m-%d %H:%M:%S}"

    @property
    def change(self) -> Decimal:
        return self.price - self.previous_price

    @property
    def change_percent(self) -> Decimal:
        return (self.change / self.previous_price * 100).quantize(Decimal("0.0001"))


class Analysis(models.Model):
    """A technical analysis of one instrument, from its request to its result."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        COMPLETE = "complete", _("complete")
        FAILED = "failed", _("failed")

    class Recommendation(models.TextChoices):
        BUY = "buy", _("buy")
        SELL = "sell", _("sell")
        HOLD = "hold", _("hold")

    id = models.UUIDField(_("analysis id"), primary_key=True, default=uuid.uuid4, editable=False)
    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.CASCADE, related_name="analyses"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="analyses",
    )
    analysis_type = models.CharField(_("analysis type"), max_length=32)
    parameters = models.JSONField(_("parameters"), default=dict)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    result = models.JSONField(_("result"), null=True, blank=True, encoder=DjangoJSONEncoder)
    confidence_score = models.DecimalField(_("confidence score"), max_digits=5, decimal_places=4, null=True, blank=True)
    recommendation = models.CharField(
        _("recommendation"), max_length=4, choices=Recommendation.choices, null=True, blank=True
    )
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("analysis")
        verbose_name_plural = _("analyses")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["instrument", "status", "-completed_at"], name="analysis_latest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence_score__isnull=True) | Q(confidence_score__gte=0, confidence_score__lte=1),
                name="analysis_confidence_unit_interval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.analysis_type} {self.instrument.symbol} ({self.status})"


class AlertRule(models.Model):
    """A user's condition on an instrument's ticks; it fires once per crossing."""

    class Condition(models.TextChoices):
        ABOVE = "above", _("price at or above")
        BELOW = "below", _("price at or below")
        CHANGE_PERCENT = "change_percent", _("change since creation at least (percent)")
        VOLUME_SPIKE = "volume_spike", _("volume at least this multiple of its recent average")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="alert_rules"
    )
    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.CASCADE, related_name="alert_rules"
    )
    condition = models.CharField(_("condition"), max_length=16, choices=Condition.choices)
    threshold = models.DecimalField(_("threshold"), max_digits=18, decimal_places=4)
    # The price a change_percent rule measures from: the last price when the rule was created.
    reference_price = models.DecimalField(_("reference price"), null=True, blank=True, **PRICE_DIGITS)
    # Armed: the next tick that meets the condition fires; cleared on firing, set again once the
    # condition stops holding.
    armed = models.BooleanField(_("armed"), default=True)
    trigger_count = models.PositiveIntegerField(_("times triggered"), default=0)
    last_triggered_at = models.DateTimeField(_("last triggered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gt=0), name="alertrule_threshold_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.condition} {self.threshold}"


class FeedState(models.Model):
    """What the price feed last said about its provider, so status checks in other processes can tell."""

    name = models.CharField(_("name"), max_length=32, unique=True)
    provider = models.CharField(_("provider"), max_length=32)
    # True from the feed's first round until it stops cleanly.
    running = models.BooleanField(_("running"), default=False)
    reason = models.TextField(_("reason"), blank=True)
    symbol_problems = models.JSONField(_("problems by symbol"), default=dict)
    last_answer_at = models.DateTimeField(_("last good answer at"), null=True, blank=True)
    retry_at = models.DateTimeField(_("next try at"), null=True, blank=True)
    interval_seconds = models.FloatField(_("seconds between rounds"))
    stale_after_seconds = models.FloatField(_("stalled after (seconds)"))
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("feed state")
        verbose_name_plural = _("feed states")

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"
