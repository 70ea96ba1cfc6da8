"""What happens in the market, as Django signals the market services send.

A receiver that publishes does so on commit (`market.receivers` turns them into the spec's
events); one that raises fails the sender's transaction, except for `price_ticked`.
"""

from django.dispatch import Signal

# A tick was stored and its instrument's last price moved, sent inside the tick's transaction
# before its alert rules are evaluated: `tick` (a `PriceTick`, its instrument loaded).
tick_recorded = Signal(use_caching=True)
# A tick committed: what follows a new price in other apps (resting orders execute, portfolios
# are revalued) connects here, and runs after the tick's transaction, each receiver in its own
# transactions, in the order the receivers were connected (see `TradingConfig.ready()`).
# Sent robustly: a receiver that raises is logged and the next one still runs.
# `instrument` (its `last_price` the new one), `price`, `tick`.
price_ticked = Signal(use_caching=True)
# An armed alert rule met its condition and was disarmed, inside the tick's transaction:
# `rule`, `tick`, `measured` (the value compared with the threshold).
alert_fired = Signal(use_caching=True)
# An analysis was computed and stored as complete, inside the transaction that stored it:
# `analysis` (its instrument loaded), `result`.
analysis_completed = Signal(use_caching=True)
