"""Operations endpoints over HTTP: Prometheus metrics, liveness, readiness, monitoring pages."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Callable
from functools import wraps

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from aktienanalyse.texts import code_strings

from realtime.connection import drain

from realtime.runtime import metrics
from realtime.wire.events import EVENT_SCHEMAS, MONITOR_PERMISSION
from realtime.monitoring import gateway_snapshot

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
        response = HttpResponse(
            "Forbidden\n" if status == 403 else "Unauthorized\n", status=status, content_type="text/plain"
        )
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
    """Answer 200 when the database and the channel layer answer, else 503 (details only in the log).

    A draining process (realtime/connection/drain.py) answers 503 at once, so a balancer sends it no one new.
    """
    if drain.draining():
        return HttpResponse("draining\n", status=503, content_type="text/plain")
    try:
        await asyncio.wait_for(sync_to_async(_database_reachable)(), READINESS_TIMEOUT)
        await asyncio.wait_for(_channel_layer_reachable(), READINESS_TIMEOUT)
    except Exception as exc:
        logger.warning("not ready: %s: %s", type(exc).__name__, exc)
        return HttpResponse("not ready\n", status=503, content_type="text/plain")
    return HttpResponse("ready\n", content_type="text/plain")


def monitor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let in active staff with the monitoring permission; send others to log in or refuse them."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff and user.has_perm(MONITOR_PERMISSION)):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _monitoring_strings() -> dict[str, str]:
    """Return the texts the monitoring script shows, in the request's language (static/ts/monitoring.ts)."""
    return {
        "connected": _("Verbunden"),
        "disconnected": _("Verbindung getrennt"),
        "service_database": _("Datenbank"),
        "service_channel_layer": _("Channel-Layer"),
        "service_bus": _("Event-Bus"),
        "service_market_feed": _("Kurs-Feed"),
        "service_gateway": _("Gateway"),
        "health_online": _("in Ordnung"),
        "health_degraded": _("eingeschränkt"),
        "health_offline": _("ausgefallen"),
        "overall_health": _("{score:num} / 100 – {status}"),
        "last_tick_age": _("letzter Kurs vor {seconds:num} s"),
        "connections_open": _("{count:num} Verbindungen"),
        "health_unavailable": _("Systemzustand nicht verfügbar: {reason}"),
        "processes": _("{count:num} Prozess(e)"),
        "disconnect": _("Trennen"),
        "disconnect_prompt": _("Client {client_id} ({user}) trennen? Grund:"),
        "disconnected_client": _("Client {client_id} getrennt (Protokoll-Nr. {audit_id})."),
        "disconnect_failed": _("Trennen fehlgeschlagen: {reason}"),
        "trend_events": _("Events pro Sekunde"),
        "trend_connections": _("Verbindungen"),
        "trend_errors": _("Fehler je Messung"),
        "trend_refusals": _("Ablehnungen je Messung"),
        "stream_count": _("{count:num} Events"),
        "stream_count_paused": _("{count:num} Events, {held:num} während der Pause"),
        "stream_error": _("Fehler: {reason}"),
        "pause": _("Pause"),
        "resume": _("Fortsetzen"),
        "server_text": _("Text des Servers: {message}"),
        **code_strings(),
    }


def _monitoring_context(page: str, **context: object) -> dict[str, object]:
    """Return a monitoring page's context with its script's configuration (`monitoring-config`)."""
    config: SafeString = json_script({"strings": _monitoring_strings()}, "monitoring-config")
    return {"page": page, "monitoring_config": config, **context}


@monitor_required
def monitoring_page(request: HttpRequest) -> HttpResponse:
    """Show the live connections, event rates and recent errors of every gateway process."""
    return render(
        request, "monitoring/connections.html", _monitoring_context("connections", snapshot=gateway_snapshot())
    )


@monitor_required
def inspector_page(request: HttpRequest) -> HttpResponse:
    """Show a live stream of chosen event types with their payloads."""
    user = request.user
    event_types = sorted(
        name for name, schema in EVENT_SCHEMAS.items() if schema.permission is None or user.has_perm(schema.permission)
    )
    return render(request, "monitoring/inspector.html", _monitoring_context("inspector", event_types=event_types))
