"""Bearer-token authentication of WebSocket handshakes, for the command-line tools.

A handshake with `Authorization: Bearer <key>` is authenticated by that token alone: a valid,
unrevoked token of an active staff member gives its user, anything else an anonymous one (which
the consumer refuses). Handshakes without the header keep the session of the cookie. An open
token socket is re-checked like a session socket (`access.py`): revoking the token, or the user
losing staff status or changing the password, closes it.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from .services import access_token_authenticate


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
            token = await database_sync_to_async(access_token_authenticate)(key=key) if key else None
            if token is None:
                scope = dict(scope, user=AnonymousUser())
            else:
                # The periodic access check judges this socket by its token instead of a session.
                scope = dict(scope, user=token.user, session=None, access_token_id=token.pk)
        return await super().__call__(scope, receive, send)
