"""Admin for orders: browse, filter and search them, see fills and audit, cancel through the service.

A user sees the orders of the portfolios they are a member of; a supervisor sees all
(`portfolio.selectors.supervised_only`).
"""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils.translation import gettext_lazy as _, ngettext

from core.actor import Actor
from core.exceptions import DomainError
from core.numbers import ascii_int
from portfolio.admin import PORTFOLIO_FILTER, SupervisedAdmin

from .models import Fill, Order, OrderAudit
from .services import order_cancel


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class FillInline(ReadOnlyInline):
    model = Fill
    fields = ["executed_at", "quantity", "price", "fees"]
    readonly_fields = fields


class OrderAuditInline(ReadOnlyInline):
    model = OrderAudit
    fields = ["created_at", "action", "user", "channel", "client_id", "correlation_id", "remote_addr", "details"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(SupervisedAdmin):
    portfolio_field = "portfolio"
    list_display = [
        "id",
        "status",
        "side",
        "symbol",
        "order_type",
        "quantity",
        "filled_quantity",
        "price",
        "stop_price",
        "portfolio",
        "placed_by",
        "created_at",
    ]
    list_filter = ["status", "side", "order_type", "instrument", PORTFOLIO_FILTER, "created_at"]
    search_fields = [
        "=id",
        "client_order_id",
        "instrument__symbol",
        "instrument__isin",
        "portfolio__name",
        "placed_by__username",
    ]
    list_select_related = ["instrument", "portfolio", "placed_by"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Order._meta.fields]
    inlines = [FillInline, OrderAuditInline]
    actions = ["cancel_selected_orders"]

    @admin.display(description=_("symbol"), ordering="instrument__symbol")
    def symbol(self, order: Order) -> str:
        return order.instrument.symbol

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Cancel selected orders"), permissions=["change"])
    def cancel_selected_orders(self, request, queryset):
        """Cancel the chosen orders the user reaches (`queryset` holds no others) through the service."""
        actor = Actor(user=request.user, remote_addr=request.META.get("REMOTE_ADDR", ""), channel="admin")
        cancelled, refused = 0, []
        order_ids = list(queryset.values_list("pk", flat=True))
        chosen = {pk for pk in map(ascii_int, request.POST.getlist(ACTION_CHECKBOX_NAME)) if pk is not None}
        refused += [f"#{pk}: {_('does not exist or is not yours')}" for pk in sorted(chosen - set(order_ids))]
        for order_id in order_ids:
            try:
                order_cancel(order_id=order_id, actor=actor, reason_code="cancelled_by_admin")
                cancelled += 1
            except DomainError as error:
                refused.append(f"#{order_id}: {error.message}")
        if cancelled:
            self.message_user(
                request,
                ngettext("%d order cancelled.", "%d orders cancelled.", cancelled) % cancelled,
                messages.SUCCESS,
            )
        if refused:
            self.message_user(request, _("Not cancelled: ") + "; ".join(refused), messages.WARNING)
