"""Instruments, portfolios and positions."""

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
            models.CheckConstraint(condition=Q(last_price__isnull=True) | Q(last_price__gt=0), name="instrument_price_positive"),
            models.CheckConstraint(condition=Q(symbol__regex=r"^[A-Z0-9.]{1,16}$"), name="instrument_symbol_format"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})"
