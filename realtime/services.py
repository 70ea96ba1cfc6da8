"""Writes of the gateway's own state."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from aktienanalyse.exceptions import NotFound, PermissionDenied

from .models import AccessToken, ClientIdentity, ConnectionTermination
from .protocol import CLIENT_ID_RE


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
