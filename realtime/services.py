"""Writes of the gateway's own state."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import ClientIdentity
from .protocol import CLIENT_ID_RE


def client_identity_claim(*, user: AbstractBaseUser, requested: str | None) -> str:
    """Return the client id a connection of `user` uses.

    A well-formed id that is new, or already the user's, is kept (and bound to the user on first
    use); an id of another user or a malformed one is replaced with a fresh id.
    """
    if requested and CLIENT_ID_RE.fullmatch(requested):
        try:
            with transaction.atomic():
                identity, _ = ClientIdentity.objects.get_or_create(client_id=requested, defaults={"user": user})
        except IntegrityError:  # claimed by someone else at the same moment
            identity = ClientIdentity.objects.get(client_id=requested)
        if identity.user_id == user.pk:
            ClientIdentity.objects.filter(pk=identity.pk).update(last_seen_at=timezone.now())
            return identity.client_id
    client_id = str(uuid.uuid4())
    ClientIdentity.objects.create(client_id=client_id, user=user)
    return client_id
