"""`manage.py event_bridge`: bridge the spec's Redis bus into the channel layer, outside daphne."""

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime.bus.bridge import BusBridge, ClaimingPublisher

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Subscribe to the spec's event bus channel and publish each valid message into the channel "
        "layer for every gateway process. Run it with BUS_BRIDGE=external (on the gateways too), so "
        "the gateways do not bridge themselves; several may run, each message is published once."
    )

    def handle(self, *args, **options):
        if not settings.REALTIME_BUS["URL"]:
            raise CommandError("Set REDIS_URL or REDIS_SENTINELS (or REDIS_BUS_URL): the bridge needs the bus Redis.")
        if settings.REALTIME_BUS["BRIDGE"] != "external":
            raise CommandError(
                "BUS_BRIDGE is not 'external': the gateway processes bridge the bus themselves, and a "
                "second bridge would deliver every event twice. Set BUS_BRIDGE=external everywhere."
            )
        if "hosts" not in settings.CHANNEL_LAYERS["default"].get("CONFIG", {}):
            raise CommandError("The channel layer is in memory: set REDIS_URL or REDIS_SENTINELS so gateways share it.")
        asyncio.run(self.bridge())

    async def bridge(self) -> None:
        publisher = ClaimingPublisher()
        publisher.start()
        bridge = BusBridge(publisher)
        await bridge.start()
        self.stdout.write(f"bridging {bridge.channel} into the channel layer (Ctrl-C stops)")
        await asyncio.Event().wait()
