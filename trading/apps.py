from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = _("Trading")

    def ready(self) -> None:
        from market.signals import price_ticked
        from portfolio.receivers import price_ticked_revalue

        from . import receivers, signals
        from .models import Order

        # The events of an order's changes, published on commit.
        for signal, receiver in (
            (signals.order_created, receivers.order_created_publish),
            (signals.order_filled, receivers.order_filled_publish),
            (signals.order_cancelled, receivers.order_cancelled_publish),
            (signals.order_failed, receivers.order_failed_publish),
        ):
            signal.connect(receiver, sender=Order, dispatch_uid=f"trading.{receiver.__name__}")
        # A tick's consequences, in this order: resting orders execute at the new price, then the
        # portfolios holding the instrument are revalued, so their `price_update` value comes after
        # the fills' own. Receivers run in the order they were connected, and portfolio's
        # `ready()` runs before this one (INSTALLED_APPS), so trading, the app that books into
        # portfolios, connects both.
        price_ticked.connect(receivers.price_ticked_execute, dispatch_uid="trading.price_ticked_execute")
        price_ticked.connect(price_ticked_revalue, dispatch_uid="portfolio.price_ticked_revalue")
