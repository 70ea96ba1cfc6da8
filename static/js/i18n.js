/**
 * The desk's texts from machine codes: the server names what happened by a code with its
 * figures (errors, rejections, cancellations, command answers, alerts, alert rules) and the desk
 * words it from its translations (`strings`, rendered by Django in the page's language).
 *
 * A template's placeholders name a parameter and how to show it: `{symbol}` as it is,
 * `{needed:eur}` as an amount in euros, `{quantity:num}` as a number, `{change:pct}` as a signed
 * percentage, `{as_of:date}` as a date, all in the page's locale; `{metric:term}` shows a code
 * by its own text (`metric_<value>`).
 */
import { formatDate, formatEuro, formatNumber, formatPercent } from "./format.js";
function asNumber(value) {
    if (value === null || value === undefined || value === "" || typeof value === "boolean")
        return null;
    const number = typeof value === "number" ? value : Number(value);
    return Number.isFinite(number) ? number : null;
}
/**
 * Fill a template's `{name}` / `{name:eur|num|pct|date|term}` placeholders from `params` in
 * `locale`; `term` looks the value up in `strings` as `<name>_<value>`.
 */
export function render(template, params, locale, strings = {}) {
    return template.replace(/\{(\w+)(?::(eur|num|pct|date|term))?\}/g, (whole, name, kind) => {
        if (!(name in params))
            return whole;
        const value = params[name];
        if (kind === "term")
            return strings[`${name}_${String(value)}`] ?? String(value);
        if (kind === "date" && typeof value === "string")
            return formatDate(value, locale);
        const number = asNumber(value);
        if (kind === "eur" && number !== null)
            return formatEuro(number, locale);
        if (kind === "num" && number !== null)
            return formatNumber(number, locale);
        if (kind === "pct" && number !== null)
            return formatPercent(number, locale);
        return value === null || value === undefined ? "–" : String(value);
    });
}
/** Return the text of `key` filled from `params`, or null when there is no such text. */
export function text(strings, key, params, locale) {
    const template = strings[key];
    return template === undefined ? null : render(template, params, locale, strings);
}
/** The parameters of an error or reason: its `params` object, else its details themselves. */
function paramsOf(details) {
    if (!details)
        return {};
    const nested = details.params;
    return nested && typeof nested === "object" ? { ...details, ...nested } : details;
}
/**
 * Word a refusal by its code: `error_<code>_<field>` for a fault of one field,
 * `error_<code>_max` when a limit was passed, else `error_<code>`; an unknown code gets the
 * general text naming the code.
 */
export function errorText(strings, code, details, locale) {
    const params = paramsOf(details);
    const field = typeof params.field === "string" ? params.field : null;
    const fieldName = field ? strings[`field_${field}`] ?? field : "";
    const values = { ...params, code, field: fieldName };
    const keys = [
        ...(field && params.max !== undefined ? [`error_${code}_${field}_max`, `error_${code}_max`] : []),
        ...(field && params.decimal_places !== undefined ? [`error_${code}_digits`] : []),
        ...(field ? [`error_${code}_${field}`] : []),
        `error_${code}`,
    ];
    for (const key of keys) {
        const found = text(strings, key, values, locale);
        if (found !== null)
            return found;
    }
    return render(strings.error_unknown ?? "{code}", values, locale);
}
/** Word an order's reason (rejection, failure, cancellation) from its code and figures. */
export function reasonText(strings, code, params, locale) {
    if (!code)
        return "";
    return text(strings, `reason_${code}`, paramsOf(params), locale) ?? errorText(strings, code, params, locale);
}
/** Word a command's answer by its `message_code`; null when the answer has none this desk knows. */
export function messageText(strings, code, params, locale) {
    return typeof code === "string" ? text(strings, `message_${code}`, paramsOf(params), locale) : null;
}
/**
 * Word a `market.alert` from its type and figures: a price threshold reached from above or
 * below (the price against the threshold tells which), a move in percent, a volume spike.
 */
export function alertText(strings, alert, locale) {
    const params = {
        symbol: alert.symbol,
        price: alert.current_value,
        threshold: alert.threshold,
        measured: alert.trigger_value,
    };
    let key = `alert_${alert.alert_type}`;
    if (alert.alert_type === "price_threshold") {
        // The event names no direction: the rule's condition says it; without it the price against
        // the threshold does (a price exactly at the threshold then reads as "above").
        const price = asNumber(alert.current_value);
        const threshold = asNumber(alert.threshold);
        const below = alert.condition ? alert.condition === "below" : price !== null && threshold !== null && price < threshold;
        key = below ? "alert_price_below" : "alert_price_above";
    }
    return text(strings, key, params, locale) ?? render(strings.alert_unknown ?? "{symbol}", params, locale);
}
/** Word an alert rule from its condition and threshold. */
export function alertRuleText(strings, rule, locale) {
    const params = { symbol: rule.symbol, threshold: rule.threshold, reference: rule.reference_price ?? null };
    return (text(strings, `rule_${rule.condition}`, params, locale) ??
        render(strings.rule_unknown ?? "{symbol} {threshold:num}", params, locale));
}
/** Word one finding of an analysis (market/reasons.py) from its code and figures. */
export function analysisReasonText(strings, reason, locale) {
    const params = reason.params ?? {};
    return (text(strings, `analysis_reason_${reason.code}`, params, locale) ??
        render(strings.analysis_reason_unknown ?? "{code}", { code: reason.code }, locale));
}
