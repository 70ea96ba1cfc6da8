"""Access that outlives the handshake.

A socket is admitted once, but its session can end (logout, expiry), its account can be
deactivated or lose the staff or superuser flag, and its permissions can shrink. Each gateway
process checks its open sockets every `REVALIDATE_SECONDS` against the database, and signals from
Django's auth tell every process at once (through the channel layer) to check a user's sockets now.

A socket decides by its permission set alone (a superuser's holds every permission), and a check
that reloads the set also hands the socket its account as the database has it now, so no flag
read at the handshake outlives a change.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from realtime.runtime.connections import connections
from realtime.runtime.loops import per_loop
from realtime.wire.protocol import CloseCode
from realtime.runtime.threads import on_database_thread

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """Whether a connection may stay open, and with which permissions."""

    allowed: bool
    close_code: int = CloseCode.NORMAL
    reason: str = ""
    permissions: frozenset[str] | None = None
    # The account as the database has it now, given with `permissions`.
    user: Any = field(default=None, compare=False)

    def changes(self, permissions: frozenset[str], user: Any = None) -> bool:
        """Whether a socket holding `permissions` for `user` has anything to do on this verdict."""
        if not self.allowed:
            return True
        if self.permissions is None:
            return False
        return self.permissions != permissions or (
            self.user is not None and user is not None and account_flags(self.user) != account_flags(user)
        )


def account_flags(user) -> tuple[bool, bool, bool]:
    """Return the flags of an account that access depends on besides its permissions."""
    return (bool(user.is_active), bool(user.is_staff), bool(user.is_superuser))


TOKEN_KEY_PREFIX = "token:"


def token_session_key(token_id: int) -> str:
    """Return the key under which a token-authenticated socket is checked in place of a session."""
    return f"{TOKEN_KEY_PREFIX}{token_id}"


def _live_tokens(keys: set[str]) -> set[str]:
    if not keys:
        return set()
    from realtime.models import AccessToken

    ids = [int(key[len(TOKEN_KEY_PREFIX) :]) for key in keys]
    live = AccessToken.objects.filter(pk__in=ids, revoked_at__isnull=True).values_list("pk", flat=True)
    return {token_session_key(pk) for pk in live}


def session_fingerprint(session_key: str | None) -> str:
    """Return a hash that names a session without revealing its key."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()


def _live_sessions(keys: set[str]) -> set[str]:
    if not keys:
        return set()
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session

        return set(
            Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now()).values_list(
                "session_key", flat=True
            )
        )
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return {key for key in keys if store(session_key=key).load()}


def access_verdicts(
    checks: list[tuple[int, str | None, str | None]], *, with_permissions: bool
) -> dict[tuple[int, str | None], Verdict]:
    """Judge (user id, session key, session auth hash) triples against the database."""
    keys = {key for _, key, _ in checks if key}
    tokens = {key for key in keys if key.startswith(TOKEN_KEY_PREFIX)}
    live = _live_sessions(keys - tokens) | _live_tokens(tokens)
    users = {user.pk: user for user in get_user_model().objects.filter(pk__in={uid for uid, _, _ in checks})}
    permissions: dict[int, frozenset[str]] = {}
    verdicts = {}
    for user_id, session_key, auth_hash in set(checks):  # sockets of one session are judged once
        user = users.get(user_id)
        if session_key not in live:
            verdict = Verdict(False, CloseCode.SESSION_ENDED, "session ended")
        elif user is None or not user.is_active or not user.is_staff:
            verdict = Verdict(False, CloseCode.ACCESS_REVOKED, "account no longer has staff access")
        elif auth_hash is None or not constant_time_compare(auth_hash, user.get_session_auth_hash()):
            verdict = Verdict(False, CloseCode.SESSION_ENDED, "password changed")
        else:
            if with_permissions and user_id not in permissions:
                permissions[user_id] = load_permissions(user)
            verdict = Verdict(True, permissions=permissions.get(user_id), user=user if with_permissions else None)
        verdicts[(user_id, session_key)] = verdict
    return verdicts


def load_permissions(user) -> frozenset[str]:
    """Return the user's permissions, leaving nothing cached on the user object.

    Django keeps three sets of permission names on the user for later calls; a socket keeps its
    user for its whole life and never asks again, so those sets would only cost memory.
    """
    permissions = frozenset(user.get_all_permissions())
    for name in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(name, None)
    return permissions


class PermissionCache:
    """The permissions of the users with open sockets in this process, loaded once per user.

    All sockets of a user share one set: a handshake costs no permission queries when the user
    has another socket here, and memory holds each user's permissions once. Every permission
    check (signals, the periodic reload) refreshes an entry, an access change announced for the
    user drops it at once, and it goes with the user's last socket here. A process only keeps
    entries it is told about: while it has a socket of the user, it is in the user's group.
    """

    def __init__(self) -> None:
        self._entries: dict[int, frozenset[str]] = {}
        self._holders: dict[int, int] = {}  # sockets per user that loaded through this cache

    async def load(self, user) -> frozenset[str]:
        """Return the user's permissions for a new socket, which must `release` them when it ends."""
        permissions = self._entries.get(user.pk)
        if permissions is None:
            permissions = await on_database_thread(load_permissions)(user)
            self._entries.setdefault(user.pk, permissions)
        self._holders[user.pk] = self._holders.get(user.pk, 0) + 1
        return self._entries[user.pk]

    def release(self, user_id: int) -> None:
        holders = self._holders.get(user_id, 0) - 1
        if holders > 0:
            self._holders[user_id] = holders
        else:
            self._holders.pop(user_id, None)
            self._entries.pop(user_id, None)

    def refresh(self, user_id: int, permissions: frozenset[str]) -> None:
        if user_id in self._entries:
            self._entries[user_id] = permissions

    def forget(self, user_id: int) -> None:
        """Drop the user's entry (an access change was announced); the next socket loads anew."""
        self._entries.pop(user_id, None)

    def retain(self, holders: dict[int, int]) -> None:
        """Take the holder counts anew from the sockets open here (user id: sockets), dropping the others.

        Corrects the count after a handshake that loaded permissions but failed before its socket
        was registered, and so never released them.
        """
        self._holders = holders
        for user_id in self._entries.keys() - holders.keys():
            del self._entries[user_id]


get_permission_cache = per_loop(PermissionCache)


class Revalidator:
    """Check the open sockets of this process, periodically and on request."""

    PERMISSION_EVERY = 5  # rounds between full permission reloads (signals cover the rest)

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None
        self._round = 0

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="realtime-revalidator")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.REALTIME["REVALIDATE_SECONDS"])
            try:
                await self.check_all()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("revalidation of open connections failed; retrying")

    async def check_all(self) -> None:
        """Judge each session with sockets open once; now and then also close the idle sockets.

        The connection table keeps its sockets by session, so a round costs a query and a
        verdict per session, not a visit to each socket: sockets are visited only for a session
        whose verdict changes something, and by the sweep for idle ones, which runs every
        twelfth of the idle timeout (every 10 s with the 120 s default) rather than every round.
        """
        loop = asyncio.get_running_loop()
        config = settings.REALTIME
        self._round += 1
        sweep_every = max(1, int(config["IDLE_TIMEOUT_SECONDS"] / 12 / max(config["REVALIDATE_SECONDS"], 0.001)))
        if self._round % sweep_every == 0:
            self.sweep(loop)
        sessions = connections.sessions()
        if sessions:
            await _apply_verdicts(sessions, with_permissions=self._round % self.PERMISSION_EVERY == 0, loop=loop)

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this loop's sockets idle longer than the idle timeout; recount permission holders."""
        idle_limit = settings.REALTIME["IDLE_TIMEOUT_SECONDS"]
        idle_since = time.time() - idle_limit if idle_limit > 0 else None
        holders: dict[int, int] = {}
        for connection in connections:
            consumer = connection.consumer
            if getattr(consumer, "loop", None) is not loop:
                continue
            if idle_since is not None and connection.last_received < idle_since:
                consumer.end(CloseCode.IDLE_TIMEOUT, "idle timeout")
            holders[connection.user_id] = holders.get(connection.user_id, 0) + 1
        get_permission_cache().retain(holders)


async def check_consumers(consumers: list, *, with_permissions: bool) -> None:
    """Apply fresh verdicts to consumers (closing the ones whose access is gone)."""
    sessions: dict[tuple[int, str | None, str | None], list] = {}
    for consumer in consumers:
        connection = getattr(consumer, "connection", None)
        if connection is not None:  # else not admitted yet: nothing to judge
            sessions.setdefault(connection.session, []).append(connection)
    await _apply_verdicts(sessions, with_permissions=with_permissions)


async def _apply_verdicts(
    sessions: Mapping[tuple[int, str | None, str | None], Iterable],
    *,
    with_permissions: bool,
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Judge each session once and apply its verdict to its connections (those of `loop`, if given)."""
    verdicts = await on_database_thread(access_verdicts)(list(sessions), with_permissions=with_permissions)
    for (user_id, session_key, _), group in sessions.items():
        verdict = verdicts[(user_id, session_key)]
        if verdict.allowed and verdict.permissions is None:  # most rounds: nothing for any of them to do
            continue
        for connection in list(group):  # the table may change while verdicts are applied
            consumer = connection.consumer
            if (loop is None or getattr(consumer, "loop", None) is loop) and verdict.changes(
                consumer.permissions, consumer.user
            ):
                await consumer.apply_access(verdict)


get_revalidator = per_loop(Revalidator)


def session_auth_hash(session) -> str | None:
    return session.get(HASH_SESSION_KEY) if session is not None else None
