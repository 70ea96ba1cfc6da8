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
            )
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
        VOLATILITY = "volatility", _("realised volatility of the last ticks at least (percent)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="alert_rules"
    )
    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.CASCADE, related_name="alert_rules"
    )
    condition = models.CharField(_("condition"), max_length=16, choices=Condition.choices)
    threshold = models.DecimalField(_("threshold"), max_digits=18, decimal_places=4)
    # The ticks whose returns a volatility rule measures; None: MARKET_VOLATILITY_WINDOW_TICKS.
    window = models.PositiveSmallIntegerField(_("window (ticks)"), null=True, blank=True)
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
        constraints = [models.CheckConstraint(condition=Q(threshold__gt=0), name="alertrule_threshold_positive")]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.condition} {self.threshold}"


# Ratios, percentages and per-share figures of a company: four decimals, up to 10^8.
FIGURE_DIGITS = {"max_digits": 12, "decimal_places": 4}


class Fundamentals(models.Model):
    """A company's key figures on one date, as one source reported them.

    Percentages are stored as percent (a 2.5 % dividend yield is 2.5), whatever unit the
    source uses; every figure may be missing, and an analysis that needs a missing one says so.
    """

    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.CASCADE, related_name="fundamentals"
    )
    as_of = models.DateField(_("as of"))
    source = models.CharField(_("source"), max_length=32)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    pe_ratio = models.DecimalField(_("price/earnings ratio"), null=True, blank=True, **FIGURE_DIGITS)
    pb_ratio = models.DecimalField(_("price/book ratio"), null=True, blank=True, **FIGURE_DIGITS)
    dividend_yield = models.DecimalField(_("dividend yield (percent)"), null=True, blank=True, **FIGURE_DIGITS)
    roe = models.DecimalField(_("return on equity (percent)"), null=True, blank=True, **FIGURE_DIGITS)
    debt_to_equity = models.DecimalField(_("debt/equity ratio"), null=True, blank=True, **FIGURE_DIGITS)
    eps = models.DecimalField(_("earnings per share"), null=True, blank=True, **FIGURE_DIGITS)
    eps_growth = models.DecimalField(
        _("earnings growth year on year (percent)"), null=True, blank=True, **FIGURE_DIGITS
    )
    revenue_growth = models.DecimalField(
        _("revenue growth year on year (percent)"), null=True, blank=True, **FIGURE_DIGITS
    )
    market_cap = models.DecimalField(_("market capitalisation"), max_digits=20, decimal_places=0, null=True, blank=True)
    imported_at = models.DateTimeField(_("imported at"), auto_now=True)

    class Meta:
        verbose_name = _("fundamentals")
        verbose_name_plural = _("fundamentals")
        ordering = ["instrument", "-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "as_of"], name="fundamentals_one_per_date"),
            models.CheckConstraint(
                condition=Q(dividend_yield__isnull=True) | Q(dividend_yield__gte=0),
                name="fundamentals_yield_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(debt_to_equity__isnull=True) | Q(debt_to_equity__gte=0),
                name="fundamentals_debt_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(market_cap__isnull=True) | Q(market_cap__gt=0), name="fundamentals_market_cap_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.as_of} ({self.source})"


class NewsItem(models.Model):
    """A headline about an instrument, with the provider's own sentiment score where it sent one."""

    class Language(models.TextChoices):
        GERMAN = "de", _("German")
        ENGLISH = "en", _("English")

    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.CASCADE, related_name="news"
    )
    published_at = models.DateTimeField(_("published at"))
    source = models.CharField(_("source"), max_length=64)
    headline = models.CharField(_("headline"), max_length=500)
    summary = models.TextField(_("summary"), blank=True)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    url = models.URLField(_("URL"), max_length=1000, blank=True)
    # The provider's score (-1 to 1) for this instrument, kept beside ours and never mixed in.
    provider_score = models.DecimalField(_("provider score"), max_digits=6, decimal_places=4, null=True, blank=True)
    # The same item imported twice is one item: sha256 of time, source and headline.
    fingerprint = models.CharField(_("fingerprint"), max_length=64, editable=False)
    imported_at = models.DateTimeField(_("imported at"), auto_now_add=True)

    class Meta:
        verbose_name = _("news item")
        verbose_name_plural = _("news items")
        ordering = ["-published_at", "-id"]
        indexes = [models.Index(fields=["instrument", "-published_at"], name="newsitem_instrument_published")]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "fingerprint"], name="newsitem_unique_per_instrument"),
            models.CheckConstraint(
                condition=Q(provider_score__isnull=True) | Q(provider_score__gte=-1, provider_score__lte=1),
                name="newsitem_provider_score_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.published_at:%Y-%m-%d %H:%M} {self.headline[:60]}"


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
