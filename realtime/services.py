"""Writes of the gateway's own state."""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from collections.abc import Set
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.exceptions import NotFound, PermissionDenied, RateLimited, ValidationFailed
from core.permissions import staff_require

from realtime.delivery.dispatch import message_send_on_commit
from realtime.delivery.messages import to_all_message
from realtime.models import AccessToken, Announcement, ClientIdentity, ConnectionTermination
from realtime.wire.protocol import CLIENT_ID_RE, envelope
from core.times import isoformat


def client_identity_claim(*, user: AbstractBaseUser, requested: str | None) -> str:
    """Return the client id a connection of `user` uses.

    A well-formed id that is new, or already the user's, is kept (and bound to the user on first
    use); an id of another user or a malformed one is replaced with a fresh id.
    """
    if requested and CLIENT_ID_RE.fullmatch(requested):
        # The usual case, a reconnect with the user's own id, in one statement.
        if ClientIdentity.objects.filter(client_id=requested, user=user).update(last_seen_at=timezone.now()):
            return requested
        try:
            with transaction.atomic():
                identity, _ = ClientIdentity.objects.get_or_create(client_id=requested, defaults={"user": user})
        except IntegrityError:  # claimed by someone else at the same moment
            identity = ClientIdentity.objects.get(client_id=requested)
        if identity.user_id == user.pk:  # just bound to the user, by this call or a concurrent one
            return identity.client_id
    client_id = str(uuid.uuid4())
    ClientIdentity.objects.create(client_id=client_id, user=user)
    return client_id


def client_identities_claim(claims: list[tuple[AbstractBaseUser, str | None]]) -> list[str]:
    """`client_identity_claim` for each (user, requested id) of handshakes read together: the
    requested ids each as there, the fresh ids of all the others bound in one statement."""
    ids: list[str | None] = []
    fresh: list[ClientIdentity] = []
    for user, requested in claims:
        if requested and CLIENT_ID_RE.fullmatch(requested):
            ids.append(client_identity_claim(user=user, requested=requested))
        else:
            ids.append(None)
            fresh.append(ClientIdentity(client_id=str(uuid.uuid4()), user=user))
    if fresh:
        ClientIdentity.objects.bulk_create(fresh)
    given = iter(identity.client_id for identity in fresh)
    return [client_id if client_id is not None else next(given) for client_id in ids]


def client_identities_purge(*, unused_for: timedelta, dry_run: bool = False) -> int:
    """Forget the client ids no connection has used for `unused_for`; return how many (would) go.

    A forgotten id is unbound: a later connection may claim it as new. Sockets live at most a day
    under daphne's default `--websocket_timeout`, so an id still in use by an open socket was used
    within a day. Refuses a period under one day (`ValidationFailed`).
    """
    if unused_for < timedelta(days=1):
        raise ValidationFailed("invalid_retention", "Client ids are kept at least one day.", field="days")
    stale = ClientIdentity.objects.filter(last_seen_at__lt=timezone.now() - unused_for)
    if dry_run:
        return stale.count()
    _, deleted = stale.delete()
    return deleted.get(ClientIdentity._meta.label, 0)


def connection_termination_record(
    *, operator: AbstractBaseUser, client_id: str, reason: str, operator_address: str | None
) -> ConnectionTermination:
    """Record that `operator` disconnects `client_id`; refuse a client id that was never used."""
    identity = ClientIdentity.objects.filter(client_id=client_id).first()
    if identity is None:
        raise NotFound(message=f"No client with id {client_id!r} is known.", client_id=client_id)
    return ConnectionTermination.objects.create(
        operator=operator,
        client_id=client_id,
        client_user_id=identity.user_id,
        reason=reason[:200],
        operator_address=(operator_address or "")[:64],
    )


def access_token_issue(*, user: AbstractBaseUser, name: str) -> tuple[AccessToken, str]:
    """Issue a bearer token for an active staff member; return it and its key (shown only once)."""
    if not (user.is_active and user.is_staff):
        raise PermissionDenied(message="Only active staff members may hold access tokens.")
    key = secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        user=user, name=name[:100] or "token", key_digest=access_token_digest(key), key_prefix=key[:8]
    )
    return token, key


def access_token_revoke(*, token: AccessToken) -> None:
    """Revoke a token; connections it opens from now on are refused."""
    AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def access_token_authenticate(*, key: str) -> AccessToken | None:
    """Return the valid, unrevoked token of an active staff member with this key, and note its use."""
    token = (
        AccessToken.objects.select_related("user")
        .filter(key_digest=access_token_digest(key), revoked_at__isnull=True)
        .first()
    )
    if token is None or not (token.user.is_active and token.user.is_staff):
        return None
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def access_token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


ANNOUNCE_PERMISSION = "realtime.announce"
ANNOUNCEMENT_MAX_LENGTH = Announcement._meta.get_field("message").max_length
ANNOUNCEMENT_LONGEST_EXPIRY = 7 * 24 * 3600  # seconds
ANNOUNCEMENT_QUOTA_WINDOW = timedelta(minutes=1)
# Where an announcement came from (`Announcement.channel`).
ANNOUNCEMENT_CHANNELS = ("websocket", "rest", "console")


@transaction.atomic
def announcement_publish(
    *,
    message: Any,
    level: Any = Announcement.Level.INFO,
    expires_in: Any = None,
    user: AbstractBaseUser | None,
    channel: str,
    held: Set[str] | None = None,
) -> Announcement:
    """Record an announcement and send it to every open connection of every process on commit.

    `user` None is the console (`manage.py announce`), which holds the server and is neither asked
    for the permission nor counted. A user needs `realtime.announce` and may send at most
    `REALTIME_ANNOUNCEMENTS_PER_MINUTE`. With `expires_in` (seconds) connections opened before
    it runs out get the announcement too.
    """
    if user is not None:
        staff_require(user, ANNOUNCE_PERMISSION, held=held)
    text = _announcement_text(message)
    if level not in Announcement.Level.values:
        raise ValidationFailed(
            "validation_error", f"'level' must be one of {', '.join(Announcement.Level.values)}.", field="level"
        )
    if expires_in is not None and (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not 1 <= expires_in <= ANNOUNCEMENT_LONGEST_EXPIRY
    ):
        raise ValidationFailed(
            "validation_error",
            f"'expires_in' must be a whole number of seconds from 1 to {ANNOUNCEMENT_LONGEST_EXPIRY}.",
            field="expires_in",
        )
    if user is not None:
        _announcement_quota(user)
    now = timezone.now()
    announcement = Announcement.objects.create(
        message=text,
        level=level,
        expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
        announced_by=user,
        channel=channel,
    )
    frame = envelope(
        "system",
        "announcement",
        announcement_data(announcement=announcement),
        source_service=settings.REALTIME["SERVICE_NAME"],
    )
    message_send_on_commit(
        to_all_message(
            frame,
            announcement_id=announcement.pk,
            expires_at=announcement.expires_at.timestamp() if announcement.expires_at else None,
        )
    )
    return announcement


def announcement_data(*, announcement: Announcement) -> dict[str, Any]:
    """Return the `data` of the `system` / `announcement` message."""
    return {
        "announcement_id": str(announcement.pk),
        "message": announcement.message,
        "level": announcement.level,
        "expires_at": isoformat(announcement.expires_at) if announcement.expires_at else None,
        "announced_by": announcement.announced_by.get_username() if announcement.announced_by else None,
        "timestamp": isoformat(announcement.created_at),
    }


def _announcement_text(message: Any) -> str:
    if not isinstance(message, str):
        raise ValidationFailed("validation_error", "'message' must be a text.", field="message")
    text = message.strip()
    if not text:
        raise ValidationFailed("validation_error", "'message' must not be empty.", field="message")
    if len(text) > ANNOUNCEMENT_MAX_LENGTH:
        raise ValidationFailed(
            "validation_error",
            f"'message' may hold at most {ANNOUNCEMENT_MAX_LENGTH} characters; it has {len(text)}.",
            field="message",
            limit=ANNOUNCEMENT_MAX_LENGTH,
        )
    if any(ord(char) < 32 and char not in "\n\t" for char in text):
        raise ValidationFailed("validation_error", "'message' must not hold control characters.", field="message")
    return text


def _announcement_quota(user: AbstractBaseUser) -> None:
    """Refuse an announcement over the user's per-minute quota, counted on every process alike."""
    # The user's row is the lock: two requests at once cannot both pass the count.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    limit = settings.REALTIME["ANNOUNCEMENTS_PER_MINUTE"]
    now = timezone.now()
    recent = list(
        Announcement.objects.filter(announced_by=user, created_at__gt=now - ANNOUNCEMENT_QUOTA_WINDOW)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        retry_after = max(1, math.ceil((recent[-1] + ANNOUNCEMENT_QUOTA_WINDOW - now).total_seconds()))
        raise RateLimited(
            "rate_limited",
            f"At most {limit} announcements per minute; try again in {retry_after} s.",
            limit=limit,
            retry_after_seconds=retry_after,
        )
