"""An external news service built on aktienanalyse-events: it answers `get_news` and sends events.

Desks ask it for a symbol's news with the command `get_news` (`{"symbol": "SAP"}`); the answer
goes to that desk, and the sentiment it read goes to every subscriber as `analysis.complete`,
with a `market.alert` when the news is bad. Every `--interval` seconds it also sends the next
headline of its archive as an `info` alert.

    make example-service        # or: PYTHONPATH=clients/python/src python clients/python/examples/news_service.py

The gateway must forward the command: `BUS_FORWARDED_COMMANDS=get_news` (docs/service-library.md).
Redis and channel names come from REDIS_BUS_URL / REDIS_URL, BUS_EVENTS_CHANNEL and
BUS_COMMANDS_CHANNEL, as the gateway reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
import sys
import uuid
from decimal import Decimal

from aktienanalyse_events import (
    AnalysisCompleteEvent,
    CommandError,
    MarketAlertEvent,
    ServiceStatusEvent,
    UserCommandHandler,
)
from aktienanalyse_events.codec import utc_now_iso

# Headlines with a sentiment from -1 (bad) to 1 (good); a real service would read a news feed.
ARCHIVE = {
    "SAP": [
        ("SAP raises its cloud revenue outlook", Decimal("0.62")),
        ("SAP wins a large public-sector contract", Decimal("0.41")),
    ],
    "BAS": [("BASF cuts its full-year guidance", Decimal("-0.71")), ("BASF idles a steam cracker", Decimal("-0.38"))],
    "SIE": [("Siemens orders stay flat", Decimal("0.02"))],
}
BAD_NEWS = Decimal("-0.5")

logger = logging.getLogger("news_service")


def sentiment_of(symbol: str) -> Decimal:
    scores = [score for _, score in ARCHIVE[symbol]]
    return (sum(scores) / len(scores)).quantize(Decimal("0.01"))


def recommendation(sentiment: Decimal) -> str:
    return "buy" if sentiment >= Decimal("0.3") else "sell" if sentiment <= Decimal("-0.3") else "hold"


def build_service(handler: UserCommandHandler) -> None:
    """Register the service's commands on `handler`."""

    @handler.command("get_news")
    async def get_news(data: dict, client_id: str) -> dict:
        symbol = data.get("symbol")
        if not isinstance(symbol, str) or symbol not in ARCHIVE:
            raise CommandError(
                f"No news for {symbol!r}; known symbols: {', '.join(sorted(ARCHIVE))}.", code="not_found"
            )
        sentiment = sentiment_of(symbol)
        await handler.dispatcher.emit(
            AnalysisCompleteEvent(
                analysis_id=f"news-{uuid.uuid4().hex[:12]}",
                analysis_type="sentiment",
                symbol=symbol,
                result={"headlines": len(ARCHIVE[symbol]), "sentiment": sentiment},
                confidence_score=Decimal("0.80"),
                recommendation=recommendation(sentiment),
                completed_at=utc_now_iso(),
            )
        )
        if sentiment <= BAD_NEWS:
            await handler.dispatcher.emit_market_alert(
                MarketAlertEvent(
                    alert_type="news_sentiment",
                    symbol=symbol,
                    message=f"{symbol}: bad news ({ARCHIVE[symbol][0][0]})",
                    severity="warning",
                    trigger_value=sentiment,
                    current_value=sentiment,
                    threshold=BAD_NEWS,
                )
            )
        return {
            "symbol": symbol,
            "headlines": [{"title": title, "sentiment": score} for title, score in ARCHIVE[symbol]],
            "sentiment": sentiment,
        }


async def send_headlines(handler: UserCommandHandler, interval: float) -> None:
    """Send the archive's headlines one by one as `info` alerts, forever."""
    for symbol, (title, score) in itertools.cycle([(s, h) for s, hs in ARCHIVE.items() for h in hs]):
        await asyncio.sleep(interval)
        try:
            await handler.dispatcher.emit_market_alert(
                MarketAlertEvent(alert_type="news", symbol=symbol, message=title, severity="info", current_value=score)
            )
        except Exception:
            logger.exception("headline not sent")


async def main(interval: float) -> None:
    handler = UserCommandHandler(service_name="news-service", answer_unknown=False)
    build_service(handler)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await handler.start()
    await handler.dispatcher.emit(
        ServiceStatusEvent(service_name="news-service", status="online", timestamp=utc_now_iso())
    )
    headlines = loop.create_task(send_headlines(handler, interval)) if interval > 0 else None
    print(f"news-service ready: answering get_news on {handler.settings.commands_channel}", flush=True)
    await stopped.wait()
    if headlines is not None:
        headlines.cancel()
    await handler.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between headline alerts (0: none)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(main(arguments.interval))
