"""The desk's roles as Django groups: who trades, who supervises, who runs the gateway.

`manage.py demo_data` creates these groups with exactly these permissions; docs/permissions.md
explains each. A role is a set of permissions, not a rule of its own: every surface asks for the
permission (`core.permissions`), so a site may compose other groups from them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    group: str
    permissions: tuple[str, ...]


TRADER = Role(
    "Handel",
    (
        "portfolio.view_instrument",
        "portfolio.view_portfolio",
        "portfolio.view_position",
        "trading.view_order",
        "trading.add_order",
        "trading.change_order",
        "trading.view_fill",
        "trading.view_orderaudit",
    ),
)
SUPERVISOR = Role(
    "Aufsicht",
    (
        "portfolio.view_instrument",
        "portfolio.view_portfolio",
        "portfolio.view_position",
        "portfolio.change_position",
        "portfolio.view_positioncorrection",
        "portfolio.supervise_portfolios",
        "trading.view_order",
        "trading.change_order",
        "trading.view_fill",
        "trading.view_orderaudit",
        "realtime.view_user_activity",
    ),
)
OPERATOR = Role(
    "Betrieb",
    (
        "realtime.view_system_events",
        "realtime.monitor_gateway",
        "realtime.view_connectiontermination",
        "realtime.view_user_activity",
        "realtime.announce",
        "realtime.view_announcement",
    ),
)
ROLES = (TRADER, SUPERVISOR, OPERATOR)
