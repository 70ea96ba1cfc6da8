"""How open sockets are judged on their own (realtime.connection.access): verdicts, sessions and
tokens, and the permission cache.
"""

from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from realtime.connection.access import (
    PermissionCache,
    Verdict,
    access_verdicts,
    account_flags,
    load_permissions,
    session_auth_hash,
    session_fingerprint,
    token_session_key,
)
from realtime.wire.protocol import CloseCode
from realtime.services import access_token_issue, access_token_revoke
from tests.fixtures.users import grant

PERMISSION = "trading.add_order"


# (verdict, socket permissions, socket user flags, verdict user flags, changes?)
def flagged(active=True, staff=True, superuser=False):
    return SimpleNamespace(is_active=active, is_staff=staff, is_superuser=superuser)


CHANGES = [
    (Verdict(False, CloseCode.SESSION_ENDED), frozenset(), None, True),
    (Verdict(True), frozenset({"a"}), None, False),
    (Verdict(True, permissions=frozenset({"a"})), frozenset({"a"}), None, False),
    (Verdict(True, permissions=frozenset({"a"})), frozenset({"b"}), None, True),
    (Verdict(True, permissions=frozenset({"a"}), user=flagged()), frozenset({"a"}), flagged(), False),
    (Verdict(True, permissions=frozenset({"a"}), user=flagged(superuser=True)), frozenset({"a"}), flagged(), True),
    (Verdict(True, permissions=frozenset({"a"}), user=flagged(staff=False)), frozenset({"a"}), flagged(), True),
    (Verdict(True, permissions=frozenset({"a"}), user=flagged(active=False)), frozenset({"a"}), flagged(), True),
    (Verdict(True, permissions=frozenset({"a"}), user=flagged()), frozenset({"a"}), None, False),
    (Verdict(True, permissions=frozenset({"a"})), frozenset({"a"}), flagged(), False),
]


@pytest.mark.parametrize(("verdict", "permissions", "user", "changes"), CHANGES)
def test_a_verdict_changes_a_socket_only_when_it_closes_it_or_its_rights_differ(verdict, permissions, user, changes):
    assert verdict.changes(permissions, user) is changes


def test_a_verdict_allows_with_a_normal_close_code_by_default():
    assert (Verdict(True).close_code, Verdict(True).reason, Verdict(True).permissions) == (CloseCode.NORMAL, "", None)
    assert account_flags(SimpleNamespace(is_active=1, is_staff=0, is_superuser="")) == (True, False, False)


def test_tokens_and_sessions_are_named_without_their_secrets():
    assert token_session_key(12) == "token:12"
    assert session_fingerprint("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert session_fingerprint(None) == session_fingerprint("")
    assert session_auth_hash(None) is None
    assert session_auth_hash({HASH_SESSION_KEY: "h"}) == "h"


@pytest.fixture
def session_of():
    def login(user) -> tuple[int, str, str]:
        store = SessionStore()
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return user.pk, store.session_key, user.get_session_auth_hash()

    return login


@pytest.mark.django_db
def test_open_sockets_are_judged_by_session_account_and_password(
    session_of, staff_user, other_staff_user, non_staff_user, superuser, django_user_model
):
    grant(staff_user, PERMISSION)
    alive = session_of(staff_user)
    ended = (staff_user.pk, "no-such-session", alive[2])
    demoted = session_of(non_staff_user)
    password_changed = session_of(other_staff_user)
    other_staff_user.set_password("new-pass-5678")
    other_staff_user.save()
    no_hash = (superuser.pk, session_of(superuser)[1], None)
    gone_key = session_of(superuser)[1]
    gone = (999_999, gone_key, "h")
    inactive = session_of(django_user_model.objects.create_user("ina", password="x-pass-1234", is_staff=True))
    django_user_model.objects.filter(username="ina").update(is_active=False)

    checks = [alive, alive, ended, demoted, password_changed, no_hash, gone, inactive]
    verdicts = access_verdicts(checks, with_permissions=True)

    revoked = Verdict(False, CloseCode.ACCESS_REVOKED, "account no longer has staff access")
    assert verdicts == {
        alive[:2]: Verdict(True, permissions=frozenset({PERMISSION})),
        ended[:2]: Verdict(False, CloseCode.SESSION_ENDED, "session ended"),
        demoted[:2]: revoked,
        password_changed[:2]: Verdict(False, CloseCode.SESSION_ENDED, "password changed"),
        no_hash[:2]: Verdict(False, CloseCode.SESSION_ENDED, "password changed"),
        gone[:2]: revoked,
        inactive[:2]: revoked,
    }
    assert verdicts[alive[:2]].user == staff_user
    assert access_verdicts([alive], with_permissions=False) == {alive[:2]: Verdict(True)}
    assert access_verdicts([alive], with_permissions=False)[alive[:2]].user is None
    assert access_verdicts([], with_permissions=True) == {}


@pytest.mark.django_db
def test_a_token_socket_is_judged_by_its_token_being_unrevoked(staff_user, other_staff_user):
    token, _ = access_token_issue(user=staff_user, name="cli")
    revoked, _ = access_token_issue(user=other_staff_user, name="cli")
    access_token_revoke(token=revoked)
    live_key, revoked_key = token_session_key(token.pk), token_session_key(revoked.pk)
    checks = [
        (staff_user.pk, live_key, staff_user.get_session_auth_hash()),
        (other_staff_user.pk, revoked_key, other_staff_user.get_session_auth_hash()),
    ]

    verdicts = access_verdicts(checks, with_permissions=True)

    assert verdicts[(staff_user.pk, live_key)].allowed is True
    assert verdicts[(other_staff_user.pk, revoked_key)] == Verdict(False, CloseCode.SESSION_ENDED, "session ended")


@pytest.mark.django_db
def test_sessions_of_a_non_database_engine_are_asked_of_their_store(settings, staff_user):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    store = SessionStore()
    store["x"] = 1
    store.create()

    verdicts = access_verdicts(
        [(staff_user.pk, store.session_key, staff_user.get_session_auth_hash())], with_permissions=False
    )

    assert verdicts[(staff_user.pk, store.session_key)] == Verdict(False, CloseCode.SESSION_ENDED, "session ended")


@pytest.mark.django_db
def test_loaded_permissions_leave_no_cache_on_the_user(staff_user):
    grant(staff_user, PERMISSION)

    assert load_permissions(staff_user) == frozenset({PERMISSION})
    assert not {"_perm_cache", "_user_perm_cache", "_group_perm_cache"} & staff_user.__dict__.keys()


@pytest.mark.django_db(transaction=True)
def test_the_permission_cache_holds_a_users_set_while_a_socket_holds_it(staff_user):
    grant(staff_user, PERMISSION)
    cache = PermissionCache()

    first = async_to_sync(cache.load)(staff_user)
    grant(staff_user, "trading.change_order")
    second = async_to_sync(cache.load)(staff_user)

    assert first == second == frozenset({PERMISSION})  # loaded once for both sockets
    cache.refresh(staff_user.pk, frozenset({"x"}))
    cache.refresh(12345, frozenset({"y"}))  # no socket of that user here: nothing kept
    assert async_to_sync(cache.load)(staff_user) == frozenset({"x"})
    assert 12345 not in cache._entries
    cache.release(staff_user.pk)
    cache.release(staff_user.pk)
    assert cache._entries == {staff_user.pk: frozenset({"x"})}
    cache.release(staff_user.pk)
    assert cache._entries == {} and cache._holders == {}
    assert async_to_sync(cache.load)(staff_user) == frozenset({PERMISSION, "trading.change_order"})
    cache.forget(staff_user.pk)
    assert cache._entries == {} and cache._holders == {staff_user.pk: 1}


def test_the_permission_cache_keeps_only_the_users_with_sockets_here():
    cache = PermissionCache()
    cache._entries = {1: frozenset({"a"}), 2: frozenset({"b"})}
    cache._holders = {1: 3, 2: 1}

    cache.retain({1: 1})

    assert (cache._entries, cache._holders) == ({1: frozenset({"a"})}, {1: 1})
    cache.release(1)
    assert (cache._entries, cache._holders) == ({}, {})


@pytest.mark.django_db
def test_a_reconnect_handshake_is_three_statements_in_one_hop(client, staff_user, other_staff_user):
    """Session, user and the client id's claim: a storm of reconnects costs no more per socket."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from realtime.connection.gate import handshake
    from realtime.models import ClientIdentity

    client.force_login(staff_user)
    session_key = client.cookies["sessionid"].value
    first = handshake(session_key=session_key, token_key=None, requested_client_id=None)["client_id"]
    theirs = ClientIdentity.objects.create(client_id="c" * 32, user=other_staff_user).client_id

    with CaptureQueriesContext(connection) as queries:
        again = handshake(session_key=session_key, token_key=None, requested_client_id=first)
    assert again["user"] == staff_user and again["client_id"] == first
    assert len(queries.captured_queries) == 3, [q["sql"] for q in queries.captured_queries]

    # another user's id is not taken over, and an anonymous handshake claims nothing
    assert handshake(session_key=session_key, token_key=None, requested_client_id=theirs)["client_id"] not in (
        theirs,
        first,
    )
    assert "client_id" not in handshake(session_key=None, token_key=None, requested_client_id=first)
