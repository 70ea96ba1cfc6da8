"""Run the simulated price feed as its own process (the deployment with Redis)."""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from market.conf import channel_layer_in_memory, market_setting
from market.feed import PriceFeed
from realtime.dispatch import run_and_publish


class Command(BaseCommand):
    help = (
        "Publish simulated market.price_update ticks for the instruments with a price. Run exactly one "
        "of these next to the gateway processes when REDIS_URL is set; with the in-memory layer the "
        "server runs the feed itself."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=None, help="seconds between rounds (default: MARKET_FEED_INTERVAL)")
        parser.add_argument("--rate", type=float, default=None, help="rounds per second (alternative to --interval)")
        parser.add_argument("--symbols", default="", help="comma-separated symbols (default: every instrument with a price)")
        parser.add_argument("--ticks", type=int, default=None, help="stop after this many rounds")
        parser.add_argument("--seed", type=int, default=None, help="seed of the random walk, for a repeatable run")

    def handle(self, *args, interval, rate, symbols, ticks, seed, **options):
        if interval is not None and rate is not None:
            raise CommandError("give --interval or --rate, not both")
        if rate is not None:
            if rate <= 0:
                raise CommandError("--rate must be positive")
            interval = 1 / rate
        interval = interval or market_setting("FEED_INTERVAL")
        if interval <= 0:
            raise CommandError("--interval must be positive")
        if ticks is not None and ticks < 1:
            raise CommandError("--ticks must be at least 1")
        if channel_layer_in_memory():
            self.stderr.write(
                "warning: the channel layer is in-memory, so no gateway sees these ticks (they are stored "
                "only); set REDIS_URL, or let the server run the feed itself"
            )
        chosen = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        feed = PriceFeed.from_settings(interval=interval, symbols=chosen, seed=seed)
        self.stdout.write(f"market feed: every {interval}s, symbols {', '.join(chosen) or 'all with a price'}")
        run_and_publish(self._run(feed, ticks))
        self.stdout.write(f"market feed stopped: {feed.rounds} rounds, {feed.ticks} ticks, {feed.failures} failed rounds")

    async def _run(self, feed: PriceFeed, rounds: int | None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, feed.stop)
        await feed.run(rounds=rounds)
