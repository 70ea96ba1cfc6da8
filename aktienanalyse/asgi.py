"""ASGI entry point: `python -m realtime.server aktienanalyse.asgi:application` (daphne with the
gateway's adapter, see realtime/server/); any ASGI server can serve it as it is.

HTTP goes to Django; WebSocket handshakes must come from an allowed origin (no cross-site
WebSocket hijacking) and carry a Django session or a bearer token (`realtime/connection/gate.py`), before
the consumer checks the staff flag.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktienanalyse.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs the app registry)

from realtime.connection.gate import WebSocketGate  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": WebSocketGate(websocket_urlpatterns)})

# Start this process's background work (the in-process price feed) on the first request or
# socket: daphne has no ASGI lifespan, and the first scope is the first moment a loop runs.
from market.background import BackgroundServices  # noqa: E402

application = BackgroundServices(application)
