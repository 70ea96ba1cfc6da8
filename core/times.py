"""Timestamps as the project writes them: UTC, millisecond precision, a `Z` suffix (the spec's form)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime) -> str:
    """Return an ISO-8601 UTC timestamp with millisecond precision and a `Z` suffix."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_iso() -> str:
    return isoformat(utc_now())
