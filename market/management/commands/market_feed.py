"""Run the price feed as its own process (the deployment with Redis)."""

from __future__ import annotations

import asyncio
import signal

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from market.conf import PROVIDERS, channel_layer_in_memory, market_setting
from market.feed import PriceFeed
from market.lease import Lease, LeaseLost, run_leased
from portfolio.models import Instrument
from realtime.api import run_and_publish

DEFAULT_LEASE_SECONDS = 6.0


class Command(BaseCommand):
    help = (
        "Publish market.price_update ticks from the configured provider (MARKET_PROVIDER: simulated, "
        "alpha_vantage, bitpanda or replay). Run exactly one of these next to the gateway processes when "
        "REDIS_URL is set; with the in-memory layer the server runs the feed itself."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval", type=float, default=None, help="seconds between rounds (default: MARKET_FEED_INTERVAL)"
        )
        parser.add_argument("--rate", type=float, default=None, help="rounds per second (alternative to --interval)")
        parser.add_argument(
            "--symbols",
            default="",
            help="comma-separated symbols (default: MARKET_FEED_SYMBOLS, else every instrument)",
        )
        parser.add_argument("--ticks", type=int, default=None, help="stop after this many rounds")
        parser.add_argument("--seed", type=int, default=None, help="seed of the random walk, for a repeatable run")
        parser.add_argument(
            "--provider", choices=PROVIDERS, default=None, help="where prices come from (default: MARKET_PROVIDER)"
        )
        parser.add_argument(
            "--replay-file", default=None, help="CSV file of the replay provider (default: MARKET_REPLAY_FILE)"
        )
        parser.add_argument(
            "--speed",
            type=float,
            default=None,
            help="replay speed, market seconds per second (default: MARKET_REPLAY_SPEED)",
        )
        parser.add_argument(
            "--loop", action="store_true", default=None, help="replay the file again from the start when it ends"
        )
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=DEFAULT_LEASE_SECONDS,
            help="with Redis: lifetime of the lease that lets one of several market_feed processes publish "
            "(the others stand by and take over within it); 0 runs without a lease",
        )

    def handle(self, *args, interval, rate, symbols, ticks, seed, provider, replay_file, speed, loop, **options):
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
        if speed is not None and not speed > 0:
            raise CommandError("--speed must be positive")
        lease_seconds = options["lease_seconds"]
        if not 0 <= lease_seconds < float("inf"):
            raise CommandError("--lease-seconds must be 0 or a positive number of seconds")
        if channel_layer_in_memory():
            self.stderr.write(
                "warning: the channel layer is in-memory, so no gateway sees these ticks (they are stored "
                "only); set REDIS_URL, or let the server run the feed itself"
            )
        chosen = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        provider_options = {
            "PROVIDER": provider,
            "REPLAY_FILE": replay_file,
            "REPLAY_SPEED": speed,
            "REPLAY_LOOP": loop,
        }
        try:
            feed = PriceFeed.from_settings(
                interval=interval, symbols=chosen, seed=seed, provider_options=provider_options
            )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        self._check_replay_symbols(feed)
        self.stdout.write(
            f"market feed: provider {feed.source}, every {interval}s, symbols {', '.join(chosen) or 'all instruments'}"
        )
        leased = lease_seconds > 0 and not channel_layer_in_memory()
        try:
            run_and_publish(self._run(feed, ticks, lease_seconds if leased else None))
        except LeaseLost as exc:
            raise CommandError(f"{exc}; exiting, to be started again as a standby") from None
        self.stdout.write(
            f"market feed stopped: {feed.rounds} rounds, {feed.ticks} ticks, {feed.failures} failed rounds"
            + (" (the replay has ended)" if feed.finished else "")
        )

    def _check_replay_symbols(self, feed: PriceFeed) -> None:
        """Refuse a replay file with symbols no instrument has, before anything plays."""
        file_symbols = getattr(feed.provider, "file_symbols", None)
        if not file_symbols:
            return
        known = set(Instrument.objects.filter(symbol__in=file_symbols).values_list("symbol", flat=True))
        unknown = [symbol for symbol in file_symbols if symbol not in known]
        if unknown:
            raise CommandError(f"the replay file names symbols no instrument has: {', '.join(unknown)}")

    async def _run(self, feed: PriceFeed, rounds: int | None, lease_seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()

        def stop() -> None:
            stopping.set()
            feed.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        if lease_seconds is None:
            await feed.run(rounds=rounds)
            return
        lease = Lease("market-feed", seconds=lease_seconds)
        try:
            await run_leased(lease, lambda: feed.run(rounds=rounds), stop_work=feed.stop, stopping=stopping)
        finally:
            await lease.close()
