from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = _("Real-time gateway")

    def ready(self) -> None:
        # Each app registers its WebSocket command handlers in its own `commands` module.
        autodiscover_modules("commands")
        from realtime import signals  # noqa: F401  (connects the auth signal receivers)
        from realtime import monitoring  # noqa: F401  (registers the monitoring commands)
        from realtime import announcements  # noqa: F401  (registers the `announce` command)
        from realtime.bus.bridge import start_local_bridge
        from realtime.delivery.fanout import start_bridge_with
        from realtime.server.checks import check_server_adapter

        start_bridge_with(start_local_bridge)  # the fan-out starts the bus bridge (delivery does not import the bus)

        checks.register(check_server_adapter, checks.Tags.compatibility)
