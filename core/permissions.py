"""Whether a staff member holds a permission: one answer for the socket, REST, the desk and the admin.

Only active staff hold permissions here, whatever Django's backends say; a superuser holds every
one. A WebSocket passes the set it holds (`held`, reloaded whenever the user's access changes)
instead of asking the database for each command.
"""

from __future__ import annotations

from collections.abc import Set

from .exceptions import PermissionDenied


def staff_may(user, permission: str, *, held: Set[str] | None = None) -> bool:
    """Return whether `user` is active staff holding `permission`."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return False
    if held is not None:
        return permission in held
    return user.has_perm(permission)


def staff_require(user, permission: str, *, held: Set[str] | None = None) -> None:
    """Raise `PermissionDenied` unless `user` is active staff holding `permission`."""
    if not staff_may(user, permission, held=held):
        raise PermissionDenied("permission_denied", f"You lack the permission {permission!r}.")
