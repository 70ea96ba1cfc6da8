from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class MarketConfig(AppConfig):
    name = "market"
    verbose_name = _("Market data and analysis")

    def ready(self) -> None:
        from .sentiment.german import check_german_lexicon

        checks.register(check_german_lexicon)
