"""Bearer-token authentication of WebSocket handshakes, for the command-line tools.

A handshake with `Authorization: Bearer <key>` is authenticated by that token alone: a valid,
unrevoked token of an active staff member gives its user, anything else an anonymous one (which
the consumer refuses). Handshakes without the header keep the session of the cookie.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from .services import access_token_user


def bearer_key(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, key = value.decode("latin1").partition(" ")
            return key.strip() if scheme.lower() == "bearer" else ""
    return None


class BearerTokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        key = bearer_key(scope)
        if key is not None:
            user = await database_sync_to_async(access_token_user)(key=key) if key else None
            scope = dict(scope, user=user or AnonymousUser())
        return await super().__call__(scope, receive, send)
