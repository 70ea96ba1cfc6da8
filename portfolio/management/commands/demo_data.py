"""Load the demo desk: a staff login with trading permissions (idempotent)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

DESK_GROUP = "Handel"
DESK_PERMISSIONS = [
    "realtime.view_system_events",
    "realtime.monitor_gateway",
]
LOGIN_FILE = settings.VAR_DIR / "demo-login.txt"


class Command(BaseCommand):
    help = "Create (or refresh) the demo data and print the staff login. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="desk", help="name of the demo staff user (default: desk)")

    @transaction.atomic
    def handle(self, *args, username: str, **options):
        group = self._desk_group()
        password = self._desk_user(username, group)
        from market.services import price_history_seed

        price_history_seed()  # instruments and a price history, so analyses work at once
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Staff login:  user {username}  password {password}")

    def _desk_group(self) -> Group:
        group, _ = Group.objects.get_or_create(name=DESK_GROUP)
        for dotted in DESK_PERMISSIONS:
            app_label, codename = dotted.split(".", 1)
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None:
                self.stderr.write(f"permission {dotted} does not exist; run migrate first")
                continue
            group.permissions.add(permission)
        return group

    def _desk_user(self, username: str, group: Group) -> str:
        """Create the staff user once; keep its password in var/ so every run prints the same login."""
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        password = LOGIN_FILE.read_text().strip() if LOGIN_FILE.exists() and not created else ""
        if not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            LOGIN_FILE.parent.mkdir(parents=True, exist_ok=True)
            LOGIN_FILE.write_text(password + "\n")
            LOGIN_FILE.chmod(0o600)
        user.is_staff = True
        user.is_active = True
        user.save()
        user.groups.add(group)
        return password
