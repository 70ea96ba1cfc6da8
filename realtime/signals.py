"""Auth changes that must reach open sockets at once: each handler is one call to a notifier."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from realtime.connection.access import session_fingerprint
from realtime.delivery.dispatch import anotify_access_changed, asend_message
from realtime.delivery.messages import ACCESS, user_group

logger = logging.getLogger(__name__)
User = get_user_model()


def notify_access_changed(user_ids) -> None:
    """After the commit, ask every gateway process to check these users' sockets again."""

    def publish() -> None:
        for user_id in set(user_ids):
            try:
                async_to_sync(anotify_access_changed)(user_id)
            except Exception:  # the periodic check still closes them within seconds
                logger.warning("could not notify gateway processes about user %s", user_id)

    transaction.on_commit(publish)


@receiver(user_logged_out)
def close_sockets_of_ended_session(sender, request, user, **kwargs):
    if user is not None and request is not None and request.session.session_key:
        message = {
            "type": ACCESS,
            "group": user_group(user.pk),
            "ended_session": session_fingerprint(request.session.session_key),
        }
        try:
            async_to_sync(asend_message)(message)
        except Exception:
            logger.warning("could not notify gateway processes about a logout")


@receiver(post_save, sender=User)
def user_saved(sender, instance, created, update_fields=None, **kwargs):
    if not created and set(update_fields or ()) != {"last_login"}:
        notify_access_changed([instance.pk])


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
def user_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        notify_access_changed([instance.pk] if not reverse else (pk_set or []))


@receiver(m2m_changed, sender=Group.permissions.through)
def group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        groups = [instance] if not reverse else Group.objects.filter(pk__in=pk_set or [])
        notify_access_changed(User.objects.filter(groups__in=groups).values_list("pk", flat=True))
