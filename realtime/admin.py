from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from realtime.models import AccessToken, Announcement, ConnectionTermination
from realtime.services import access_token_revoke


class RecordAdmin(admin.ModelAdmin):
    """A record the gateway writes itself: shown, never added, changed or deleted in the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConnectionTermination)
class ConnectionTerminationAdmin(RecordAdmin):
    list_display = ["created_at", "operator", "client_id", "client_user", "reason", "operator_address"]
    list_filter = ["operator"]
    search_fields = ["client_id", "reason", "operator__username", "client_user__username"]
    readonly_fields = list_display


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "key_prefix"]
    readonly_fields = ["user", "name", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["key_digest"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # issued with `manage.py issue_token`, which shows the key once

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset) -> None:
        for token in queryset:
            access_token_revoke(token=token)


@admin.register(Announcement)
class AnnouncementAdmin(RecordAdmin):
    """The record of announcements; they are sent with `manage.py announce`, the `announce` command or REST."""

    list_display = ["created_at", "level", "message", "announced_by", "channel", "expires_at"]
    list_filter = ["level", "channel"]
    search_fields = ["message", "announced_by__username"]
    readonly_fields = list_display
