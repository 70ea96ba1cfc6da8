"""What `get_system_status` and `system.service_status` report: measured facts, nothing assumed.

Each check takes the measurements of `market.probes` (the database, the channel layer and,
where one is configured, the Redis event bus with their round-trip times; the age of the newest
tick the feed recorded, with what the feed reports about its provider), reads the connection
table of this process and the rate at which it writes frames. Overall health is computed from
those. The monitor runs the checks periodically in each gateway process, publishes
`system.service_status` per service when its status or reason changes (and as a heartbeat), and
`system.performance_alert` when a latency or error rate crosses its threshold (once per crossing),
or when the process's own memory or CPU passes its level (with hysteresis and a repeat limit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from realtime.api import connections, asend_event
from core.times import utc_now_iso

from .conf import market_setting
from .probes import CpuMeter, Probe, RateMeter, bus_probe, channel_layer_probe, database_probe, elapsed_ms, feed_facts

logger = logging.getLogger(__name__)

SERVICES = ("database", "channel_layer", "bus", "market_feed", "gateway")
HEALTH_PENALTY = {
    ("bus", "offline"): 20,
    ("bus", "degraded"): 10,
    ("database", "offline"): 50,
    ("database", "degraded"): 10,
    ("channel_layer", "offline"): 30,
    ("channel_layer", "degraded"): 10,
    ("market_feed", "offline"): 20,
    ("market_feed", "degraded"): 10,
}
STATUS_SCORE = {"online": 100, "degraded": 50, "offline": 0}
# The spec's `get_system_status` names its services `core`, `broker`, `event_bus` and
# `monitoring`, each a bare status. Each is the worst of the measured services it stands for here.
SPEC_SERVICES = {
    "core": ("gateway", "database"),  # commands, analyses and portfolios run in the gateway on the database
    "broker": ("database",),  # orders execute in-process against the database (and the feed's prices)
    "event_bus": ("channel_layer", "bus"),  # events reach sockets through the layer, services through the bus
}


delivery_rate = RateMeter(lambda: connections.messages_sent)


SEVERITY_RANK = {"warning": 1, "critical": 2}


@dataclass
class RaisedAlert:
    severity: str
    sent_at: float
    raised: bool = True


class StatusMonitor:
    """Check the services, remember recent outcomes, and publish status changes and alerts."""

    def __init__(self, *, cpu: CpuMeter | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.outcomes: dict[str, deque[bool]] = {name: deque(maxlen=20) for name in SERVICES}
        self.published: dict[str, tuple[tuple[str, str | None], float]] = {}
        self.alerting: set[str] = set()
        self.cpu = cpu or CpuMeter()
        self.clock = clock
        # The last alert of each resource: its severity, when it went out, whether it still stands.
        self.resource_alerts: dict[str, RaisedAlert] = {}
        self._stop: asyncio.Event | None = None
        self.running = False  # the periodic checks run (`run`)

    def error_rate(self, name: str) -> float:
        outcomes = self.outcomes[name]
        return round(sum(1 for ok in outcomes if not ok) / len(outcomes), 4) if outcomes else 0.0

    async def collect(self) -> dict[str, Any]:
        """Measure every service now and return the status `get_system_status` answers with."""
        started = time.perf_counter()
        database, layer, bus = await asyncio.gather(database_probe(), channel_layer_probe(), bus_probe())
        feed = await feed_facts()
        services: dict[str, dict[str, Any]] = {
            "database": {
                "status": self._latency_status(database, "DATABASE_LATENCY_ALERT_MS"),
                "response_time_ms": database.response_time_ms,
                "vendor": connection.vendor,
                "error": database.error,
            },
            "channel_layer": {
                "status": self._latency_status(layer, "CHANNEL_LAYER_LATENCY_ALERT_MS"),
                "response_time_ms": layer.response_time_ms,
                "backend": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
                "error": layer.error,
            },
            "market_feed": feed,
        }
        if bus is not None:
            services["bus"] = {
                "status": self._latency_status(bus, "BUS_LATENCY_ALERT_MS"),
                "response_time_ms": bus.response_time_ms,
                "error": bus.error,
            }
            self.outcomes["bus"].append(bus.status == "online")
        self.outcomes["database"].append(database.status == "online")
        self.outcomes["channel_layer"].append(layer.status == "online")
        self.outcomes["market_feed"].append(feed["status"] == "online")
        all_up = database.status == layer.status == "online"
        self.outcomes["gateway"].append(all_up)
        usage, cpu_percent = self.cpu.measure()
        services["gateway"] = {
            "status": "online",
            "response_time_ms": elapsed_ms(started),
            "memory_rss_mb": round(usage.rss_bytes / 2**20, 1) if usage.rss_bytes is not None else None,
            "cpu_percent": cpu_percent,
            "connections_open": len(connections),
            "events_delivered_per_second": round(delivery_rate.per_second(), 3),
            "messages_sent_total": connections.messages_sent,
            "messages_received_total": connections.messages_received,
            "process_id": os.getpid(),
        }
        for name, facts in services.items():
            facts["error_rate"] = self.error_rate(name)
        health = max(0, 100 - sum(HEALTH_PENALTY.get((name, facts["status"]), 0) for name, facts in services.items()))
        # The measured services (their facts) and after them the spec's summary names (a bare status).
        summary: dict[str, dict[str, Any] | str] = {**services, **self._spec_services(services)}
        return {
            "overall_health": health,
            "status": "online" if health >= 90 else "degraded" if health >= 40 else "offline",
            "services": summary,
            "timestamp": utc_now_iso(),
        }

    def _spec_services(self, services: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Return the spec's four service names with a bare status each, from the measured services.

        The broker is degraded while the feed is not online: orders still execute, at the last
        known prices. Monitoring is online while this monitor's periodic checks run.
        """

        def worst(*names: str) -> str:
            return min((services[name]["status"] for name in names if name in services), key=STATUS_SCORE.__getitem__)

        spec = {name: worst(*measured) for name, measured in SPEC_SERVICES.items()}
        if spec["broker"] == "online" and services["market_feed"]["status"] != "online":
            spec["broker"] = "degraded"
        spec["monitoring"] = "online" if self.running else "offline"
        return spec

    @staticmethod
    def _latency_status(probe: Probe, threshold_setting: str) -> str:
        if probe.status != "online":
            return "offline"
        return "degraded" if probe.response_time_ms > market_setting(threshold_setting) else "online"

    async def check(self) -> dict[str, Any]:
        """Collect the status and publish what changed; return the status."""
        status = await self.collect()
        try:
            await self.publish(status)
        except Exception as exc:  # the channel layer is down: the next check tries again
            logger.warning("system status could not be published: %s", exc)
        return status

    async def publish(self, status: dict[str, Any]) -> None:
        now = time.monotonic()
        heartbeat = market_setting("STATUS_HEARTBEAT")
        for name, facts in status["services"].items():
            if not isinstance(facts, dict):  # the spec's summary names (`SPEC_SERVICES`) are no service of their own
                continue
            said = (facts["status"], facts.get("reason"))
            previous = self.published.get(name)
            if previous is not None and previous[0] == said and now - previous[1] < heartbeat:
                continue
            await asend_event(
                "system.service_status",
                {
                    "service_name": name,
                    "status": facts["status"],
                    "health_score": STATUS_SCORE[facts["status"]],
                    "response_time_ms": facts.get("response_time_ms") or 0.0,
                    "error_rate": facts["error_rate"],
                    "timestamp": status["timestamp"],
                    "additional_info": {
                        k: v for k, v in facts.items() if k not in ("status", "response_time_ms", "error_rate")
                    },
                },
            )
            self.published[name] = (said, now)
        await self._performance_alerts(status)

    async def _performance_alerts(self, status: dict[str, Any]) -> None:
        services = status["services"]
        measured = [
            ("high_latency", "database", "response_time_ms", "DATABASE_LATENCY_ALERT_MS"),
            ("high_latency", "channel_layer", "response_time_ms", "CHANNEL_LAYER_LATENCY_ALERT_MS"),
            ("error_rate", "database", "error_rate", "ERROR_RATE_ALERT"),
            ("error_rate", "channel_layer", "error_rate", "ERROR_RATE_ALERT"),
        ]
        for alert_type, service, metric, setting in measured:
            value, threshold = services[service][metric], market_setting(setting)
            key = f"{service}.{metric}"
            if value is None or value <= threshold:
                self.alerting.discard(key)
                continue
            if key in self.alerting:
                continue
            await asend_event(
                "system.performance_alert",
                {
                    "alert_type": alert_type,
                    "service_name": service,
                    "metric_name": metric,
                    "current_value": value,
                    "threshold": threshold,
                    "severity": "critical" if value >= 2 * threshold else "warning",
                    "timestamp": status["timestamp"],
                },
            )
            self.alerting.add(key)
        gateway = services.get("gateway") or {}  # the process's own figures, when it measured them
        for alert_type, metric, warning, critical in (
            ("memory_usage", "memory_rss_mb", "MEMORY_ALERT_MB", "MEMORY_CRITICAL_MB"),
            ("cpu_usage", "cpu_percent", "CPU_ALERT_PERCENT", "CPU_CRITICAL_PERCENT"),
        ):
            await self._resource_alert(
                alert_type,
                metric,
                gateway.get(metric),
                market_setting(warning),
                market_setting(critical),
                status["timestamp"],
            )

    async def _resource_alert(
        self, alert_type: str, metric: str, value: float | None, warning: float, critical: float, timestamp: str
    ) -> None:
        """Alert on a gateway resource past its warning level, with hysteresis and a repeat limit.

        A figure that hovers around its level (CPU does) would otherwise alert at every other
        check: a raised alert clears only below `RESOURCE_ALERT_CLEAR` of the warning level, and
        the same alert goes out at most once per `RESOURCE_ALERT_REPEAT` seconds. A rise from
        warning to critical goes out at once.
        """
        if value is None:
            return
        now = self.clock()
        last = self.resource_alerts.get(alert_type)
        if value < warning:
            if last is not None and last.raised and value < warning * market_setting("RESOURCE_ALERT_CLEAR"):
                last.raised = False  # cleared; the repeat limit still counts from `last.sent_at`
            return
        severity = "critical" if value >= critical else "warning"
        worse = last is None or SEVERITY_RANK[severity] > SEVERITY_RANK[last.severity]
        if last is not None and not worse:
            if last.raised or now - last.sent_at < market_setting("RESOURCE_ALERT_REPEAT"):
                return
        await asend_event(
            "system.performance_alert",
            {
                "alert_type": alert_type,
                "service_name": "gateway",
                "metric_name": metric,
                "current_value": value,
                "threshold": critical if severity == "critical" else warning,
                "severity": severity,
                "timestamp": timestamp,
            },
        )
        self.resource_alerts[alert_type] = RaisedAlert(severity=severity, sent_at=now)

    async def run(self) -> None:
        """Check every STATUS_INTERVAL seconds until stopped."""
        self._stop = stop = asyncio.Event()
        self.running = True
        try:
            while not stop.is_set():
                try:
                    await self.check()
                except Exception:
                    logger.exception("system status check failed")
                try:
                    await asyncio.wait_for(stop.wait(), market_setting("STATUS_INTERVAL"))
                except asyncio.TimeoutError:
                    pass
        finally:
            self.running = False

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()


_monitor: StatusMonitor | None = None


def status_monitor() -> StatusMonitor:
    """Return this process's status monitor."""
    global _monitor
    if _monitor is None:
        _monitor = StatusMonitor()
    return _monitor
