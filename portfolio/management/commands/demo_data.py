"""Load the demo desk: a staff login with trading permissions, DAX instruments, portfolios (idempotent)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from portfolio.models import Instrument
from portfolio.selectors import portfolios_visible
from portfolio.services import portfolio_create

DESK_GROUP = "Handel"
DESK_PERMISSIONS = [
    "realtime.view_system_events",
    "realtime.monitor_gateway",
    "portfolio.view_instrument",
    "portfolio.view_portfolio",
    "portfolio.view_position",
    "portfolio.change_position",
    "trading.view_order",
    "trading.add_order",
    "trading.change_order",
]
# DAX members with their ISINs and a realistic price in EUR to start from.
INSTRUMENTS = [
    ("SAP", "DE0007164600", "SAP SE", "236.40"),
    ("SIE", "DE0007236101", "Siemens AG", "228.15"),
    ("ALV", "DE0008404005", "Allianz SE", "352.80"),
    ("BAS", "DE000BASF111", "BASF SE", "43.62"),
    ("BMW", "DE0005190003", "Bayerische Motoren Werke AG", "84.96"),
    ("DTE", "DE0005557508", "Deutsche Telekom AG", "29.87"),
    ("MBG", "DE0007100000", "Mercedes-Benz Group AG", "56.34"),
    ("IFX", "DE0006231004", "Infineon Technologies AG", "35.48"),
]
STARTING_CASH = Decimal("100000.00")


class Command(BaseCommand):
    help = "Create (or refresh) the demo data and print the staff login. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="desk", help="name of the demo staff user (default: desk)")

    @transaction.atomic
    def handle(self, *args, username: str, **options):
        group = self._desk_group()
        password = self._desk_user(username, group)
        self._instruments()
        self._portfolios()
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
        """Create the staff user once; keep its password in DEMO_LOGIN_FILE so every run prints the same login."""
        login_file = Path(settings.DEMO_LOGIN_FILE)
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        password = login_file.read_text().strip() if login_file.exists() and not created else ""
        if not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            login_file.parent.mkdir(parents=True, exist_ok=True)
            login_file.write_text(password + "\n")
            login_file.chmod(0o600)
        user.is_staff = True
        user.is_active = True
        user.save()
        user.groups.add(group)
        return password

    def _instruments(self) -> None:
        """Create the instruments once; keep the prices a running feed has moved since."""
        for symbol, isin, name, price in INSTRUMENTS:
            if Instrument.objects.filter(isin=isin).exclude(symbol=symbol).exists():
                continue  # listed under another symbol already
            instrument, created = Instrument.objects.get_or_create(
                symbol=symbol, defaults={"isin": isin, "name": name, "last_price": Decimal(price), "last_price_at": timezone.now()}
            )
            if not created and instrument.last_price is None:
                instrument.last_price, instrument.last_price_at = Decimal(price), timezone.now()
                instrument.save(update_fields=["last_price", "last_price_at"])

    def _portfolios(self) -> None:
        """Give every active staff user without a portfolio one of their own, with starting cash."""
        User = get_user_model()
        for user in User.objects.filter(is_staff=True, is_active=True).order_by("pk"):
            if not portfolios_visible(user=user).exists():
                portfolio_create(name=f"Depot {user.get_username()}", cash=STARTING_CASH, members=[user])
