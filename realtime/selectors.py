"""Reads of the gateway's own state."""

from __future__ import annotations

from django.utils import timezone

from realtime.models import Announcement


def announcement_current_list(*, limit: int) -> list[Announcement]:
    """Return the newest announcements that have not yet expired (those with an expiry only)."""
    return list(
        Announcement.objects.select_related("announced_by")
        .filter(expires_at__gt=timezone.now())
        .order_by("-created_at")[:limit]
    )
