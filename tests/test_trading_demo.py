"""The demo data brings instruments, a funded portfolio per trader, and a group and login per role."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from aktienanalyse.roles import OPERATOR, ROLES, SUPERVISOR, TRADER

from portfolio.models import Instrument, Portfolio

pytestmark = pytest.mark.django_db


def test_demo_data_creates_dax_instruments_portfolios_and_trading_rights_once(tmp_path, settings, django_user_model):
    settings.DEMO_LOGIN_FILE = tmp_path / "login.txt"
    colleague = django_user_model.objects.create_user("colleague", is_staff=True)
    django_user_model.objects.create_user("visitor", is_staff=False)

    call_command("demo_data")
    Instrument.objects.filter(symbol="SAP").update(last_price=Decimal("250.00"))  # the feed moved it
    call_command("demo_data")

    sap = Instrument.objects.get(symbol="SAP")
    assert (sap.isin, sap.last_price) == ("DE0007164600", Decimal("250.00"))
    assert (
        Instrument.objects.filter(isin__in=["DE0007236101", "DE0008404005", "DE000BASF111", "DE0005190003"]).count()
        == 4
    )
    assert all(i.last_price and i.last_price > 0 for i in Instrument.objects.all())
    desk = django_user_model.objects.get(username="desk")
    for user in (desk, colleague):
        [portfolio] = Portfolio.objects.filter(members=user)
        assert portfolio.cash == Decimal("100000.00")
    assert Portfolio.objects.count() == 2
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="Handel").permissions.all()}
    assert {"portfolio.view_portfolio", "trading.view_order", "trading.add_order", "trading.change_order"} <= granted
    assert desk.has_perm("trading.add_order")


def granted_to(group: str) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=group).permissions.all()}


def test_demo_data_splits_trading_supervision_and_operations_into_groups_with_a_login_each(
    tmp_path, settings, capsys, django_user_model
):
    settings.DEMO_LOGIN_FILE = tmp_path / "login.txt"
    # an install from before the split: the desk group could correct positions and monitor
    old = Group.objects.create(name=TRADER.group)
    old.permissions.add(
        *Permission.objects.filter(codename__in=["change_position", "monitor_gateway", "view_system_events"])
    )

    call_command("demo_data")
    first = capsys.readouterr().out
    call_command("demo_data")
    second = capsys.readouterr().out

    assert {role.group: granted_to(role.group) for role in ROLES} == {
        role.group: set(role.permissions) for role in ROLES
    }
    assert not {"portfolio.change_position", "realtime.monitor_gateway", "realtime.view_system_events"} & granted_to(
        "Handel"
    )
    logins = re.findall(r"^(\w+) login:  user (\S+)  password (\S+)$", first, re.M)
    assert [(label, name) for label, name, _ in logins] == [
        ("Staff", "desk"),
        ("Supervisor", "aufsicht"),
        ("Operator", "betrieb"),
    ]
    assert logins == re.findall(r"^(\w+) login:  user (\S+)  password (\S+)$", second, re.M)  # the same every run
    for (_, name, password), role in zip(logins, (TRADER, SUPERVISOR, OPERATOR)):
        user = django_user_model.objects.get(username=name)
        assert user.is_staff and user.check_password(password)
        assert list(user.groups.values_list("name", flat=True)) == [role.group]
    assert (tmp_path / "login.txt").read_text().splitlines() == [f"{name} {password}" for _, name, password in logins]
    assert not Portfolio.objects.filter(members__username__in=["aufsicht", "betrieb"]).exists()


def test_demo_data_keeps_the_desk_password_of_a_login_file_in_the_former_shape(
    tmp_path, settings, capsys, django_user_model
):
    login_file = tmp_path / "login.txt"
    settings.DEMO_LOGIN_FILE = login_file
    django_user_model.objects.create_user("desk", password="kept-desk-pass-1", is_staff=True)
    login_file.write_text("kept-desk-pass-1\n")

    call_command("demo_data")

    assert "Staff login:  user desk  password kept-desk-pass-1" in capsys.readouterr().out
    assert login_file.read_text().splitlines()[0] == "desk kept-desk-pass-1"
