"""Admin for instruments, portfolios with their positions, and the audit of manual corrections."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Instrument, Portfolio, Position, PositionCorrection


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "isin", "name", "currency", "last_price", "last_price_at"]
    search_fields = ["symbol", "isin", "name"]
    list_filter = ["currency"]


class PositionInline(admin.TabularInline):
    model = Position
    fields = ["instrument", "quantity", "avg_cost", "updated_at"]
    readonly_fields = ["instrument", "quantity", "avg_cost", "updated_at"]
    extra = 0
    can_delete = False
    verbose_name_plural = _("positions (correct them with the update_position command, which is audited)")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "cash", "created_at", "updated_at"]
    search_fields = ["name", "members__username"]
    filter_horizontal = ["members"]
    readonly_fields = ["last_value", "created_at", "updated_at"]
    inlines = [PositionInline]


@admin.register(PositionCorrection)
class PositionCorrectionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "portfolio", "instrument", "previous_quantity", "quantity", "user", "remote_addr"]
    list_filter = ["portfolio", "instrument"]
    search_fields = ["reason", "user__username", "client_id", "correlation_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
