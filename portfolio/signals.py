"""What happens to a portfolio, as Django signals the portfolio services send.

Each is sent with `sender=Portfolio` inside the transaction that wrote the change, under the
portfolio's lock, with `portfolio`, `member_ids` (the ids of its members, read once under the
lock) and `correlation_id` (the request's, or None). A receiver that publishes does so on
commit (`portfolio.receivers` turns them into the spec's `portfolio.*` events). A receiver
that raises fails the service's transaction.
"""

from django.dispatch import Signal

# A position was bought into, sold from or corrected by hand: `instrument`, `action` ("buy",
# "sell" or "update"), `previous_quantity`, `quantity` (0: the position is gone) and `price`
# (of the fill, or the mark price of a correction).
position_changed = Signal(use_caching=True)
# The portfolio's value moved from `previous` (the last one announced) to `current`;
# `trigger_reason` says why ("order_filled", "price_update", "position_change", "manual_refresh").
value_changed = Signal(use_caching=True)
# The whole portfolio as its members see it now: `snapshot` (`portfolio_snapshot`).
portfolio_updated = Signal(use_caching=True)
