"""What happens to an order, as Django signals the trading services send.

Each is sent with `sender=Order` inside the transaction that wrote the change, under the
portfolio's lock, with:

- `order`: the order as written (its instrument loaded);
- `member_ids`: the ids of the portfolio's members, read once under the lock (`PortfolioBook`);
- `correlation_id`: the request's correlation id, or None.

A receiver that publishes does so on commit (`trading.receivers` turns them into the spec's
`trading.*` events), so nothing is published for a transaction that rolls back. A receiver that
raises fails the service's transaction. Receivers run in the order they were connected.

No signal is sent for a modification: the protocol has no event for it, and a modification
that crosses the market sends `order_filled`.
"""

from django.dispatch import Signal

# A new order, in the status it starts in (pending or open); a refused one sends `order_failed`.
order_created = Signal(use_caching=True)
# A fill of an order; `fill` is the new `Fill`, `order` carries the cumulative filled quantity.
order_filled = Signal(use_caching=True)
# An order cancelled; `order.reason` says why.
order_cancelled = Signal(use_caching=True)
# An order refused when placed (rejected) or that could not be executed (failed), with its reason.
order_failed = Signal(use_caching=True)
