from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import DomainError
from realtime.services import access_token_issue


class Command(BaseCommand):
    help = "Issue a bearer token for a staff member's command-line tools; the key is shown only once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="what the token is for")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        try:
            token, key = access_token_issue(user=user, name=options["name"])
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stderr.write(
            f"Token {token.name!r} ({token.key_prefix}…) for {user.get_username()}; revoke it in the admin."
        )
        self.stdout.write(key)
