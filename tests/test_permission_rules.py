"""Who holds a permission: only active staff holding it (core.permissions), on their own."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser

from core.exceptions import PermissionDenied
from core.permissions import staff_may, staff_require

PERMISSION = "trading.add_order"


def account(**flags):
    values = {"is_authenticated": True, "is_active": True, "is_staff": True, "is_superuser": False}
    values.update(flags)
    return SimpleNamespace(**values, has_perm=lambda permission: permission == PERMISSION)


# (account flags, held set, allowed?)
MAY = [
    ({}, None, True),
    ({}, {PERMISSION}, True),
    ({}, {"other.perm"}, False),
    ({}, set(), False),
    ({"is_authenticated": False}, {PERMISSION}, False),
    ({"is_active": False}, {PERMISSION}, False),
    ({"is_staff": False}, {PERMISSION}, False),
    ({"is_staff": False}, None, False),
]


@pytest.mark.parametrize(("flags", "held", "allowed"), MAY)
def test_only_active_staff_holding_the_permission_may(flags, held, allowed):
    user = account(**flags)

    assert staff_may(user, PERMISSION, held=held) is allowed
    if allowed:
        assert staff_require(user, PERMISSION, held=held) is None
    else:
        with pytest.raises(PermissionDenied) as refused:
            staff_require(user, PERMISSION, held=held)
        assert (refused.value.code, refused.value.message) == (
            "permission_denied",
            "You lack the permission 'trading.add_order'.",
        )


def test_nobody_and_an_anonymous_user_may_nothing():
    assert staff_may(None, PERMISSION) is False
    assert staff_may(AnonymousUser(), PERMISSION, held={PERMISSION}) is False
