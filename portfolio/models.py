"""Instruments, portfolios, positions and the audit of their manual corrections."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

PRICE_DIGITS = {"max_digits": 18, "decimal_places": 4}


class Instrument(models.Model):
    """A tradable security with its latest known price."""

    symbol = models.CharField(_("symbol"), max_length=16, unique=True)
    isin = models.CharField(_("ISIN"), max_length=12, unique=True)
    name = models.CharField(_("name"), max_length=200)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    last_price = models.DecimalField(_("last price"), null=True, blank=True, **PRICE_DIGITS)
    last_price_at = models.DateTimeField(_("last price at"), null=True, blank=True)

    class Meta:
        verbose_name = _("instrument")
        verbose_name_plural = _("instruments")
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_price__isnull=True) | Q(last_price__gt=0), name="instrument_price_positive"
            ),
            models.CheckConstraint(condition=Q(symbol__regex=r"^[A-Z0-9.]{1,16}$"), name="instrument_symbol_format"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})"


QUANTITY_DIGITS = {"max_digits": 18, "decimal_places": 4}
MONEY_DIGITS = {"max_digits": 18, "decimal_places": 2}
COST_DIGITS = {"max_digits": 20, "decimal_places": 6}


class Portfolio(models.Model):
    """Cash and positions that a group of staff members may see and trade."""

    name = models.CharField(_("name"), max_length=100)
    cash = models.DecimalField(_("cash"), default=0, **MONEY_DIGITS)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("members"),
        related_name="portfolios",
        blank=True,
        limit_choices_to={"is_staff": True},
        help_text=_("Staff members who see this portfolio's events and may trade in it."),
    )
    # The value last announced in `portfolio.value_changed`, the baseline of the next one.
    last_value = models.DecimalField(_("last announced value"), null=True, blank=True, **MONEY_DIGITS)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("portfolio")
        verbose_name_plural = _("portfolios")
        ordering = ["pk"]
        permissions = [("supervise_portfolios", _("Can see and act on every portfolio, not only their own"))]
        constraints = [models.CheckConstraint(condition=Q(cash__gte=0), name="portfolio_cash_not_negative")]

    def __str__(self) -> str:
        return self.name


class Position(models.Model):
    """How many units of one instrument a portfolio holds, and what they cost on average."""

    portfolio = models.ForeignKey(
        Portfolio, verbose_name=_("portfolio"), on_delete=models.CASCADE, related_name="positions"
    )
    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.PROTECT, related_name="positions"
    )
    quantity = models.DecimalField(_("quantity"), **QUANTITY_DIGITS)
    avg_cost = models.DecimalField(_("average cost"), **COST_DIGITS)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("position")
        verbose_name_plural = _("positions")
        ordering = ["portfolio", "instrument__symbol"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "instrument"], name="position_one_per_instrument"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="position_quantity_positive"),
            models.CheckConstraint(condition=Q(avg_cost__gte=0), name="position_avg_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.instrument.symbol}"


class PositionCorrection(models.Model):
    """An audited manual correction of a position: who changed what, from where, and why."""

    portfolio = models.ForeignKey(
        Portfolio, verbose_name=_("portfolio"), on_delete=models.CASCADE, related_name="corrections"
    )
    instrument = models.ForeignKey(Instrument, verbose_name=_("instrument"), on_delete=models.PROTECT)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.CharField(_("client id"), max_length=64, blank=True)
    correlation_id = models.CharField(_("correlation id"), max_length=128, blank=True)
    remote_addr = models.CharField(_("remote address"), max_length=64, blank=True)
    previous_quantity = models.DecimalField(_("previous quantity"), **QUANTITY_DIGITS)
    quantity = models.DecimalField(_("quantity"), **QUANTITY_DIGITS)
    previous_avg_cost = models.DecimalField(_("previous average cost"), null=True, blank=True, **COST_DIGITS)
    avg_cost = models.DecimalField(_("average cost"), null=True, blank=True, **COST_DIGITS)
    reason = models.CharField(_("reason"), max_length=500)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("position correction")
        verbose_name_plural = _("position corrections")
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=0), name="correction_quantity_not_negative")]

    def __str__(self) -> str:
        return f"{self.instrument.symbol}: {self.previous_quantity} → {self.quantity}"
