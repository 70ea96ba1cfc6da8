"""The handshake's rules on their own (realtime.connection.gate): headers, bearer keys, which origins
pass, when a request is secure, and whose credentials a handshake carries.
"""

import pytest

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
from realtime.services import access_token_issue


def scope(*headers: tuple[bytes, bytes], **extra) -> dict:
    return {"type": "websocket", "headers": list(headers), **extra}


def test_a_header_is_the_first_of_its_name_decoded_as_latin1():
    handshake = scope((b"host", b"a"), (b"x-test", b"caf\xe9"), (b"x-test", b"second"))

    assert header(handshake, b"x-test") == "café"
    assert header(handshake, b"origin") is None
    assert header({}, b"host") is None


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (None, None),
        (b"Bearer abc", "abc"),
        (b"bearer  abc ", "abc"),
        (b"BEARER abc", "abc"),
        (b"Basic abc", ""),
        (b"Bearer", ""),
    ],
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
        (
            ["desk.example"],
            False,
            True,
            [(b"host", b"inner"), (b"x-forwarded-host", b"desk.example")],
            ("http", "desk.example", 80),
        ),
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

    assert credentials(session_key=None, token_key=key) == {
        "user": staff_user,
        "session": None,
        "access_token_id": token.pk,
    }
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
