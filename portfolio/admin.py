"""Admin for instruments, portfolios with their positions, and the audit of manual corrections.

Rows that belong to a portfolio are shown to members of that portfolio and to supervisors only,
by the rule of `portfolio.selectors` the WebSocket and REST follow as well.

Cash, positions and prices change only through the services, which send their signals and so
their events (fills, `update_position`, ticks): here they are read-only, and a portfolio cannot
be deleted (its positions would go with it, unannounced).
"""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from .models import Instrument, Portfolio, Position, PositionCorrection
from .selectors import supervised_only


class SupervisedAdmin(admin.ModelAdmin):
    """An admin of rows that belong to portfolios: each user gets the rows of the portfolios they reach.

    Every view of the admin (list, change, history, actions) starts from `get_queryset`, so a row
    outside it is as absent as a deleted one, also to a hand-made request.
    """

    portfolio_field = ""  # the path from a row to its portfolio; empty for portfolios

    def get_queryset(self, request):
        return supervised_only(super().get_queryset(request), user=request.user, portfolio_field=self.portfolio_field)

    def response_action(self, request, queryset):
        """Refuse a selection that is not a list of ids with a message, where Django would fail with a 500."""
        try:
            for pk in request.POST.getlist(ACTION_CHECKBOX_NAME):
                self.model._meta.pk.to_python(pk)
        except ValidationError:
            self.message_user(request, _("The selection is not a list of ids; nothing was done."), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


# A filter by portfolio offers the portfolios of the rows the user sees, not every portfolio's name.
PORTFOLIO_FILTER = ("portfolio", admin.RelatedOnlyFieldListFilter)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "isin", "name", "currency", "last_price", "last_price_at"]
    search_fields = ["symbol", "isin", "name"]
    list_filter = ["currency"]

    def get_readonly_fields(self, request, obj=None):
        # A new instrument may start with a price; after that a price moves by a tick
        # (`market.ticks.price_tick_record`), which executes resting orders and revalues holdings.
        return ["last_price", "last_price_at"] if obj is not None else []


class PositionInline(admin.TabularInline):
    model = Position
    fields = ["instrument", "quantity", "avg_cost", "updated_at"]
    readonly_fields = ["instrument", "quantity", "avg_cost", "updated_at"]
    extra = 0
    can_delete = False
    verbose_name_plural = _("positions (correct them with the update_position command, which is audited)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Portfolio)
class PortfolioAdmin(SupervisedAdmin):
    list_display = ["name", "cash", "created_at", "updated_at"]
    search_fields = ["name", "members__username"]
    filter_horizontal = ["members"]
    readonly_fields = ["last_value", "created_at", "updated_at"]
    inlines = [PositionInline]

    def get_readonly_fields(self, request, obj=None):
        # The starting cash is set when the portfolio is added; after that only fills move it.
        return [*self.readonly_fields, "cash"] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PositionCorrection)
class PositionCorrectionAdmin(SupervisedAdmin):
    portfolio_field = "portfolio"
    list_display = ["created_at", "portfolio", "instrument", "previous_quantity", "quantity", "user", "remote_addr"]
    list_filter = [PORTFOLIO_FILTER, "instrument"]
    search_fields = ["reason", "user__username", "client_id", "correlation_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
