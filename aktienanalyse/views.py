"""The staff desk page; its live content comes over the WebSocket."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import json_script
from django.utils.translation import gettext as _

from core.exceptions import NotFound
from core.permissions import staff_may
from aktienanalyse.texts import analysis_reason_strings, code_strings
from portfolio.models import Instrument
from portfolio.selectors import PORTFOLIO_VIEW_PERMISSION, portfolio_get_visible, portfolio_snapshot
from realtime.api import EVENT_SCHEMAS, json_encode
from trading.selectors import portfolio_account

# Event types the desk holds: every business event (portfolio, trading, market, analysis), in
# the order `realtime/wire/events.py` declares them. System events belong to the operations pages,
# and the users' activity (`user.*`) to supervision. The server drops those the user may not see.
DESK_CATEGORIES = ("portfolio", "trading", "market", "analysis")
DESK_EVENT_TYPES = [name for name, schema in EVENT_SCHEMAS.items() if schema.category in DESK_CATEGORIES]
ORDER_STATUSES = ["pending", "open", "partially_filled", "filled", "cancelled", "rejected", "failed"]


class _WireJSON(json.JSONEncoder):
    """`json_script`'s encoder as the wire's codec: a price in the page is the same exact number
    the socket sends (Django calls `encode`; the settings it passes do not apply)."""

    def encode(self, o: Any) -> str:
        return json_encode(o)


def _strings() -> dict[str, str]:
    """Return the texts the desk's script shows, in the request's language."""
    return {
        "connected": _("Verbunden"),
        "disconnected": _("Verbindung getrennt"),
        "announcement": _("Mitteilung des Betriebs"),
        "order_filled": _("Order ausgeführt"),
        "order_partially_filled": _("Order teilweise ausgeführt"),
        "order_cancelled": _("Order storniert"),
        "order_failed": _("Order fehlgeschlagen"),
        "order_accepted": _("Order {order_id} angenommen: {message}"),
        "order_modified": _("Order {order_id} geändert"),
        "order_sent": _("Gesendet – warte auf Bestätigung …"),
        "order_state": _("Order {order_id}: {status}"),
        "not_sent_no_connection": _("Nicht gesendet: keine Verbindung."),
        "no_connection": _("Keine Verbindung – Orders können erst nach dem Wiederverbinden gesendet werden."),
        "outcome_unknown": _(
            "Ausgang unbekannt: Die Verbindung brach nach dem Senden ab und kam nicht rechtzeitig zurück. "
            "Bitte die Order-Historie prüfen."
        ),
        "fill_detail": _("{symbol} – {quantity} Stück zu {price}"),
        "pieces": _("Stück"),
        "alert": _("Kursalarm"),
        "alert_created": _("Alarm für {symbol} angelegt"),
        "alert_removed": _("Alarm entfernt"),
        "analysis_running": _("Analyse für {symbol} läuft …"),
        "analysis_done": _("Analyse für {symbol} fertig: {recommendation}"),
        **_analysis_strings(),
        **_chart_strings(),
        "not_a_number": _("Bitte eine Zahl eingeben (z. B. 10 oder 12,5)."),
        "required": _("Bitte ausfüllen."),
        "too_precise": _("Höchstens 15 gültige Ziffern."),
        "ambiguous": _("Mehrdeutig: Tausenderpunkt oder Dezimalzeichen? Bitte ohne Tausendertrennzeichen eingeben."),
        **_trading_strings(),
        **code_strings(),
        "no_portfolio": _("Kein Portfolio zugeordnet"),
        "history_failed": _("Die Order-Historie konnte nicht geladen werden."),
        "history_empty": _("Noch keine Orders."),
        "page": _("Seite {page} von {pages}"),
        "cancel": _("Stornieren"),
        "modify": _("Ändern"),
        "remove": _("Entfernen"),
        "close": _("Schließen"),
        "no_alerts": _("Keine Alarmregeln."),
        "buy": _("Kaufen"),
        "sell": _("Verkaufen"),
        "hold": _("Halten"),
        "side_buy": _("Kauf"),
        "side_sell": _("Verkauf"),
        "confidence": _("Konfidenz"),
        "status_pending": _("ausstehend"),
        "status_open": _("offen"),
        "status_partially_filled": _("teilweise ausgeführt"),
        "status_filled": _("ausgeführt"),
        "status_cancelled": _("storniert"),
        "status_rejected": _("abgelehnt"),
        "status_failed": _("fehlgeschlagen"),
        "type_market": _("Market"),
        "type_limit": _("Limit"),
        "type_stop": _("Stop"),
        "limit_price": _("Limitpreis"),
        "stop_price": _("Stoppreis"),
    }


def _trading_strings() -> dict[str, str]:
    """Return the texts of the portfolio, the ticket's preview, the blotter and the connection."""
    return {
        "no_positions": _("Keine Positionen."),
        "reference_previous_close": _("gegenüber dem Schlusskurs des Vortags"),
        "reference_session_open": _("gegenüber dem ersten Kurs des Tages"),
        "reference_last_price": _("noch kein Kurs vor heute"),
        "reference_mixed": _("gegenüber Vortagesschluss bzw. erstem Kurs des Tages"),
        "preview_summary": _("{side} {quantity} {symbol}, {type}, {price}"),
        "at_market": _("zum Marktpreis"),
        "estimated_cost": _("Geschätzte Kosten"),
        "estimated_proceeds": _("Geschätzter Erlös"),
        "warning_far_price": _("Der Preis {price} liegt weit vom Markt entfernt (letzter Kurs {last})."),
        "warning_far_threshold": _(
            "Die Schwelle {threshold} liegt weit vom letzten Kurs {last} entfernt. Zum Anlegen erneut absenden."
        ),
        "warning_buying_power": _("Die geschätzten Kosten übersteigen die Kaufkraft."),
        "warning_position": _("Die Stückzahl übersteigt den Bestand."),
        "no_open_orders": _("Keine offenen Orders."),
        "no_executions": _("Noch keine Ausführungen."),
        "cancel_all_confirm": _("{count} offene Order(s) stornieren?"),
        "cancel_all_failed": _("{count} Order(s) nicht storniert"),
        "no_answer": _("Keine Antwort vom Server. Bitte die Order-Historie prüfen."),
        "connecting": _("Verbinde …"),
        "offline": _("Kein Netz – Verbindung folgt, sobald das Netz zurück ist."),
        "reconnecting_in": _("Neuer Versuch in {seconds} s"),
        "field_quantity": _("Stückzahl"),
        "field_price": _("Preis"),
        "field_stop_price": _("Stoppreis"),
        "field_threshold": _("Schwelle"),
        "field_symbol": _("Instrument"),
        "field_side": _("Richtung"),
        "field_order_type": _("Ordertyp"),
    }


def _analysis_strings() -> dict[str, str]:
    """Return the texts that explain an analysis result on the desk."""
    return {
        "analysis_technical": _("Technische Analyse"),
        "analysis_fundamental": _("Fundamentalanalyse"),
        "analysis_sentiment": _("Stimmungsanalyse"),
        "indicator_last_price": _("Letzter Kurs"),
        "indicator_sma_short": _("Gleitender Durchschnitt (kurz)"),
        "indicator_sma_long": _("Gleitender Durchschnitt (lang)"),
        "indicator_rsi": _("RSI"),
        "indicator_momentum_percent": _("Momentum (%)"),
        "indicator_volatility_percent": _("Volatilität (%)"),
        "signal_name_trend": _("Trend"),
        "signal_name_crossover": _("Kreuzung der Durchschnitte"),
        "signal_name_rsi": _("RSI"),
        "signal_name_momentum": _("Momentum"),
        "signal_bullish": _("steigend"),
        "signal_bearish": _("fallend"),
        "signal_neutral": _("neutral"),
        "signal_oversold": _("überverkauft"),
        "signal_overbought": _("überkauft"),
        "signal_rising": _("steigend"),
        "signal_falling": _("fallend"),
        "signal_flat": _("seitwärts"),
        "yes": _("ja"),
        "no": _("nein"),
        "metric": _("Kennzahl"),
        "value": _("Wert"),
        "threshold_good": _("gut"),
        "threshold_bad": _("schlecht"),
        "verdict": _("Urteil"),
        "peers": _("Vergleich"),
        "peers_median": _("Median {median} ({count} Werte)"),
        "verdict_positive": _("positiv"),
        "verdict_neutral": _("neutral"),
        "verdict_negative": _("negativ"),
        "metric_pe_ratio": _("KGV"),
        "metric_pb_ratio": _("KBV"),
        "metric_dividend_yield": _("Dividendenrendite (%)"),
        "metric_roe": _("Eigenkapitalrendite (%)"),
        "metric_debt_to_equity": _("Verschuldungsgrad"),
        "metric_eps_growth": _("Gewinnwachstum (%)"),
        "metric_revenue_growth": _("Umsatzwachstum (%)"),
        "fundamentals_basis": _(
            "Stand {as_of}, Quelle {source}, {days} Tage alt; {agreeing} von {checks} Bewertungen stützen die Empfehlung."
        ),
        "sentiment_basis": _("Stimmung {score} (−1 bis 1) aus {items} Meldungen, neuere zählen mehr."),
        "strongest_positive": _("Positivste Meldung"),
        "strongest_negative": _("Negativste Meldung"),
        "quoted": _("„{text}“"),
        "demo_data": _("Demo-Daten: erfundene Zahlen und Meldungen, keine Fakten über das Unternehmen."),
        **analysis_reason_strings(),
    }


def _chart_strings() -> dict[str, str]:
    """Return the texts of the chart and of choosing a symbol."""
    return {
        "chart_summary": _("{symbol}: {count} Kerzen von {from} bis {to}, letzter Kurs {last}"),
        "chart_empty": _("{symbol}: keine Kurse im gewählten Zeitraum"),
        "chart_failed": _("{symbol}: Der Kursverlauf konnte nicht geladen werden."),
        "show_symbol": _("{symbol} wählen"),
    }


def _chart_ranges() -> list[tuple[str, str]]:
    """Return the chart's ranges with their labels."""
    return [("15m", _("15 Min.")), ("1h", _("1 Std.")), ("1d", _("1 Tag")), ("1w", _("1 Woche")), ("all", _("Alles"))]


@staff_member_required(login_url="login")
def desk(request: HttpRequest) -> HttpResponse:
    """Render the desk with the instruments and the user's portfolio as they are now.

    The portfolio is shown to those whom the WebSocket would send it (`refresh_portfolio`).
    """
    instruments = list(Instrument.objects.order_by("symbol"))
    portfolio = account = None
    if staff_may(request.user, PORTFOLIO_VIEW_PERMISSION):
        try:
            visible = portfolio_get_visible(user=request.user)
        except NotFound:
            pass
        else:
            portfolio = portfolio_snapshot(portfolio=visible)
            account = portfolio_account(portfolio=visible)
    strings = _strings()
    config = {
        "ws_path": "/ws",
        "history_url": reverse("trading:order-history"),
        "fills_url": reverse("trading:fills"),
        "account_url": reverse("trading:account"),
        # An order's detail is this followed by its id.
        "order_url": reverse("trading:order-detail", args=[0])[:-1],
        "health_url": reverse("healthz"),
        "bars_url": reverse("market:price-bars"),
        "event_types": DESK_EVENT_TYPES,
        "instruments": [
            {"symbol": i.symbol, "name": i.name, "isin": i.isin, "last_price": i.last_price} for i in instruments
        ],
        "portfolio": portfolio,
        "account": account,
        "strings": strings,
    }
    return render(
        request,
        "desk.html",
        {
            "instruments": instruments,
            "portfolio": portfolio,
            "order_statuses": [(status, strings[f"status_{status}"]) for status in ORDER_STATUSES],
            "desk_config": json_script(config, "desk-config", encoder=_WireJSON),
            "chart_ranges": _chart_ranges(),
            "chart_range": "1h",
        },
    )


def favicon(request: HttpRequest) -> HttpResponse:
    """Send a browser that asks for /favicon.ico to the project's icon."""
    return HttpResponseRedirect(static("favicon.svg"))
