"""A protocol client for the command-line tools (`ws_client`, `tail_events`), on `websockets`.

It authenticates with a bearer token (`manage.py issue_token`) or a session id, sends the Origin
of the server itself (the gateway refuses handshakes without an allowed origin) and keeps the
server's JSON text as it came, so exact decimals reach the terminal unchanged.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

import websockets
from django.conf import settings
from django.core.management.base import CommandError
from websockets.typing import Origin

DEFAULT_URL = "ws://127.0.0.1:8000/ws/"


def add_connection_arguments(parser: Any) -> None:
    parser.add_argument(
        "--url", default=os.environ.get("GATEWAY_WS_URL", DEFAULT_URL), help="WebSocket URL (env GATEWAY_WS_URL)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("GATEWAY_TOKEN"),
        help="bearer token from `manage.py issue_token` (env GATEWAY_TOKEN; prefer it, arguments show in `ps`)",
    )
    parser.add_argument(
        "--session", default=os.environ.get("GATEWAY_SESSION"), help="a session id (env GATEWAY_SESSION)"
    )
    parser.add_argument("--client-id", default=None, help="reconnect under this client id")
    parser.add_argument("--origin", default=None, help="Origin header (default: the server's own)")


def connect(options: dict[str, Any]) -> Any:
    """Return the `websockets` connect context for the tool's options."""
    url = options["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise CommandError(f"--url must be a ws:// or wss:// URL; got {url!r}.")
    if options.get("client_id"):
        url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{options['client_id']}"
    headers = {}
    if options.get("token"):
        headers["Authorization"] = f"Bearer {options['token']}"
    elif options.get("session"):
        headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={options['session']}"
    else:
        raise CommandError("Give --token (or GATEWAY_TOKEN) or --session (or GATEWAY_SESSION) to authenticate.")
    origin = Origin(options.get("origin") or f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}")
    return websockets.connect(url, additional_headers=headers, origin=origin, max_size=None)


def is_connection_failure(error: Exception) -> bool:
    """Tell whether an error means the gateway could not be reached or refused the handshake."""
    return isinstance(error, (OSError, ConnectionError, asyncio.TimeoutError)) or type(error).__module__.startswith(
        "websockets"
    )


def refused_message(error: Exception) -> str:
    return (
        f"The gateway refused the connection ({error}). Check the URL, that the token or session belongs "
        "to an active staff member and is not revoked, and that the host is in DJANGO_ALLOWED_HOSTS."
    )
