"""Build on the Aktienanalyse real-time gateway: send events to the desks, answer their commands.

from aktienanalyse_events import MarketAlertEvent, WebSocketEventDispatcher

dispatcher = WebSocketEventDispatcher(service_name="news-service")
await dispatcher.emit(MarketAlertEvent(symbol="SAP", message="Guidance raised", severity="info"))
"""

from .bus import BusError, BusSettings
from .codec import decode, encode
from .commands import CommandError, UserCommandHandler
from .dispatcher import SyncWebSocketEventDispatcher, WebSocketEventDispatcher
from .events import *  # noqa: F403 (the generated event classes)
from .events import __all__ as _event_names

__all__ = [
    "BusError",
    "BusSettings",
    "CommandError",
    "SyncWebSocketEventDispatcher",
    "UserCommandHandler",
    "WebSocketEventDispatcher",
    "decode",
    "encode",
    *_event_names,
]
