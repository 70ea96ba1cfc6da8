from django.urls import re_path

from realtime.consumers import EventConsumer

# `/ws/` for a new client, `/ws/<client_id>` when the spec's client reconnects with its id.
websocket_urlpatterns = [re_path(r"^ws(?:/(?P<client_id>[^/]*))?/?$", EventConsumer.as_asgi())]
