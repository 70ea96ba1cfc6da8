"""The base of every domain exception the apps' services raise.

A service raises `OrderRejected("insufficient_cash", "…")`; the WebSocket command layer and the
REST layer each turn any `DomainError` into their own error shape in one place, with the code
kept, so a client sees the same reason whichever way it asked.
"""

from typing import Any


class DomainError(Exception):
    """A request the domain refuses, with a machine-readable code and a human message."""

    code = "domain_error"

    def __init__(self, code: str | None = None, message: str = "", **details: Any):
        super().__init__(message or code or self.code)
        if code:
            self.code = code
        self.message = message or str(self.code)
        self.details = details


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "permission_denied"


class ValidationFailed(DomainError):
    code = "validation_error"


class RateLimited(DomainError):
    """A request over a quota; `retry_after_seconds` in the details says when to ask again, where known."""

    code = "rate_limited"
