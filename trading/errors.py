"""The trading services' refusals, each a domain error with its code (core.exceptions)."""

from __future__ import annotations

from core.exceptions import DomainError


class OrderRejected(DomainError):
    """An order the broker refuses for a business reason (cash, holdings, no price)."""

    code = "order_rejected"


class OrderConflict(DomainError):
    """A request that contradicts an order's state or an earlier request."""

    code = "order_conflict"
