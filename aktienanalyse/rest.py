"""The REST side's one error shape: every refusal and failure under /api/ is `{"error", "code", ...}`.

- `exception_handler` (DRF's `EXCEPTION_HANDLER`) answers domain refusals (`DomainError`) and
  DRF's own exceptions (validation 400, 401, 403, 404, 405, 406, 415, 429) in that shape, keeping
  DRF's status and headers (`WWW-Authenticate`, `Retry-After`);
- `not_found` answers a path under /api/ that no route matches (including a non-numeric id),
  instead of Django's HTML 404 page;
- `ApiErrorMiddleware` answers any other exception under /api/ with a JSON 500 that names the
  logged error by id and never carries a traceback, whatever DEBUG says.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import DomainError, NotFound, PermissionDenied, RateLimited

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
STATUS_OF = {
    NotFound: status.HTTP_404_NOT_FOUND,
    PermissionDenied: status.HTTP_403_FORBIDDEN,
    RateLimited: status.HTTP_429_TOO_MANY_REQUESTS,
}


def error_body(message: str, code: str, **details: Any) -> dict[str, Any]:
    """Return the REST error shape."""
    return {"error": message, "code": code, **details}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer a domain refusal or a DRF exception in the error shape; leave the rest to the middleware."""
    response = _error_response(exc, context)
    if response is not None and context.get("request") is not None:
        # As JSON whatever the view renders otherwise (the schema view: YAML).
        context["request"].accepted_renderer = JSONRenderer()
        context["request"].accepted_media_type = JSONRenderer.media_type
    return response


def _error_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        code = next((value for kind, value in STATUS_OF.items() if isinstance(exc, kind)), status.HTTP_400_BAD_REQUEST)
        return Response(error_body(exc.message, str(exc.code), **exc.details), status=code)
    # Django's own refusals, as DRF's handler converts them.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("Invalid input.", "validation_error", fields=exc.detail)
        return response
    codes = exc.get_codes()
    details = {"retry_after": exc.wait} if isinstance(exc, exceptions.Throttled) and exc.wait is not None else {}
    response.data = error_body(str(exc.detail), codes if isinstance(codes, str) else exc.default_code, **details)
    return response


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Answer a path under /api/ that no route matches."""
    return JsonResponse(error_body("No API endpoint at this path.", "not_found"), status=status.HTTP_404_NOT_FOUND)


def server_error(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """Log an unexpected exception with an id and answer it with that id only."""
    error_id = uuid.uuid4().hex
    logger.error("REST request failed: %s %s (error_id=%s)", request.method, request.path, error_id, exc_info=exc)
    return JsonResponse(
        error_body("Internal server error.", "server_error", error_id=error_id),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


class ApiErrorMiddleware(MiddlewareMixin):
    """Answer an exception a view under /api/ raises (or its response's rendering) as a JSON 500."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        return server_error(request, exception)
