"""The per-process permission cache: one load per user, and releases and drops that find nothing are no faults."""

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from realtime.connection.access import PermissionCache, load_permissions
from tests.fixtures.users import grant

PERMISSION = "trading.add_order"


@pytest.mark.django_db(transaction=True)
def test_a_second_socket_of_a_user_costs_no_permission_query(staff_user):
    grant(staff_user, PERMISSION)
    cache = PermissionCache()
    async_to_sync(cache.load)(staff_user)

    with CaptureQueriesContext(connection) as queries:
        second = async_to_sync(cache.load)(staff_user)

    assert second == frozenset({PERMISSION})
    assert queries.captured_queries == []


def test_releasing_or_forgetting_a_user_the_cache_does_not_hold_changes_nothing():
    cache = PermissionCache()
    cache._entries, cache._holders = {1: frozenset({"a"})}, {1: 1}

    cache.release(2)  # e.g. counted out by a sweep's recount before its socket ended
    cache.forget(2)

    assert (cache._entries, cache._holders) == ({1: frozenset({"a"})}, {1: 1})


def test_the_last_socket_of_a_forgotten_user_releases_without_an_entry():
    cache = PermissionCache()
    cache._entries, cache._holders = {1: frozenset({"a"})}, {1: 1}
    cache.forget(1)  # an access change was announced while the socket was open

    cache.release(1)

    assert (cache._entries, cache._holders) == ({}, {})


@pytest.mark.django_db
def test_a_deactivated_account_loads_no_permissions_and_leaves_nothing_on_the_user(staff_user):
    grant(staff_user, PERMISSION)
    staff_user.is_active = False

    assert load_permissions(staff_user) == frozenset()
    assert not {"_perm_cache", "_user_perm_cache", "_group_perm_cache"} & staff_user.__dict__.keys()
