from django.contrib import admin

from .models import AlertRule, Analysis, PriceTick


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
