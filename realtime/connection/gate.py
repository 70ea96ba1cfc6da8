"""The way in for a WebSocket handshake: origin, credentials and route, in one step.

Channels' usual stack (origin validator, cookie, session and auth middleware, our bearer-token
middleware, URL router) gives every socket six nested coroutines and as many copies of its scope,
all alive for as long as the socket is open, and a token handshake went to the database thread
twice (the session's user, then the token). The gate makes the same checks with Channels' and
Django's own functions, but holds one frame and one scope copy per socket and reads the
credentials in one database hop:

- the `Origin` must be the very origin the client addressed, scheme, host and port alike (default
  ports implied), or one of `CSRF_TRUSTED_ORIGINS`: Django's CSRF origin rules for a form POST
  (`origin_allowed`, docs/security.md). Otherwise, and for a path no route matches, the
  handshake is refused;
- `Authorization: Bearer <key>` (the command-line tools) authenticates by that token alone: a
  valid, unrevoked token of an active staff member gives its user, anything else an anonymous one,
  which the consumer refuses. An open token socket is re-checked like a session socket
  (`access.py`): revoking the token, or its user losing staff status, closes it;
- otherwise the session cookie gives the user exactly as for an HTTP request
  (`django.contrib.auth.get_user`, which also verifies the session's password hash);
- for an active staff user, the client id the socket uses is claimed in the same database hop
  (`realtime.services.client_identity_claim`);
- handshakes that wait for a handshake thread together (a reconnect storm) are read together
  (`HandshakeReads`): their sessions in one statement, their fresh client ids in another;
- the consumer then receives `user`, `session` (None for a token), `access_token_id` for a token,
  `client_id` for an admissible user, and `url_route` as Channels' router sets them.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module
from types import SimpleNamespace
from typing import Any, Callable
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends import db as db_sessions
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from django.utils.http import is_same_domain

from realtime.runtime import metrics
from realtime.runtime.logs import Throttle
from realtime.runtime.threads import on_database_threads
from realtime.runtime.loops import per_loop
from realtime.services import access_token_authenticate, client_identities_claim, client_identity_claim

logger = logging.getLogger("realtime.connection.gate")
_refusals = Throttle()


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """Return the first value of the header `name` (lower case) in the scope, or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin1")
    return None


def bearer_key(scope: dict[str, Any]) -> str | None:
    """Return the key of an `Authorization: Bearer` header, "" for another scheme, None without one."""
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def credentials(*, session_key: str | None, token_key: str | None, session: Any = None) -> dict[str, Any]:
    """Return the scope entries a handshake's credentials give (run on the database thread);
    `session` is the session store of `session_key` when it was read already."""
    if token_key is not None:
        token = access_token_authenticate(key=token_key) if token_key else None
        if token is None:
            return {"user": AnonymousUser(), "session": None}
        return {"user": token.user, "session": None, "access_token_id": token.pk}
    if session is None:
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # `get_user` reads nothing of a request but its session.
    return {"user": get_user(SimpleNamespace(session=session)), "session": session}


def handshake(*, session_key: str | None, token_key: str | None, requested_client_id: str | None) -> dict[str, Any]:
    """Return the scope entries of a handshake: its credentials and, for a user the consumer will
    admit (active staff), the client id it is to use, claimed in the same visit to the database
    thread, so a handshake costs one database hop (a reconnect storm costs one per socket)."""
    found = credentials(session_key=session_key, token_key=token_key)
    user = found["user"]
    if admissible(user):
        found["client_id"] = client_identity_claim(user=user, requested=requested_client_id)
    return found


def admissible(user: Any) -> bool:
    """Whether the consumer will admit the user (an active staff member): only then is a client id claimed."""
    return user.is_authenticated and user.is_active and user.is_staff


class _ReadSession(DbSessionStore):
    """A database session store whose row was read with others' (`read_sessions`): loading it
    is what `DbSessionStore.load` makes of that row, without a query of its own."""

    # A session's signature is salted with its store class's qualified name: this store signs and
    # verifies exactly as the database store it stands in for.
    __qualname__ = DbSessionStore.__qualname__

    def __init__(self, session_key: str | None, row: Any) -> None:
        super().__init__(session_key)
        self._row = row

    def load(self) -> dict[str, Any]:
        if self._row is None:  # unknown or expired: as the database store, a new session without a key
            self._session_key = None
            return {}
        return self.decode(self._row.session_data)


def read_sessions(session_keys: list[str | None]) -> list[Any]:
    """Return a session store for each key, the rows of all read in one statement when the
    sessions are in the database (`SESSION_ENGINE` the database backend); else plain stores."""
    engine = import_module(settings.SESSION_ENGINE)
    if engine is not db_sessions:
        return [engine.SessionStore(key) for key in session_keys]
    stores = [DbSessionStore(key) for key in session_keys]  # the store's own check of each key's form
    valid = {store.session_key for store in stores if store.session_key is not None}
    rows = {}
    if valid:
        model = DbSessionStore.get_model_class()
        rows = {
            row.session_key: row for row in model.objects.filter(session_key__in=valid, expire_date__gt=timezone.now())
        }
    return [_ReadSession(store.session_key, rows.get(store.session_key)) for store in stores]


def handshakes(requests: list[dict[str, Any]]) -> list[dict[str, Any] | Exception]:
    """`handshake` for handshakes waiting together, in three statements plus one per user: their
    sessions in one, each session's user, the fresh client ids of all in one
    (`client_identities_claim`). A handshake that fails gives its exception, the others their entries."""
    by_session = [r for r in requests if r["token_key"] is None]
    stores = dict(zip(map(id, by_session), read_sessions([r["session_key"] for r in by_session])))
    results: list[dict[str, Any] | Exception] = []
    claims: list[tuple[int, Any, str | None]] = []
    for request in requests:
        try:
            found = credentials(
                session_key=request["session_key"], token_key=request["token_key"], session=stores.get(id(request))
            )
        except Exception as exc:
            results.append(exc)
            continue
        if admissible(found["user"]):
            claims.append((len(results), found["user"], request["requested_client_id"]))
        results.append(found)
    if claims:
        try:
            client_ids: list[str] | Exception = client_identities_claim(
                [(user, requested) for _, user, requested in claims]
            )
        except Exception as exc:
            client_ids = exc
        for n, (position, _, _) in enumerate(claims):
            if isinstance(client_ids, Exception):
                results[position] = client_ids
            else:
                results[position]["client_id"] = client_ids[n]  # type: ignore[index]
    return results


def _handshake_threads() -> int:
    return settings.REALTIME["HANDSHAKE_THREADS"]


class HandshakeReads:
    """The handshakes of this loop waiting for the database, read in batches on the handshake threads.

    A handshake that finds a thread free is read at once, in a batch with those that arrived in
    the same turn of the loop; while every thread is busy (a reconnect storm), the handshakes
    arriving meanwhile wait and go together, up to `BATCH` at a time, so the storm costs a
    session statement and a client-id statement per batch instead of per socket.
    """

    BATCH = 50

    def __init__(self) -> None:
        self.waiting: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self.running = 0

    async def read(self, **request: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        found: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.waiting.append((request, found))
        if len(self.waiting) == 1:
            loop.call_soon(self._start)  # once the handshakes of this turn have arrived
        return await found

    def _start(self) -> None:
        threads = settings.REALTIME["HANDSHAKE_THREADS"]
        while self.waiting and self.running < threads:
            batch, self.waiting = self.waiting[: self.BATCH], self.waiting[self.BATCH :]
            self.running += 1
            asyncio.get_running_loop().create_task(self._read(batch), name="realtime-handshakes")

    async def _read(self, batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]) -> None:
        results: list[Any]
        try:
            # Handshakes share nothing on the database side, so they need not queue on the thread
            # the feed and the monitor use, nor behind the commands.
            read = on_database_threads(handshakes, name="handshake", count=_handshake_threads)
            results = await read([request for request, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        finally:
            self.running -= 1
        for (_, found), result in zip(batch, results):
            if found.done():  # the handshake was given up meanwhile
                continue
            if isinstance(result, Exception):
                found.set_exception(result)
            else:
                found.set_result(result)
        self._start()


_handshake_reads = per_loop(HandshakeReads)


DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme (http/https), lower-case host, port


def parse_origin(value: str | None) -> Origin | None:
    """Return the scheme, host and port of an `Origin` value, or None for `null`, junk or a path."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if parts.scheme not in DEFAULT_PORTS or parts.path or parts.query or parts.fragment:
        return None
    domain, port = split_domain_port(parts.netloc)
    if not domain:
        return None
    return parts.scheme, domain, int(port) if port else DEFAULT_PORTS[parts.scheme]


def request_secure(scope: dict[str, Any]) -> bool:
    """Say whether the client reached us over TLS, trusting the proxy only as `SECURE_PROXY_SSL_HEADER` says."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = header(scope, name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1"))
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme", "ws") in ("wss", "https")


def request_origin(scope: dict[str, Any]) -> Origin | None:
    """Return the origin the client addressed (Django's `get_host` rules), or None for a host not allowed."""
    host = header(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    host = host or header(scope, b"host")
    if not host:
        return None
    domain, port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = "https" if request_secure(scope) else "http"
    return scheme, domain, int(port) if port else DEFAULT_PORTS[scheme]


def trusted_origins() -> tuple[set[Origin], list[Origin]]:
    """Return `CSRF_TRUSTED_ORIGINS` as exact origins and as `*.` subdomain patterns."""
    exact: set[Origin] = set()
    patterns: list[Origin] = []
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        parsed = parse_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
        if parsed is None:
            continue
        if wildcard:
            patterns.append((parsed[0], "." + parsed[1], parsed[2]))
        else:
            exact.add(parsed)
    return exact, patterns


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Say whether the handshake's `Origin` is the one the client addressed, or a trusted one."""
    origin = parse_origin(header(scope, b"origin"))
    if origin is None:
        return False
    if origin == request_origin(scope):
        return True
    exact, patterns = trusted_origins()
    scheme, domain, port = origin
    return origin in exact or any(
        (scheme, port) == (p_scheme, p_port) and is_same_domain(domain, p_domain)
        for p_scheme, p_domain, p_port in patterns
    )


def refuse_handshake(reason: str, scope: dict[str, Any], detail: str, *, level: int = logging.WARNING) -> None:
    """Count a refused handshake by reason and log why, at most one line per reason every 10 s.

    Anyone can repeat a refused handshake at will, so the log is throttled; the counter
    (`realtime_handshakes_refused_total{reason}`) counts each. Header values are the client's and
    are logged quoted and cut short.
    """
    metrics.handshake_refused(reason)
    unlogged = _refusals.admit(reason)
    if unlogged is None:
        return
    client = scope.get("client") or (None, None)
    more = f" ({unlogged} more refused for this reason since the last line)" if unlogged else ""
    logger.log(
        level,
        "websocket refused (reason=%s): %s (address=%s origin=%.200r path=%.200r)%s",
        reason,
        detail,
        client[0],
        header(scope, b"origin"),
        scope.get("path"),
        more,
    )


class WebSocketGate:
    """ASGI application for `websocket` scopes: checks the handshake, then runs the routed consumer."""

    def __init__(self, routes: list[Any]):
        self.routes = routes

    def resolve(self, path: str) -> tuple[Callable, dict[str, Any]] | None:
        for route in self.routes:
            match = route.pattern.match(path.lstrip("/"))
            if match:
                remaining, args, kwargs = match
                if not remaining:
                    return route.callback, {"args": args, "kwargs": kwargs}
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        route = self.resolve(scope["path"]) if scope["type"] == "websocket" else None
        if route is None:
            refuse_handshake("no_route", scope, "no WebSocket route for this path")
            return await WebsocketDenier()(scope, receive, send)
        if not origin_allowed(scope):
            refuse_handshake("origin", scope, "the Origin is neither the addressed origin nor a trusted one")
            return await WebsocketDenier()(scope, receive, send)
        app, url_route = route
        cookie = header(scope, b"cookie")
        session_key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME) if cookie else None
        found = await _handshake_reads().read(
            session_key=session_key,
            token_key=bearer_key(scope),
            requested_client_id=url_route["kwargs"].get("client_id") or None,
        )
        return await app(dict(scope, url_route=url_route, path_remaining="", **found), receive, send)
