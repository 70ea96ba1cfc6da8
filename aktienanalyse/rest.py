"""The REST side's one translation of domain refusals into its error shape."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import DomainError, NotFound, PermissionDenied

STATUS_OF = {NotFound: status.HTTP_404_NOT_FOUND, PermissionDenied: status.HTTP_403_FORBIDDEN}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer a `DomainError` as `{"error", "code", ...details}`; leave the rest to DRF."""
    if isinstance(exc, DomainError):
        code = next((value for kind, value in STATUS_OF.items() if isinstance(exc, kind)), status.HTTP_400_BAD_REQUEST)
        return Response({"error": exc.message, "code": str(exc.code), **exc.details}, status=code)
    return drf_exception_handler(exc, context)
