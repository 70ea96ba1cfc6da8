"""What the gateway itself stores: which user owns which client id."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ClientIdentity(models.Model):
    """A client id, bound to the user who first used it, so no one else can take it over."""

    client_id = models.CharField(_("client id"), max_length=64, primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="client_identities"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen at"), auto_now=True)

    class Meta:
        verbose_name = _("client identity")
        verbose_name_plural = _("client identities")
        permissions = [
            ("view_system_events", _("Can receive system events")),
            ("monitor_gateway", _("Can monitor gateway connections")),
            ("view_user_activity", _("Can receive the users' activity events")),
            ("announce", _("Can announce to every connection")),
        ]

    def __str__(self) -> str:
        return self.client_id


class ConnectionTermination(models.Model):
    """An operator's disconnect of a client from the monitoring page: who, when, which client, why."""

    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("operator"), on_delete=models.PROTECT, related_name="+"
    )
    client_id = models.CharField(_("client id"), max_length=64)
    client_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user of the client"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    operator_address = models.CharField(_("operator address"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("connection termination")
        verbose_name_plural = _("connection terminations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.client_id} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class AccessToken(models.Model):
    """A revocable bearer token of a staff member for tools (`ws_client`, `tail_events`); only its digest is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    key_digest = models.CharField(_("key digest"), max_length=64, unique=True)
    key_prefix = models.CharField(_("key prefix"), max_length=8)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("access token")
        verbose_name_plural = _("access tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"


class Announcement(models.Model):
    """An operator's message to every open connection (`manage.py announce`, the `announce` command, REST)."""

    class Level(models.TextChoices):
        INFO = "info", _("information")
        WARNING = "warning", _("warning")
        CRITICAL = "critical", _("critical")

    message = models.CharField(_("message"), max_length=500)
    level = models.CharField(_("level"), max_length=8, choices=Level.choices, default=Level.INFO)
    # Connections opened before this time get the announcement too; None: only those open when it was sent.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # None: sent from the console (`manage.py announce`).
    announced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("announced by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(_("channel"), max_length=16)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("announcement")
        verbose_name_plural = _("announcements")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.level}: {self.message[:60]}"
