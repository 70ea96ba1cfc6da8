from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortfolioConfig(AppConfig):
    name = "portfolio"
    verbose_name = _("Portfolio")

    def ready(self) -> None:
        from . import receivers, signals
        from .models import Portfolio

        # The events of a portfolio's changes, published on commit.
        signals.position_changed.connect(
            receivers.position_changed_publish, sender=Portfolio, dispatch_uid="portfolio.position_changed.publish"
        )
        signals.value_changed.connect(
            receivers.value_changed_publish, sender=Portfolio, dispatch_uid="portfolio.value_changed.publish"
        )
        signals.portfolio_updated.connect(
            receivers.portfolio_updated_publish, sender=Portfolio, dispatch_uid="portfolio.portfolio_updated.publish"
        )
