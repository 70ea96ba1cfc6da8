"""Where the judgement of open sockets reads whether a session or token lives, and what that costs."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.backends.file import SessionStore as FileSessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from realtime.connection.access import Verdict, access_verdicts, session_fingerprint
from realtime.wire.protocol import CloseCode

pytestmark = pytest.mark.django_db

ENDED = Verdict(False, CloseCode.SESSION_ENDED, "session ended")


def test_no_session_is_named_by_the_hash_of_the_empty_key():
    assert session_fingerprint(None) == session_fingerprint("") == hashlib.sha256(b"").hexdigest()


def login(store_class, user) -> tuple[int, str, str]:
    store = store_class()
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return user.pk, store.session_key, user.get_session_auth_hash()


def test_database_sessions_are_judged_in_one_statement_however_many_there_are(staff_user, other_staff_user):
    checks = [login(DatabaseSessionStore, user) for user in (staff_user, other_staff_user, staff_user)]

    with CaptureQueriesContext(connection) as queries:
        verdicts = access_verdicts(checks, with_permissions=False)

    assert set(verdicts.values()) == {Verdict(True)}
    # the sessions in one statement and the users in another; no token, so no token query
    assert len(queries.captured_queries) == 2, [query["sql"] for query in queries.captured_queries]


def test_sessions_of_another_engine_are_each_asked_of_their_own_store(settings, tmp_path, staff_user, other_staff_user):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.file"
    settings.SESSION_FILE_PATH = str(tmp_path)
    alive = login(FileSessionStore, staff_user)
    ended = login(FileSessionStore, other_staff_user)
    FileSessionStore(session_key=ended[1]).delete()

    verdicts = access_verdicts([alive, ended], with_permissions=False)

    assert verdicts == {alive[:2]: Verdict(True), ended[:2]: ENDED}


def test_an_expired_database_session_has_ended_though_its_row_is_still_there(staff_user, other_staff_user):
    alive = login(DatabaseSessionStore, staff_user)
    expired = login(DatabaseSessionStore, other_staff_user)
    Session.objects.filter(session_key=expired[1]).update(expire_date=timezone.now() - timedelta(seconds=1))

    verdicts = access_verdicts([alive, expired], with_permissions=False)

    assert verdicts == {alive[:2]: Verdict(True), expired[:2]: ENDED}
