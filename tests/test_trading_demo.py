"""The demo data brings instruments, a funded portfolio per staff user and the desk's trading rights."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

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
    assert Instrument.objects.filter(isin__in=["DE0007236101", "DE0008404005", "DE000BASF111", "DE0005190003"]).count() == 4
    assert all(i.last_price and i.last_price > 0 for i in Instrument.objects.all())
    desk = django_user_model.objects.get(username="desk")
    for user in (desk, colleague):
        [portfolio] = Portfolio.objects.filter(members=user)
        assert portfolio.cash == Decimal("100000.00")
    assert Portfolio.objects.count() == 2
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="Handel").permissions.all()}
    assert {"portfolio.view_portfolio", "trading.view_order", "trading.add_order", "trading.change_order"} <= granted
    assert desk.has_perm("trading.add_order")
