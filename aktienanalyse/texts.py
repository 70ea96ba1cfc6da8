"""Texts of the server's machine codes, in the request's language, for the pages' scripts.

The server names what happened by a code with its figures (errors, order reasons, command
answers, alerts, alert rules, analysis findings); the desk and the monitoring pages word them
from these texts (static/ts/i18n.ts). German is the source language, English in locale/en.
"""

from __future__ import annotations

from django.utils.translation import gettext as _


def code_strings() -> dict[str, str]:
    """Return the wording of the server's codes: errors, order reasons, command answers, alerts, rules.

    `{name:eur}`, `{name:num}` and `{name:pct}` show a figure as euros, a number or a percentage
    in the page's locale (static/ts/i18n.ts).
    """
    return {
        "error_unknown": _("Vom Server abgelehnt (Code {code})."),
        "error_validation_error": _("Ungültige Eingabe: {field}."),
        "error_validation_error_digits": _(
            "{field}: höchstens {decimal_places} Nachkommastellen und {integer_digits} Stellen vor dem Komma."
        ),
        "error_invalid_quantity": _("Die Stückzahl muss größer als 0 sein."),
        "error_invalid_quantity_max": _("Die Stückzahl darf höchstens {max:num} sein."),
        "error_invalid_price": _("Ungültiger Preis für diesen Ordertyp."),
        "error_invalid_price_max": _("Der Preis darf höchstens {max:eur} sein."),
        "error_price_required": _("Eine Limit-Order braucht einen Limitpreis."),
        "error_stop_price_required": _("Eine Stop-Order braucht einen Stoppreis."),
        "error_invalid_side": _("Ungültige Richtung."),
        "error_invalid_order_type": _("Ungültiger Ordertyp."),
        "error_unknown_symbol": _("Unbekanntes Instrument."),
        "error_no_portfolio": _("Ihnen ist kein Portfolio zugeordnet."),
        "error_portfolio_not_found": _("Dieses Portfolio gibt es nicht, oder es ist nicht Ihres."),
        "error_order_not_found": _("Diese Order gibt es nicht, oder sie ist nicht Ihre."),
        "error_order_not_cancellable": _("Die Order ist bereits abgeschlossen und kann nicht storniert werden."),
        "error_order_not_modifiable": _("Die Order ist bereits abgeschlossen und kann nicht geändert werden."),
        "error_nothing_to_modify": _("Bitte eine neue Stückzahl oder einen neuen Preis angeben."),
        "error_client_order_id_conflict": _("Diese Order-Kennung wurde schon für eine andere Order verwendet."),
        "error_request_id_conflict": _("Diese Anfrage-Kennung wurde schon für etwas anderes verwendet."),
        "error_permission_denied": _("Dafür fehlt Ihnen die Berechtigung."),
        "error_rate_limited": _("Zu viele Anfragen – bitte einen Moment warten."),
        "error_service_unavailable": _("Der Dienst ist gerade nicht erreichbar; nichts wurde geändert."),
        "error_invalid_threshold": _("Ungültige Schwelle."),
        "error_invalid_condition": _("Ungültige Bedingung."),
        "error_insufficient_cash": _(
            "Nicht genug Geld: {quantity:num} {symbol} kosten etwa {needed:eur} mit Gebühren, verfügbar sind {available:eur}."
        ),
        "error_insufficient_position": _(
            "Nicht genug Bestand: {quantity:num} {symbol} zu verkaufen, frei verfügbar sind {available:num}."
        ),
        "error_no_market_price": _("Für {symbol} gibt es noch keinen Kurs; eine Market-Order ist nicht möglich."),
        "error_proceeds_below_fees": _("Der Erlös ({proceeds:eur}) deckt die Gebühren ({fees:eur}) nicht."),
        "error_cash_out_of_range": _("Der Erlös brächte das Bargeld über den zulässigen Höchstbetrag."),
        "error_not_found": _("Nicht gefunden."),
        "error_not_found_symbol": _("Unbekanntes Instrument."),
        "error_too_many_alerts": _(
            "Sie haben schon so viele Alarmregeln, wie erlaubt sind; bitte zuerst eine entfernen."
        ),
        "error_too_many_analyses": _(
            "Es laufen schon {running:num} Analysen, höchstens {limit:num} gleichzeitig; bitte auf ihr Ergebnis warten."
        ),
        "error_insufficient_history": _(
            "Zu wenige Kurse für diese Analyse: {available:num} gespeichert, {required:num} nötig."
        ),
        "error_missing_data": _("Für diese Analyse fehlen Daten ({missing}); bitte zuerst einlesen."),
        **_protocol_error_strings(),
        "reason_cancelled_by_user": _("vom Benutzer storniert"),
        "reason_cancelled_by_admin": _("in der Verwaltung storniert"),
        "message_order_placed_open": _("liegt im Markt, bis der Kurs sie erreicht"),
        "message_order_placed_partially_filled": _("teilweise ausgeführt"),
        "message_order_placed_filled": _("ausgeführt"),
        "message_order_placed_failed": _("angenommen, aber nicht ausführbar"),
        "message_order_placed": _("angenommen"),
        "message_order_cancelled": _("storniert"),
        "message_order_modified": _("geändert"),
        "message_order_modified_filled": _("geändert und ausgeführt"),
        "alert_price_above": _("{symbol} steht bei {price:eur}, auf oder über der Schwelle {threshold:eur}."),
        "alert_price_below": _("{symbol} steht bei {price:eur}, auf oder unter der Schwelle {threshold:eur}."),
        "alert_price_change": _(
            "{symbol} hat sich um {measured:num} % bewegt, jetzt {price:eur} (Schwelle {threshold:num} %)."
        ),
        "alert_volume_spike": _(
            "{symbol}: Umsatz {measured:num}-mal so hoch wie im Schnitt (Schwelle {threshold:num})."
        ),
        "alert_volatility": _(
            "{symbol}: Schwankung {measured:num} % je Kurs, jetzt {price:eur} (Schwelle {threshold:num} %)."
        ),
        "alert_unknown": _("Alarm für {symbol}"),
        "rule_above": _("{symbol}: Kurs auf oder über {threshold:eur}"),
        "rule_below": _("{symbol}: Kurs auf oder unter {threshold:eur}"),
        # xgettext:no-python-format ("% s" is a percent sign before a word, not a placeholder)
        "rule_change_percent": _("{symbol}: Änderung ab {threshold:num} % seit {reference:eur}"),
        "rule_volume_spike": _("{symbol}: Umsatz ab dem {threshold:num}-Fachen des Schnitts"),
        "rule_volatility": _("{symbol}: Schwankung ab {threshold:num} % je Kurs"),
        "rule_unknown": _("{symbol}: Regel {threshold:num}"),
    }


def _protocol_error_strings() -> dict[str, str]:
    """Return the wording of the gateway's own protocol errors and limits (realtime.wire.protocol.ErrorCode)."""
    return {
        "error_invalid_message_format": _("Die Nachricht ist kein gültiges JSON."),
        "error_invalid_message": _("Die Nachricht hat nicht die Form des Protokolls."),
        "error_binary_not_supported": _("Binäre Nachrichten werden nicht angenommen."),
        "error_message_too_large": _("Die Nachricht ist zu groß."),
        "error_unknown_message_type": _("Unbekannter Nachrichtentyp."),
        "error_invalid_event_type": _("Ungültiger Event-Typ."),
        "error_unknown_event_type": _("Unbekannter Event-Typ."),
        "error_too_many_event_types": _("Zu viele Event-Typen in einer Anfrage."),
        "error_unknown_command": _("Unbekannter Befehl."),
        "error_invalid_command": _("Ungültiger Befehl."),
        "error_too_many_commands": _(
            "Zu viele Befehle dieser Verbindung laufen noch; bitte auf ihre Antworten warten."
        ),
        "error_too_many_subscriptions": _("Zu viele Abonnements."),
        "error_too_many_connections": _("Zu viele Verbindungen."),
        "error_internal_error": _("Interner Fehler des Servers."),
        # The client's own codes (static/ts/event-client.ts LocalErrorCode): no answer from the server.
        "error_timeout": _("Keine Antwort vom Server in der erwarteten Zeit."),
        "error_not_connected": _("Keine Verbindung zum Server."),
        "error_connection_lost": _("Die Verbindung brach ab, bevor die Antwort kam."),
        "error_queue_full": _("Zu viele Anfragen warten auf die Verbindung."),
        "error_client_closed": _("Die Verbindung wurde geschlossen."),
    }


def analysis_reason_strings() -> dict[str, str]:
    """Return the wording of an analysis's findings (market/reasons.py), keyed `analysis_reason_<code>`.

    `{metric:term}` shows the metric's name (`metric_<code>`), `{as_of:date}` a date, both in
    the page's language.
    """
    return {
        "analysis_reason_trend_bullish": _(
            "Aufwärtstrend: Der Schnitt der letzten {short_window:num} Kurse ({sma_short:num}) liegt über dem der "
            "letzten {long_window:num} ({sma_long:num})."
        ),
        "analysis_reason_trend_bearish": _(
            "Abwärtstrend: Der Schnitt der letzten {short_window:num} Kurse ({sma_short:num}) liegt unter dem der "
            "letzten {long_window:num} ({sma_long:num})."
        ),
        "analysis_reason_trend_neutral": _(
            "Kein Trend: Der Schnitt der letzten {short_window:num} Kurse ({sma_short:num}) gleicht dem der "
            "letzten {long_window:num} ({sma_long:num})."
        ),
        "analysis_reason_rsi_oversold": _(
            "RSI {rsi:num} auf oder unter {oversold:num}: überverkauft, spricht für Kaufen."
        ),
        "analysis_reason_rsi_overbought": _(
            "RSI {rsi:num} auf oder über {overbought:num}: überkauft, spricht für Verkaufen."
        ),
        "analysis_reason_rsi_neutral": _("RSI {rsi:num} zwischen {oversold:num} und {overbought:num}: neutral."),
        "analysis_reason_momentum_rising": _("Momentum über {period:num} Kurse {momentum_percent:pct}: steigend."),
        "analysis_reason_momentum_falling": _("Momentum über {period:num} Kurse {momentum_percent:pct}: fallend."),
        "analysis_reason_momentum_flat": _("Momentum über {period:num} Kurse {momentum_percent:pct}: seitwärts."),
        "analysis_reason_technical_buy": _(
            "Kaufen: Die Indikatoren stimmen mit {score:num} von {votes:num} Stimmen (Kaufen ab {buy_at:num})."
        ),
        "analysis_reason_technical_sell": _(
            "Verkaufen: Die Indikatoren stimmen mit {score:num} von {votes:num} Stimmen (Verkaufen ab {sell_at:num})."
        ),
        "analysis_reason_technical_hold": _(
            "Halten: Die Indikatoren stimmen mit {score:num} von {votes:num} Stimmen, zwischen {sell_at:num} und {buy_at:num}."
        ),
        "analysis_reason_metric_positive_lower": _("{metric:term} {value:num}: gut, auf oder unter {good:num}."),
        "analysis_reason_metric_neutral_lower": _(
            "{metric:term} {value:num}: neutral, zwischen {good:num} und {bad:num}."
        ),
        "analysis_reason_metric_negative_lower": _("{metric:term} {value:num}: schlecht, auf oder über {bad:num}."),
        "analysis_reason_metric_positive_higher": _("{metric:term} {value:num}: gut, auf oder über {good:num}."),
        "analysis_reason_metric_neutral_higher": _(
            "{metric:term} {value:num}: neutral, zwischen {bad:num} und {good:num}."
        ),
        "analysis_reason_metric_negative_higher": _("{metric:term} {value:num}: schlecht, auf oder unter {bad:num}."),
        "analysis_reason_peers_positive": _(
            "{metric:term} {value:num}: deutlich unter dem Median {median:num} von {count:num} Vergleichswerten, günstig."
        ),
        "analysis_reason_peers_neutral": _(
            "{metric:term} {value:num}: nahe am Median {median:num} von {count:num} Vergleichswerten."
        ),
        "analysis_reason_peers_negative": _(
            "{metric:term} {value:num}: deutlich über dem Median {median:num} von {count:num} Vergleichswerten, teuer."
        ),
        "analysis_reason_data_age": _("Zahlen vom {as_of:date} (Quelle {source}), {days:num} Tage alt."),
        "analysis_reason_fundamental_buy": _(
            "Kaufen: Saldo {score:num} aus {checks:num} Bewertungen, {agreeing:num} stützen die Empfehlung "
            "(Kaufen ab einem Saldo von {share_percent:num} % der Bewertungen)."
        ),
        "analysis_reason_fundamental_sell": _(
            "Verkaufen: Saldo {score:num} aus {checks:num} Bewertungen, {agreeing:num} stützen die Empfehlung "
            "(Verkaufen ab einem Saldo von −{share_percent:num} % der Bewertungen)."
        ),
        "analysis_reason_fundamental_hold": _(
            "Halten: Saldo {score:num} aus {checks:num} Bewertungen, {agreeing:num} sind neutral "
            "(Kaufen oder Verkaufen erst ab ±{share_percent:num} % der Bewertungen)."
        ),
        "analysis_reason_sentiment_polarity": _(
            "{items:num} Meldungen: {positive:num} positiv, {neutral:num} neutral, {negative:num} negativ; "
            "neuere zählen mehr (Halbwertszeit {half_life_hours:num} Std.)."
        ),
        "analysis_reason_sentiment_buy": _("Kaufen: gewichtete Stimmung {score:num}, auf oder über {buy_at:num}."),
        "analysis_reason_sentiment_sell": _(
            "Verkaufen: gewichtete Stimmung {score:num}, auf oder unter {sell_at:num}."
        ),
        "analysis_reason_sentiment_hold": _(
            "Halten: gewichtete Stimmung {score:num}, zwischen {sell_at:num} und {buy_at:num}."
        ),
        "analysis_reason_unknown": _("Befund {code}"),
        "reasons": _("Begründung"),
        "language_de": _("Deutsch"),
        "language_en": _("Englisch"),
    }
