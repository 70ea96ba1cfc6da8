"""Load the demo desk: a login per role (trader, supervisor, operator), DAX instruments, portfolios (idempotent)."""

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

from aktienanalyse.roles import OPERATOR, SUPERVISOR, TRADER, Role
from portfolio.models import Instrument
from portfolio.selectors import portfolios_visible
from portfolio.services import portfolio_create

# The demo users of the roles besides the trader's (whose name `--username` gives).
SUPERVISOR_USERNAME = "aufsicht"
OPERATOR_USERNAME = "betrieb"
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


def _login_file() -> Path:
    """Where the demo logins are kept, one "username password" line per user (`DEMO_LOGIN_FILE`)."""
    return Path(settings.DEMO_LOGIN_FILE)


class Command(BaseCommand):
    help = "Create (or refresh) the demo data and print the staff logins. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="desk", help="name of the demo trader (default: desk)")

    @transaction.atomic
    def handle(self, *args, username: str, **options):
        logins = [
            ("Staff login", TRADER, username),
            ("Supervisor login", SUPERVISOR, SUPERVISOR_USERNAME),
            ("Operator login", OPERATOR, OPERATOR_USERNAME),
        ]
        kept = self._kept_passwords(trader=username)
        passwords = {name: self._demo_user(name, self._group(role), kept.get(name)) for _, role, name in logins}
        self._write_logins(passwords, previous=kept)
        self._instruments()
        self._portfolios(without=[SUPERVISOR_USERNAME, OPERATOR_USERNAME])
        # The demo spans the apps: this command, the one entry point of `make demo`, wires them,
        # importing the market's seeding when it runs (portfolio's code imports no market module).
        from market.demo import demo_market_data_seed, price_history_seed

        price_history_seed()  # instruments and a price history, so analyses work at once
        figures, headlines = demo_market_data_seed()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(
            f"Invented fundamentals ({figures}) and headlines ({headlines}) for the fundamental and sentiment"
            ' analyses, stored with source "demo": they are not facts about the companies.'
        )
        for label, _role, name in logins:
            self.stdout.write(f"{label}:  user {name}  password {passwords[name]}")
        self.stdout.write(
            f"Roles: {username} trades ({TRADER.group}); {SUPERVISOR_USERNAME} sees every portfolio and corrects"
            f" positions ({SUPERVISOR.group}); {OPERATOR_USERNAME} monitors the gateway ({OPERATOR.group})."
            " See docs/permissions.md."
        )

    def _group(self, role: Role) -> Group:
        """Create the role's group, or set an existing one to exactly the role's permissions."""
        group, _ = Group.objects.get_or_create(name=role.group)
        permissions = []
        for dotted in role.permissions:
            app_label, codename = dotted.split(".", 1)
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None:
                self.stderr.write(f"permission {dotted} does not exist; run migrate first")
                continue
            permissions.append(permission)
        group.permissions.set(permissions)
        return group

    def _kept_passwords(self, *, trader: str) -> dict[str, str]:
        """Return the passwords the login file holds by user; a line with a password alone is the trader's."""
        login_file = _login_file()
        if not login_file.exists():
            return {}
        kept = {}
        for line in login_file.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                kept[parts[0]] = parts[1]
            elif len(parts) == 1:  # the file's former shape: the trader's password only
                kept[trader] = parts[0]
        return kept

    def _demo_user(self, username: str, group: Group, kept: str | None) -> str:
        """Create the staff user once and put it in `group`; keep its password while it still logs in."""
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        password = kept if kept and not created else ""
        if not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
        user.is_staff = True
        user.is_active = True
        user.save()
        user.groups.add(group)
        return password

    def _write_logins(self, passwords: dict[str, str], *, previous: dict[str, str]) -> None:
        """Store the passwords by user, keeping the lines of other demo users (`--username bench`)."""
        logins = {**previous, **passwords}
        if logins == previous:
            return
        login_file = _login_file()
        login_file.parent.mkdir(parents=True, exist_ok=True)
        login_file.write_text("".join(f"{name} {password}\n" for name, password in logins.items()))
        login_file.chmod(0o600)

    def _instruments(self) -> None:
        """Create the instruments once; keep the prices a running feed has moved since."""
        for symbol, isin, name, price in INSTRUMENTS:
            if Instrument.objects.filter(isin=isin).exclude(symbol=symbol).exists():
                continue  # listed under another symbol already
            instrument, created = Instrument.objects.get_or_create(
                symbol=symbol,
                defaults={"isin": isin, "name": name, "last_price": Decimal(price), "last_price_at": timezone.now()},
            )
            if not created and instrument.last_price is None:
                instrument.last_price, instrument.last_price_at = Decimal(price), timezone.now()
                instrument.save(update_fields=["last_price", "last_price_at"])

    def _portfolios(self, *, without: list[str]) -> None:
        """Give every active staff user without a portfolio one of their own, with starting cash.

        The demo supervisor and operator (`without`) trade in no portfolio of their own.
        """
        User = get_user_model()
        for user in User.objects.filter(is_staff=True, is_active=True).exclude(username__in=without).order_by("pk"):
            if not portfolios_visible(user=user).exists():
                portfolio_create(name=f"Depot {user.get_username()}", cash=STARTING_CASH, members=[user])
