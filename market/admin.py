from django.contrib import admin

from .models import AlertRule, Analysis, Fundamentals, NewsItem, PriceTick


@admin.register(PriceTick)
class PriceTickAdmin(admin.ModelAdmin):
    list_display = ["instrument", "price", "previous_price", "volume", "source", "at"]
    list_filter = ["instrument", "source"]
    date_hierarchy = "at"
    list_select_related = ["instrument"]


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    list_display = ["id", "instrument", "analysis_type", "status", "recommendation", "confidence_score", "completed_at"]
    list_filter = ["status", "recommendation", "analysis_type", "instrument"]
    search_fields = ["id", "instrument__symbol"]
    list_select_related = ["instrument"]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["user", "instrument", "condition", "threshold", "armed", "trigger_count", "last_triggered_at"]
    list_filter = ["condition", "armed", "instrument"]
    search_fields = ["user__username", "instrument__symbol"]
    list_select_related = ["user", "instrument"]


class ImportedOnlyAdmin(admin.ModelAdmin):
    """View and delete only: rows come from the import commands and providers, which check every value."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Fundamentals)
class FundamentalsAdmin(ImportedOnlyAdmin):
    list_display = ["instrument", "as_of", "source", "pe_ratio", "pb_ratio", "dividend_yield", "roe", "debt_to_equity"]
    list_filter = ["source", "instrument"]
    date_hierarchy = "as_of"
    list_select_related = ["instrument"]


@admin.register(NewsItem)
class NewsItemAdmin(ImportedOnlyAdmin):
    list_display = ["instrument", "published_at", "source", "language", "headline", "provider_score"]
    list_filter = ["source", "language", "instrument"]
    search_fields = ["headline", "instrument__symbol"]
    date_hierarchy = "published_at"
    list_select_related = ["instrument"]
