"""Client ids are forgotten after REALTIME_CLIENT_ID_RETENTION_DAYS without a connection (manage.py purge_client_identities)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from realtime.models import ClientIdentity
from realtime.services import client_identity_claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader():
    return get_user_model().objects.create_user("retention-trader", is_staff=True)


def _identity(user, client_id: str, *, days_ago: float) -> None:
    ClientIdentity.objects.create(client_id=client_id, user=user)
    ClientIdentity.objects.filter(client_id=client_id).update(last_seen_at=timezone.now() - timedelta(days=days_ago))


def _purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_client_identities", *args, stdout=out)
    return out.getvalue()


def test_ids_unused_for_longer_than_the_retention_are_forgotten_and_the_others_kept(trader, settings):
    settings.REALTIME = {**settings.REALTIME, "CLIENT_ID_RETENTION_DAYS": 30}
    _identity(trader, "old-desk", days_ago=31)
    _identity(trader, "older-desk", days_ago=400)
    _identity(trader, "recent-desk", days_ago=29)
    _identity(trader, "today", days_ago=0)

    assert _purge() == "forgot 2 client ids unused for 30 days\n"

    assert set(ClientIdentity.objects.values_list("client_id", flat=True)) == {"recent-desk", "today"}


def test_days_given_on_the_command_line_take_precedence(trader):
    _identity(trader, "week-old", days_ago=8)
    _identity(trader, "day-old", days_ago=1.5)

    assert _purge("--days", "7") == "forgot 1 client ids unused for 7 days\n"

    assert list(ClientIdentity.objects.values_list("client_id", flat=True)) == ["day-old"]


def test_a_dry_run_counts_and_deletes_nothing(trader):
    _identity(trader, "old-desk", days_ago=90)

    assert _purge("--days", "30", "--dry-run") == "would forget 1 client ids unused for 30 days\n"

    assert ClientIdentity.objects.filter(client_id="old-desk").exists()


@pytest.mark.parametrize("days", ["0", "-5", "36501"])
def test_a_period_out_of_range_is_refused_and_nothing_is_deleted(trader, days):
    _identity(trader, "old-desk", days_ago=90)

    with pytest.raises(CommandError, match="at least one day|at most 36500"):
        _purge("--days", days)

    assert ClientIdentity.objects.filter(client_id="old-desk").exists()


def test_days_that_are_no_whole_number_are_refused(trader):
    _identity(trader, "old-desk", days_ago=90)

    with pytest.raises(CommandError, match="invalid int value"):
        _purge("--days", "ten")

    assert ClientIdentity.objects.filter(client_id="old-desk").exists()


def test_a_forgotten_id_is_claimed_anew_by_the_next_user_who_asks_for_it(trader):
    other = get_user_model().objects.create_user("retention-other", is_staff=True)
    _identity(trader, "shared-name", days_ago=60)
    # bound: another user asking for it gets a fresh id
    assert client_identity_claim(user=other, requested="shared-name") != "shared-name"

    _purge("--days", "30")

    assert client_identity_claim(user=other, requested="shared-name") == "shared-name"
    assert ClientIdentity.objects.get(client_id="shared-name").user == other
