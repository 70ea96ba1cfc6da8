"""Operations endpoints over HTTP: Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from . import metrics

logger = logging.getLogger(__name__)

READINESS_TIMEOUT = 2.0


def _bearer_token_matches(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), expected.encode())


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Serve the Prometheus text format to staff or to a scraper holding METRICS_TOKEN."""
    user = request.user
    if not (_bearer_token_matches(request) or (user.is_authenticated and user.is_active and user.is_staff)):
        status = 403 if user.is_authenticated else 401
        response = HttpResponse("Forbidden\n" if status == 403 else "Unauthorized\n", status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


def healthz(request: HttpRequest) -> HttpResponse:
    """Answer that the process serves requests (liveness)."""
    return HttpResponse("ok\n", content_type="text/plain")


def _database_reachable() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer_reachable() -> None:
    layer = get_channel_layer()
    channel = f"readyz.{uuid.uuid4().hex}"
    await layer.send(channel, {"type": "readyz.probe"})
    await layer.receive(channel)


async def readyz(request: HttpRequest) -> HttpResponse:
    """Answer 200 when the database and the channel layer answer, else 503 (details only in the log)."""
    try:
        await asyncio.wait_for(sync_to_async(_database_reachable)(), READINESS_TIMEOUT)
        await asyncio.wait_for(_channel_layer_reachable(), READINESS_TIMEOUT)
    except Exception as exc:
        logger.warning("not ready: %s: %s", type(exc).__name__, exc)
        return HttpResponse("not ready\n", status=503, content_type="text/plain")
    return HttpResponse("ready\n", content_type="text/plain")
