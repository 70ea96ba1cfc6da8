"""The gateway process's own memory and CPU in get_system_status, and their alerts."""

from __future__ import annotations

import pytest

from market import probes
from market.status import StatusMonitor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_status_monitor")]


def burn_cpu(seconds: float) -> None:
    """Keep this process busy for `seconds` of its own CPU time."""
    import time

    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


async def test_gateway_memory_and_cpu_are_measured_and_alert_past_their_levels(settings, published, patient_thresholds):
    # given levels the test process is past: any resident memory, and a CPU level a busy loop beats
    settings.MARKET = {
        **settings.MARKET,
        "MEMORY_ALERT_MB": 1,
        "MEMORY_CRITICAL_MB": 10**9,
        "CPU_ALERT_PERCENT": 5,
        "CPU_CRITICAL_PERCENT": 10**6,
    }
    monitor = StatusMonitor(cpu=probes.CpuMeter(min_span=0.1))
    burn_cpu(0.2)

    # when the monitor checks
    result = await monitor.check()

    # then the gateway reports its own resident memory and CPU, and both alerts go out once
    gateway = result["services"]["gateway"]
    assert gateway["memory_rss_mb"] > 1 and gateway["cpu_percent"] > 5
    alerts = {a["alert_type"]: a for a in published.data("system.performance_alert")}
    assert (alerts["memory_usage"]["service_name"], alerts["memory_usage"]["metric_name"]) == (
        "gateway",
        "memory_rss_mb",
    )
    assert (alerts["memory_usage"]["severity"], alerts["memory_usage"]["threshold"]) == ("warning", 1)
    assert float(alerts["memory_usage"]["current_value"]) == gateway["memory_rss_mb"]
    assert alerts["cpu_usage"]["metric_name"] == "cpu_percent"
    assert float(alerts["cpu_usage"]["current_value"]) == gateway["cpu_percent"]
    burn_cpu(0.2)
    await monitor.check()
    assert sorted(a["alert_type"] for a in published.data("system.performance_alert")) == ["cpu_usage", "memory_usage"]


def test_cpu_is_measured_over_the_window_and_not_over_a_moment():
    clock, cpu = [0.0], [0.0]
    meter = probes.CpuMeter(lambda: probes.ProcessUsage(None, cpu[0]), window=10, min_span=2, clock=lambda: clock[0])
    clock[0], cpu[0] = 0.5, 0.5
    assert meter.measure()[1] is None  # half a second busy says little yet
    clock[0], cpu[0] = 4.0, 1.0
    assert meter.measure()[1] == 25.0
    clock[0], cpu[0] = 14.0, 1.0
    assert meter.measure()[1] == 0.0  # the base moved to t=4: idle since


async def test_cpu_alert_hovering_at_its_level_goes_out_once_per_repeat_interval(settings, published):
    # given a warning level of 80 % (critical 95 %), cleared below 72 %, repeated at most every 300 s
    settings.MARKET = {
        **settings.MARKET,
        "CPU_ALERT_PERCENT": 80,
        "CPU_CRITICAL_PERCENT": 95,
        "RESOURCE_ALERT_CLEAR": 0.9,
        "RESOURCE_ALERT_REPEAT": 300,
    }
    clock = [0.0]
    monitor = StatusMonitor(clock=lambda: clock[0])

    async def at(second: float, percent: float) -> list[tuple[str, float]]:
        clock[0] = second
        await monitor._resource_alert("cpu_usage", "cpu_percent", percent, 80, 95, "2026-12-06T23:00:00Z")
        return [(a["severity"], a["current_value"]) for a in published.data("system.performance_alert")]

    # when CPU hovers around the level, then one warning: 79 % does not clear it
    assert await at(0, 81) == [("warning", 81)]
    assert await at(10, 79) == [("warning", 81)]
    assert await at(20, 82) == [("warning", 81)]
    # a rise to critical goes out at once
    assert await at(30, 96) == [("warning", 81), ("critical", 96)]
    # cleared below 72 % and back within the repeat interval: nothing
    assert await at(40, 50) == [("warning", 81), ("critical", 96)]
    assert await at(50, 85) == [("warning", 81), ("critical", 96)]
    # once the repeat interval since the last alert has passed, the standing warning goes out again
    assert await at(331, 85) == [("warning", 81), ("critical", 96), ("warning", 85)]
    assert await at(340, 86) == [("warning", 81), ("critical", 96), ("warning", 85)]
