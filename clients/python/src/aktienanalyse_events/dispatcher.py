"""Publish events for the desks on the gateway's bus: the spec's `WebSocketEventDispatcher` (3.1).

`WebSocketEventDispatcher` is for asyncio services, `SyncWebSocketEventDispatcher` for the
others (a cron job, a Django or Flask view); both build the same message (`bus.event_message`)
and take the same arguments. Unlike the spec's, they raise `BusError` when Redis cannot take
the event, so a service knows its event is lost, and they return how many gateway processes
heard it.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from .bus import BusError, BusSettings, event_message
from .codec import encode

logger = logging.getLogger(__name__)


class _Dispatcher:
    """What both dispatchers share: settings, the spec's `emit_*` methods (each sends as `emit` does)."""

    def __init__(
        self,
        redis_url: str | None = None,
        channel: str | None = None,
        service_name: str | None = None,
        *,
        redis_client: Any = None,
    ):
        self.settings = BusSettings.resolve(redis_url=redis_url, events_channel=channel, service_name=service_name)
        self.redis_client = redis_client
        self._unheard = False

    def emit(self, event: Any, *, target_client: str | None = None, correlation_id: str | None = None) -> Any:
        raise NotImplementedError

    def emit_portfolio_update(self, event: Any, **options: Any) -> Any:
        """Send a portfolio event (`portfolio.update` or, as the spec's example does, `value_changed`)."""
        return self.emit(event, **options)

    def emit_position_changed(self, event: Any, **options: Any) -> Any:
        """Send a `portfolio.position_changed` event."""
        return self.emit(event, **options)

    def emit_order_filled(self, event: Any, **options: Any) -> Any:
        """Send a `trading.order_filled` event."""
        return self.emit(event, **options)

    def emit_price_update(self, event: Any, **options: Any) -> Any:
        """Send a `market.price_update` event."""
        return self.emit(event, **options)

    def emit_market_alert(self, event: Any, **options: Any) -> Any:
        """Send a `market.alert` event."""
        return self.emit(event, **options)

    def emit_system_error(self, event: Any, **options: Any) -> Any:
        """Send a `system.error` event."""
        return self.emit(event, **options)

    def _encode(self, event: Any, target_client: str | None, correlation_id: str | None) -> tuple[str, str]:
        message = event_message(
            event, service_name=self.settings.service_name, target_client=target_client, correlation_id=correlation_id
        )
        return message["event"], encode(message)

    def _published(self, event_type: str, receivers: int) -> int:
        """Log once when no gateway hears the events, and once when one does again."""
        if receivers == 0 and not self._unheard:
            logger.warning("%s published on %s, but no gateway listens there", event_type, self.settings.events_channel)
        elif receivers and self._unheard:
            logger.info("a gateway listens on %s again", self.settings.events_channel)
        self._unheard = receivers == 0
        return receivers


class WebSocketEventDispatcher(_Dispatcher):
    """Send events to the desks through the gateway's bus, from asyncio code."""

    async def initialize(self) -> None:
        """Open the Redis connection (done by the first `emit` if not called)."""
        if self.redis_client is None:
            self.redis_client = self.settings.async_client()

    async def emit(self, event: Any, *, target_client: str | None = None, correlation_id: str | None = None) -> int:
        """Publish `event` for its subscribers, or for one client; return how many gateway processes heard it."""
        event_type, text = self._encode(event, target_client, correlation_id)
        await self.initialize()
        try:
            receivers = await self.redis_client.publish(self.settings.events_channel, text)
        except (redis.RedisError, OSError) as exc:
            raise BusError(
                f"{event_type} not published: the bus at {self.settings.redis_url} is unavailable ({exc})"
            ) from exc
        return self._published(event_type, receivers)

    async def close(self) -> None:
        if self.redis_client is not None:
            await self.redis_client.aclose()
            self.redis_client = None

    async def __aenter__(self) -> WebSocketEventDispatcher:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


class SyncWebSocketEventDispatcher(_Dispatcher):
    """Send events to the desks through the gateway's bus, from code without an event loop."""

    def emit(self, event: Any, *, target_client: str | None = None, correlation_id: str | None = None) -> int:
        """Publish `event` for its subscribers, or for one client; return how many gateway processes heard it."""
        event_type, text = self._encode(event, target_client, correlation_id)
        if self.redis_client is None:
            self.redis_client = self.settings.sync_client()
        try:
            receivers = self.redis_client.publish(self.settings.events_channel, text)
        except (redis.RedisError, OSError) as exc:
            raise BusError(
                f"{event_type} not published: the bus at {self.settings.redis_url} is unavailable ({exc})"
            ) from exc
        return self._published(event_type, receivers)

    def close(self) -> None:
        if self.redis_client is not None:
            self.redis_client.close()
            self.redis_client = None

    def __enter__(self) -> SyncWebSocketEventDispatcher:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
