/** Number and text formatting of the desk, in the page's language (de-DE by default). */
export function pageLocale() {
    const lang = (document.documentElement.lang || "de").toLowerCase();
    return lang.startsWith("en") ? "en-GB" : "de-DE";
}
/** Round to `places` and drop the sign of a result that rounds to zero (no "-0,00"). */
export function roundedForDisplay(value, places) {
    const factor = 10 ** places;
    const rounded = Math.round(Math.abs(value) * factor) / factor;
    return rounded === 0 ? 0 : Math.sign(value) * rounded;
}
export function formatEuro(value, locale = pageLocale()) {
    value = roundedForDisplay(value, 2);
    return new Intl.NumberFormat(locale, {
        style: "currency",
        currency: "EUR",
        minimumFractionDigits: 2,
        maximumFractionDigits: 2,
    }).format(value);
}
export function formatNumber(value, locale = pageLocale(), maxFraction = 4) {
    value = roundedForDisplay(value, maxFraction);
    return new Intl.NumberFormat(locale, { minimumFractionDigits: 0, maximumFractionDigits: maxFraction }).format(value);
}
export function formatSigned(value, formatted) {
    return value > 0 ? `+${formatted}` : formatted;
}
export function formatPercent(value, locale = pageLocale()) {
    value = roundedForDisplay(value, 2);
    const text = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
    return `${formatSigned(value, text)} %`;
}
export function formatTime(iso, locale = pageLocale()) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) {
        return iso;
    }
    return new Intl.DateTimeFormat(locale, { dateStyle: "short", timeStyle: "medium" }).format(moment);
}
/** A calendar date ("2026-11-01" or a moment) in the page's locale; anything else as it is. */
export function formatDate(value, locale = pageLocale()) {
    const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    // A bare date is a calendar day, not midnight UTC: build it from its parts so no time zone shifts it.
    const moment = day ? new Date(Number(day[1]), Number(day[2]) - 1, Number(day[3])) : new Date(value);
    if (Number.isNaN(moment.getTime()))
        return value;
    return new Intl.DateTimeFormat(locale, { dateStyle: "medium" }).format(moment);
}
/** Replace `{name}` placeholders of a translated text. */
export function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}
/** The decimal and grouping separators of `locale` ("," and "." in German, "." and "," in English). */
export function separators(locale) {
    const parts = new Intl.NumberFormat(locale).formatToParts(12345.6);
    const decimal = parts.find((part) => part.type === "decimal")?.value ?? ".";
    return { decimal, group: decimal === "," ? "." : "," };
}
function escape(character) {
    return character.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
/**
 * Parse a decimal typed by a person in the page's locale into a number whose JSON form is the
 * same decimal, so the server reads exactly what was typed.
 *
 * The locale's decimal separator is the decimal point ("12,5" in German, "12.5" in English);
 * grouping by the other separator is taken when it groups by threes ("1.000,25", "1,000.25").
 * The other separator alone is read as a decimal point too ("12.5" in German), except before
 * exactly three digits, where it might be grouping ("1.000" in German: one or a thousand?):
 * that is refused as ambiguous. Spaces (also narrow, non-breaking) are grouping.
 */
export function parseDecimalInput(raw, locale = pageLocale()) {
    const { decimal, group } = separators(locale);
    const text = raw.trim().replace(/[\s\u00a0\u202f]/g, "");
    if (text === "") {
        return { ok: false, reason: "required" };
    }
    const d = escape(decimal);
    const g = escape(group);
    let plain = null;
    if (new RegExp(`^-?\\d+(${d}\\d+)?$`).test(text)) {
        plain = text.replace(decimal, ".");
    }
    else if (new RegExp(`^-?\\d{1,3}(${g}\\d{3})+(${d}\\d+)?$`).test(text) && text.includes(decimal)) {
        plain = text.split(group).join("").replace(decimal, ".");
    }
    else if (new RegExp(`^-?\\d+${g}\\d+$`).test(text)) {
        if (new RegExp(`^-?\\d{1,3}${g}\\d{3}$`).test(text)) {
            return { ok: false, reason: "ambiguous" };
        }
        plain = text.replace(group, ".");
    }
    else if (new RegExp(`^-?\\d{1,3}(${g}\\d{3}){2,}$`).test(text)) {
        plain = text.split(group).join("");
    }
    if (plain === null) {
        return { ok: false, reason: "not_a_number" };
    }
    const digits = plain.replace(/^-/, "").replace(".", "").replace(/^0+/, "");
    if (digits.length > 15) {
        return { ok: false, reason: "too_precise" };
    }
    return { ok: true, value: Number(plain) };
}
/** Write a number for an input field in the page's locale, without grouping ("12,5" in German). */
export function formatDecimalInput(value, locale = pageLocale()) {
    if (value === null || value === undefined || value === "")
        return "";
    const number = typeof value === "number" ? value : Number(value);
    if (!Number.isFinite(number))
        return "";
    return new Intl.NumberFormat(locale, { useGrouping: false, maximumFractionDigits: 6 }).format(number);
}
