from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import DomainError
from realtime.services import client_identities_purge


class Command(BaseCommand):
    help = (
        "Forget the client ids no connection has used for --days days (default "
        "REALTIME_CLIENT_ID_RETENTION_DAYS); run it daily (deploy/systemd/aktienanalyse-purge.timer)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="days without a connection (at least 1)")
        parser.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        if days is None:
            days = settings.REALTIME["CLIENT_ID_RETENTION_DAYS"]
        if days > 36500:
            raise CommandError("--days is at most 36500.")
        try:
            count = client_identities_purge(unused_for=timedelta(days=days), dry_run=dry_run)
        except DomainError as error:
            raise CommandError(error.message) from None
        verb = "would forget" if dry_run else "forgot"
        self.stdout.write(f"{verb} {count} client ids unused for {days} days")
