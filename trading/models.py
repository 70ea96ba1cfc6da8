"""Orders, their fills, and the audit trail of who did what to an order."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from portfolio.models import MONEY_DIGITS, PRICE_DIGITS, QUANTITY_DIGITS, Instrument, Portfolio


class Side(models.TextChoices):
    BUY = "buy", _("buy")
    SELL = "sell", _("sell")


class OrderType(models.TextChoices):
    MARKET = "market", _("market")
    LIMIT = "limit", _("limit")
    STOP = "stop", _("stop")


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    OPEN = "open", _("open")
    PARTIALLY_FILLED = "partially_filled", _("partially filled")
    FILLED = "filled", _("filled")
    CANCELLED = "cancelled", _("cancelled")
    REJECTED = "rejected", _("rejected")
    FAILED = "failed", _("failed")


RESTING_STATUSES = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class Order(models.Model):
    """An instruction to buy or sell an instrument for a portfolio, and how far it got."""

    portfolio = models.ForeignKey(
        Portfolio, verbose_name=_("portfolio"), on_delete=models.PROTECT, related_name="orders"
    )
    instrument = models.ForeignKey(
        Instrument, verbose_name=_("instrument"), on_delete=models.PROTECT, related_name="orders"
    )
    side = models.CharField(_("side"), max_length=4, choices=Side.choices)
    order_type = models.CharField(_("order type"), max_length=6, choices=OrderType.choices)
    quantity = models.DecimalField(_("quantity"), **QUANTITY_DIGITS)
    price = models.DecimalField(_("limit price"), null=True, blank=True, **PRICE_DIGITS)
    stop_price = models.DecimalField(_("stop price"), null=True, blank=True, **PRICE_DIGITS)
    status = models.CharField(_("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    filled_quantity = models.DecimalField(_("filled quantity"), default=0, **QUANTITY_DIGITS)
    average_fill_price = models.DecimalField(_("average fill price"), null=True, blank=True, **PRICE_DIGITS)
    fees = models.DecimalField(_("fees"), default=0, **MONEY_DIGITS)
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    # The figures `reason` names, by name, so a client can word the reason in its own language.
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    client_order_id = models.CharField(_("client order id"), max_length=64, null=True, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("placed by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    client_id = models.CharField(_("client id"), max_length=64, blank=True)
    correlation_id = models.CharField(_("correlation id"), max_length=128, blank=True)
    remote_addr = models.CharField(_("remote address"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    filled_at = models.DateTimeField(_("filled at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["instrument", "status"], name="order_instrument_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["placed_by", "client_order_id"],
                condition=Q(client_order_id__isnull=False),
                name="order_client_order_id_unique_per_user",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0) & Q(filled_quantity__lte=F("quantity")),
                name="order_filled_within_quantity",
            ),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gt=0), name="order_price_positive"),
            models.CheckConstraint(
                condition=Q(stop_price__isnull=True) | Q(stop_price__gt=0), name="order_stop_price_positive"
            ),
            models.CheckConstraint(
                condition=~Q(order_type=OrderType.LIMIT) | Q(price__isnull=False), name="order_limit_has_price"
            ),
            models.CheckConstraint(
                condition=~Q(order_type=OrderType.STOP) | Q(stop_price__isnull=False), name="order_stop_has_stop_price"
            ),
            models.CheckConstraint(condition=Q(side__in=Side.values), name="order_side_valid"),
            models.CheckConstraint(condition=Q(order_type__in=OrderType.values), name="order_type_valid"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="order_fees_not_negative"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.quantity} {self.instrument.symbol} ({self.status})"

    @property
    def remaining_quantity(self):
        return self.quantity - self.filled_quantity

    @property
    def is_resting(self) -> bool:
        return self.status in RESTING_STATUSES


class Fill(models.Model):
    """One execution of (part of) an order at a price."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="fills")
    quantity = models.DecimalField(_("quantity"), **QUANTITY_DIGITS)
    price = models.DecimalField(_("price"), **PRICE_DIGITS)
    fees = models.DecimalField(_("fees"), **MONEY_DIGITS)
    executed_at = models.DateTimeField(_("executed at"))

    class Meta:
        verbose_name = _("fill")
        verbose_name_plural = _("fills")
        ordering = ["executed_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="fill_price_positive"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="fill_fees_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} @ {self.price}"

    @property
    def total_value(self):
        return self.quantity * self.price


class OrderAudit(models.Model):
    """Who placed, modified or cancelled an order, through which client, from where."""

    class Action(models.TextChoices):
        PLACE = "place", _("place")
        MODIFY = "modify", _("modify")
        CANCEL = "cancel", _("cancel")

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="audit")
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.CharField(_("client id"), max_length=64, blank=True)
    correlation_id = models.CharField(_("correlation id"), max_length=128, blank=True)
    remote_addr = models.CharField(_("remote address"), max_length=64, blank=True)
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order audit entry")
        verbose_name_plural = _("order audit entries")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.action} #{self.order_id}"


class OrderRequest(models.Model):
    """A cancel or modify a user asked for under a request id, so a repeat of it is answered, not applied again."""

    class Action(models.TextChoices):
        CANCEL = "cancel", _("cancel")
        MODIFY = "modify", _("modify")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+"
    )
    request_id = models.CharField(_("request id"), max_length=64)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="requests")
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order request")
        verbose_name_plural = _("order requests")
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["user", "request_id"], name="order_request_id_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.action} #{self.order_id} ({self.request_id})"
