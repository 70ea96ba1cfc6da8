"""Access rules on their own: who holds a permission, which handshake origins pass, how open sockets are judged."""

from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore

from core.exceptions import PermissionDenied
from core.permissions import staff_may, staff_require
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
from realtime.connection.gate import (
    bearer_key,
    credentials,
    header,
    origin_allowed,
    parse_origin,
    request_origin,
    request_secure,
    trusted_origins,
)
from realtime.wire.protocol import CloseCode
from realtime.services import access_token_issue, access_token_revoke
from tests.fixtures.users import grant

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
            "permission_denied", "You lack the permission 'trading.add_order'.",
        )


def test_nobody_and_an_anonymous_user_may_nothing():
    assert staff_may(None, PERMISSION) is False
    assert staff_may(AnonymousUser(), PERMISSION, held={PERMISSION}) is False


def scope(*headers: tuple[bytes, bytes], **extra) -> dict:
    return {"type": "websocket", "headers": list(headers), **extra}


def test_a_header_is_the_first_of_its_name_decoded_as_latin1():
    handshake = scope((b"host", b"a"), (b"x-test", b"caf\xe9"), (b"x-test", b"second"))

    assert header(handshake, b"x-test") == "café"
    assert header(handshake, b"origin") is None
    assert header({}, b"host") is None


@pytest.mark.parametrize(
    ("value", "key"),
    [(None, None), (b"Bearer abc", "abc"), (b"bearer  abc ", "abc"), (b"BEARER abc", "abc"), (b"Basic abc", ""),
     (b"Bearer", "")],
)
def test_a_bearer_key_is_read_from_the_authorization_header(value, key):
    handshake = scope((b"authorization", value)) if value is not None else scope()

    assert bearer_key(handshake) == key


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://desk.example", ("https", "desk.example", 443)),
        ("http://desk.example", ("http", "desk.example", 80)),
        ("http://Desk.Example:8000", ("http", "desk.example", 8000)),
        ("https://[::1]:8443", ("https", "[::1]", 8443)),
        (None, None),
        ("", None),
        ("null", None),
        ("ftp://desk.example", None),
        ("https://desk.example/", None),
        ("https://desk.example?x=1", None),
        ("https://desk.example#f", None),
        ("https://", None),
        ("http://[::1", None),
    ],
)
def test_an_origin_header_is_parsed_into_scheme_host_and_port(value, origin):
    assert parse_origin(value) == origin


@pytest.mark.parametrize(
    ("proxy_header", "headers", "scheme", "secure"),
    [
        (None, [], "wss", True),
        (None, [], "https", True),
        (None, [], "ws", False),
        (None, [(b"x-forwarded-proto", b"https")], "ws", False),
        (("HTTP_X_FORWARDED_PROTO", "https"), [(b"x-forwarded-proto", b"https, http")], "ws", True),
        (("HTTP_X_FORWARDED_PROTO", "https"), [(b"x-forwarded-proto", b"https, http, http")], "ws", True),
        (("HTTP_X_FORWARDED_PROTO", "https"), [(b"x-forwarded-proto", b"http")], "wss", False),
        (("HTTP_X_FORWARDED_PROTO", "https"), [], "wss", True),
    ],
)
def test_a_request_is_secure_by_its_scheme_or_the_trusted_proxy_header(settings, proxy_header, headers, scheme, secure):
    settings.SECURE_PROXY_SSL_HEADER = proxy_header

    assert request_secure(scope(*headers, scheme=scheme)) is secure


def test_a_scope_without_a_scheme_is_plain():
    assert request_secure({"headers": []}) is False


@pytest.mark.parametrize(
    ("allowed", "debug", "forwarded", "headers", "origin"),
    [
        (["desk.example"], False, False, [(b"host", b"desk.example")], ("http", "desk.example", 80)),
        (["desk.example"], False, False, [(b"host", b"desk.example:8000")], ("http", "desk.example", 8000)),
        (["desk.example"], False, False, [(b"host", b"evil.example")], None),
        (["desk.example"], False, False, [], None),
        (["desk.example"], False, False, [(b"host", b"")], None),
        ([], True, False, [(b"host", b"localhost:8000")], ("http", "localhost", 8000)),
        ([], True, False, [(b"host", b"evil.example")], None),
        ([], True, False, [(b"host", b"127.0.0.1:8000")], ("http", "127.0.0.1", 8000)),
        ([], True, False, [(b"host", b"[::1]:8000")], ("http", "[::1]", 8000)),
        ([], True, False, [(b"host", b"desk.localhost")], ("http", "desk.localhost", 80)),
        ([], False, False, [(b"host", b"localhost")], None),
        (["desk.example"], False, True, [(b"host", b"inner"), (b"x-forwarded-host", b"desk.example")],
         ("http", "desk.example", 80)),
        (["desk.example"], False, False, [(b"host", b"inner"), (b"x-forwarded-host", b"desk.example")], None),
        (["desk.example"], False, True, [(b"host", b"desk.example")], ("http", "desk.example", 80)),
    ],
)
def test_the_addressed_origin_follows_djangos_host_rules(settings, allowed, debug, forwarded, headers, origin):
    settings.ALLOWED_HOSTS, settings.DEBUG, settings.USE_X_FORWARDED_HOST = allowed, debug, forwarded
    settings.SECURE_PROXY_SSL_HEADER = None

    assert request_origin(scope(*headers, scheme="ws")) == origin


def test_a_secure_request_defaults_to_port_443(settings):
    settings.ALLOWED_HOSTS, settings.SECURE_PROXY_SSL_HEADER = ["desk.example"], None

    assert request_origin(scope((b"host", b"desk.example"), scheme="wss")) == ("https", "desk.example", 443)


def test_trusted_origins_are_split_into_exact_ones_and_subdomain_patterns(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://a.example", "https://*.b.example:8443", "junk", "http://*.c.example"]

    exact, patterns = trusted_origins()

    assert exact == {("https", "a.example", 443)}
    assert patterns == [("https", ".b.example", 8443), ("http", ".c.example", 80)]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (b"https://desk.example", True),
        (b"http://desk.example", False),  # another scheme
        (b"https://desk.example:8443", False),  # another port
        (b"https://a.example", True),
        (b"https://x.b.example", True),
        (b"https://b.example", True),
        (b"http://x.b.example", False),
        (b"https://x.b.example:444", False),
        (b"https://evil.example", False),
        (b"null", False),
    ],
)
def test_an_origin_passes_when_it_is_the_addressed_one_or_a_trusted_one(settings, origin, allowed):
    settings.ALLOWED_HOSTS, settings.DEBUG, settings.USE_X_FORWARDED_HOST = ["desk.example"], False, False
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.CSRF_TRUSTED_ORIGINS = ["https://a.example", "https://*.b.example"]

    assert origin_allowed(scope((b"host", b"desk.example"), (b"origin", origin), scheme="wss")) is allowed


def test_a_handshake_without_origin_is_refused(settings):
    settings.ALLOWED_HOSTS = ["desk.example"]

    assert origin_allowed(scope((b"host", b"desk.example"), scheme="wss")) is False


@pytest.mark.django_db
def test_a_token_handshake_gives_the_tokens_user_and_a_bad_token_an_anonymous_one(staff_user):
    token, key = access_token_issue(user=staff_user, name="cli")

    assert credentials(session_key=None, token_key=key) == {"user": staff_user, "session": None, "access_token_id": token.pk}
    for bad in ("", "not-a-key"):
        found = credentials(session_key="ignored", token_key=bad)
        assert found["user"].is_anonymous and found["session"] is None and "access_token_id" not in found


@pytest.mark.django_db
def test_a_session_handshake_gives_the_sessions_user(client, staff_user):
    client.force_login(staff_user)
    session_key = client.cookies["sessionid"].value

    found = credentials(session_key=session_key, token_key=None)

    assert found["user"] == staff_user and found["session"].session_key == session_key
    assert credentials(session_key=None, token_key=None)["user"].is_anonymous


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

    verdicts = access_verdicts([(staff_user.pk, store.session_key, staff_user.get_session_auth_hash())], with_permissions=False)

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
    assert handshake(session_key=session_key, token_key=None, requested_client_id=theirs)["client_id"] not in (theirs, first)
    assert "client_id" not in handshake(session_key=None, token_key=None, requested_client_id=first)
