"""WebSocket commands of market data: analyses, recommendations, alert rules, system status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any


from realtime.api import CommandContext, SYSTEM_PERMISSION, command, on_background_thread, on_command_threads

from . import alerts, selectors
from .analysis import analysis_run, analysis_start

logger = logging.getLogger(__name__)

# Analyses in flight, kept referenced until done so none is garbage-collected midway.
_running: set[asyncio.Task] = set()


@command("start_analysis")
async def start_analysis(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Start a technical, fundamental or sentiment analysis of an instrument; `analysis.complete` follows."""
    analysis = await on_command_threads(analysis_start)(
        user=ctx.user,
        symbol=data.get("symbol"),
        analysis_type=data.get("analysis_type", "technical"),
        parameters=data.get("parameters", {}),
    )
    task = asyncio.get_running_loop().create_task(_run_analysis(analysis.id))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return {
        "analysis_id": str(analysis.id),
        "status": analysis.status,
        "symbol": analysis.instrument.symbol,
        "analysis_type": analysis.analysis_type,
        "parameters": analysis.parameters,
        "message": "Analysis started; analysis.complete follows.",
        "message_code": "analysis_started",
    }


async def _run_analysis(analysis_id: Any) -> None:
    try:
        await on_background_thread(analysis_run)(analysis_id=analysis_id)
    except Exception:
        logger.error("analysis %s did not complete", analysis_id)


@command("get_recommendations")
async def get_recommendations(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Return the latest recommendation of each instrument, or of `symbol`."""
    symbol = data.get("symbol")
    if symbol is not None:
        symbol = (await on_command_threads(selectors.instrument_for_symbol)(symbol=symbol)).symbol
    return {"recommendations": await on_command_threads(_recommendations)(symbol)}


def _recommendations(symbol: str | None) -> list[dict[str, Any]]:
    return [selectors.recommendation_data(analysis=a) for a in selectors.analysis_latest_list(symbol=symbol)]


@command("subscribe_alerts")
async def subscribe_alerts(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Store an alert rule (above, below, change_percent, volume_spike, volatility); `market.alert` fires once per crossing."""
    rule = await on_command_threads(alerts.alert_rule_create)(
        user=ctx.user,
        symbol=data.get("symbol"),
        condition=data.get("condition"),
        threshold=data.get("threshold"),
        window=data.get("window"),
    )
    stored = await on_command_threads(lambda: selectors.alert_rule_data(rule=rule))()
    return {
        **stored,
        "message": "Alert rule stored; market.alert is sent to your connections when it triggers.",
        "message_code": "alert_rule_stored",
    }


@command("list_alerts")
async def list_alerts(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Return your alert rules."""

    def load() -> list[dict[str, Any]]:
        return [selectors.alert_rule_data(rule=rule) for rule in selectors.alert_rule_list(user=ctx.user)]

    return {"alerts": await on_command_threads(load)()}


@command("remove_alert")
async def remove_alert(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Remove one of your alert rules by its `alert_id`."""
    await on_command_threads(alerts.alert_rule_delete)(user=ctx.user, alert_id=data.get("alert_id"))
    return {"alert_id": data["alert_id"], "removed": True}


@command("get_system_status", permission=SYSTEM_PERMISSION)
async def get_system_status(ctx: CommandContext, data: dict[str, Any]) -> dict[str, Any]:
    """Measure the database, channel layer, feed and connections now and report overall health."""
    from .status import status_monitor

    return await status_monitor().check()
