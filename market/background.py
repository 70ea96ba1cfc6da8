"""Starting and stopping a server process's background work: the in-process price feed and the
status monitor, on the server's event loop.

`BackgroundServices` starts them at the first request or connection (daphne has no ASGI lifespan,
so the first scope is the earliest moment a running loop exists). Its own module because it needs
both the feed and the status monitor, and the status monitor reads the feed (`market.feed`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .conf import channel_layer_in_memory, market_setting
from .feed import Background, PriceFeed, backgrounds, feed_in_process_enabled
from .status import status_monitor

logger = logging.getLogger("market.feed")


def background_start() -> Background:
    """Start the in-process feed and the status monitor on the running loop, once per loop."""
    loop = asyncio.get_running_loop()
    background = backgrounds.get(loop)
    if background is not None:
        return background
    background = backgrounds[loop] = Background()
    _stop_before_server_shutdown(loop)
    if feed_in_process_enabled():
        try:
            background.feed = PriceFeed.from_settings()
        except ImproperlyConfigured as exc:
            background.feed_error = str(exc)
            logger.error("price feed not started: %s", exc)
        else:
            background.tasks.append(loop.create_task(background.feed.run(), name="market-feed"))
    elif market_setting("FEED_IN_PROCESS") and not channel_layer_in_memory():
        logger.info("price feed not started in this gateway process: with Redis, run `manage.py market_feed`")
    if market_setting("STATUS_INTERVAL") > 0:
        background.tasks.append(loop.create_task(status_monitor().run(), name="system-status"))
    return background


async def background_stop() -> None:
    """Stop this loop's background work and wait for it (a feed round in progress completes)."""
    background = backgrounds.pop(asyncio.get_running_loop(), None)
    if background is None:
        return
    if background.feed is not None:
        background.feed.stop()
    status_monitor().stop()
    await asyncio.gather(*background.tasks, return_exceptions=True)


def _stop_before_server_shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """Make a running daphne stop this loop's background work before its shutdown stops the loop."""
    # A feed round runs on a database thread and publishes its ticks back through this loop
    # (async_to_sync in an on_commit hook). Daphne's SIGTERM/SIGINT handler stops the reactor,
    # and with it the loop; a round caught in flight then waits forever for the loop, and the
    # interpreter's exit waits forever for that thread. Stopping the background work first lets
    # the round complete while the loop still runs.
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not reactor.running:
        return
    from twisted.internet.defer import Deferred  # only under a running twisted reactor (daphne)

    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(background_stop(), loop=loop))
    )


class BackgroundServices:
    """ASGI middleware that starts the process's background work on the first request or socket."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            background_start()
        return await self.app(scope, receive, send)
