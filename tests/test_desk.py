"""The desk page: who gets it, what it renders for the script, and its languages."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.django_db


def desk_config(response) -> dict:
    match = re.search(rb'<script id="desk-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the desk embeds its configuration"
    return json.loads(match.group(1))


def test_desk_renders_a_price_row_per_instrument_and_the_order_ticket(client, trader, portfolio, sap, siemens):
    # given a trader with a portfolio and two instruments
    client.force_login(trader)

    # when the desk is opened
    response = client.get("/")

    # then the elements the script drives are there with the spec's ids and classes
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="connection-status" class="status warning"' in html
    for element_id in (
        "portfolio-value",
        "portfolio-change",
        "order-form",
        "order-history",
        "positions",
        "price-chart",
    ):
        assert f'id="{element_id}"' in html
    assert '<tr data-symbol="SAP">' in html and '<tr data-symbol="SIE">' in html
    for field in ("symbol", "side", "quantity", "order_type", "price"):
        assert f'name="{field}"' in html
    assert 'aria-live="polite"' in html.split('id="notifications"')[1][:120]
    assert "js/desk.js" in html and "vendor/uplot/uPlot.iife.min.js" in html


def test_desk_configuration_carries_instruments_portfolio_and_event_types(client, trader, portfolio, sap):
    client.force_login(trader)

    config = desk_config(client.get("/"))

    assert config["instruments"] == [{"symbol": "SAP", "name": "SAP SE", "isin": "DE0007164600", "last_price": 200.0}]
    assert config["portfolio"]["portfolio_id"] == str(portfolio.pk)
    assert config["portfolio"]["total_value"] == 10000.0
    assert "market.price_update" in config["event_types"] and "trading.order_filled" in config["event_types"]
    assert config["history_url"] == "/api/trading/orders/history"


def test_desk_holds_the_business_event_types_of_the_schemas_and_no_system_events(client, staff_user):
    # given a staff member on the desk
    client.force_login(staff_user)

    # when the desk's configuration is read
    event_types = desk_config(client.get("/"))["event_types"]

    # then it lists each portfolio, trading, market and analysis event once, in declaration order
    assert event_types[:3] == ["portfolio.update", "portfolio.position_changed", "portfolio.value_changed"]
    assert {name.split(".")[0] for name in event_types} == {"portfolio", "trading", "market", "analysis"}
    assert len(event_types) == len(set(event_types)) == 10
    assert event_types[-3:] == ["market.price_update", "market.alert", "analysis.complete"]


def test_desk_without_a_portfolio_says_so(client, staff_user):
    client.force_login(staff_user)

    response = client.get("/")

    assert desk_config(response)["portfolio"] is None
    assert "Kein Portfolio zugeordnet" in response.content.decode()


def test_desk_is_german_by_default_and_english_on_request(client, staff_user):
    client.force_login(staff_user)

    german = client.get("/", HTTP_ACCEPT_LANGUAGE="de")
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en")

    assert '<html lang="de">' in german.content.decode()
    assert desk_config(german)["strings"]["connected"] == "Verbunden"
    assert "Order senden" in german.content.decode()
    assert '<html lang="en">' in english.content.decode()
    assert desk_config(english)["strings"]["connected"] == "Connected"
    assert desk_config(english)["strings"]["disconnected"] == "Disconnected"
    assert "Send order" in english.content.decode()


def test_language_switch_keeps_the_choice(client, staff_user):
    client.force_login(staff_user)

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    assert response.status_code == 302
    assert "Send order" in client.get("/").content.decode()


def test_desk_script_and_vendored_chart_are_served_with_the_licence(client, staff_user):
    from django.contrib.staticfiles import finders

    for path in ("js/desk.js", "js/event-client.js", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/LICENSE"):
        assert finders.find(path), path
    licence = open(finders.find("vendor/uplot/LICENSE"), encoding="utf-8").read()
    assert "MIT" in licence


def test_logout_ends_the_session(client, staff_user):
    client.force_login(staff_user)

    response = client.post("/logout/")

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/").status_code == 302


# Texts that read the same in both languages.
SAME_IN_BOTH = {
    "type_market",
    "type_limit",
    "type_stop",
    "indicator_rsi",
    "signal_name_rsi",
    "signal_name_momentum",
    "signal_name_trend",
    "signal_neutral",
    "verdict_neutral",
    "preview_summary",
    "order_state",
    "field_symbol",
    "indicator_momentum_percent",
}


def test_every_text_of_the_desk_script_is_translated_to_english_with_the_same_placeholders(client, staff_user):
    client.force_login(staff_user)

    german = desk_config(client.get("/", HTTP_ACCEPT_LANGUAGE="de"))["strings"]
    english = desk_config(client.get("/", HTTP_ACCEPT_LANGUAGE="en"))["strings"]

    untranslated = sorted(key for key in german if german[key] == english[key] and key not in SAME_IN_BOTH)
    assert untranslated == []
    placeholders = re.compile(r"\{\w+(?::\w+)?\}")
    differing = sorted(
        key for key in german if sorted(placeholders.findall(german[key])) != sorted(placeholders.findall(english[key]))
    )
    assert differing == []


def test_desk_configuration_carries_the_account_and_the_blotter_addresses(client, trader, portfolio, sap):
    client.force_login(trader)

    config = desk_config(client.get("/"))

    assert (config["account"]["cash"], config["account"]["buying_power"]) == (10000.0, 10000.0)
    assert (config["fills_url"], config["account_url"], config["order_url"], config["health_url"]) == (
        "/api/trading/fills",
        "/api/trading/account",
        "/api/trading/orders/",
        "/healthz",
    )
