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
        ]

    def __str__(self) -> str:
        return self.client_id
