from django.core.management.base import BaseCommand, CommandError

from core.exceptions import DomainError
from realtime.models import Announcement
from realtime.services import ANNOUNCEMENT_LONGEST_EXPIRY, announcement_publish


class Command(BaseCommand):
    help = "Send an announcement to every open WebSocket connection of every gateway process."

    def add_arguments(self, parser):
        parser.add_argument("message", help="the text, at most 500 characters")
        parser.add_argument("--level", default="info", choices=Announcement.Level.values)
        parser.add_argument(
            "--expires-in",
            type=int,
            default=None,
            metavar="SECONDS",
            help=f"also send it to connections opened within this many seconds (1 to {ANNOUNCEMENT_LONGEST_EXPIRY})",
        )

    def handle(self, *args, **options):
        try:
            announcement = announcement_publish(
                message=options["message"],
                level=options["level"],
                expires_in=options["expires_in"],
                user=None,
                channel="console",
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        until = f", current until {announcement.expires_at:%Y-%m-%d %H:%M:%S %Z}" if announcement.expires_at else ""
        self.stdout.write(f"Announcement {announcement.pk} ({announcement.level}) sent to every connection{until}.")
