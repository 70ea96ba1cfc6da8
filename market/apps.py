from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = _("Market data and analysis")

    def ready(self) -> None:
        from . import receivers, signals
        from .models import AlertRule, Analysis, PriceTick
        from .sentiment.german import check_german_lexicon

        checks.register(check_german_lexicon)
        # The market's events, published on commit.
        signals.tick_recorded.connect(
            receivers.price_update_publish, sender=PriceTick, dispatch_uid="market.price_update"
        )
        signals.alert_fired.connect(receivers.alert_publish, sender=AlertRule, dispatch_uid="market.alert")
        signals.analysis_completed.connect(
            receivers.analysis_complete_publish, sender=Analysis, dispatch_uid="market.analysis_complete"
        )
