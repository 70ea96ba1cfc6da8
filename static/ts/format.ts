/** Number and text formatting of the desk, in the page's language (de-DE by default). */

export function pageLocale(): string {
  const lang = (document.documentElement.lang || "de").toLowerCase();
  return lang.startsWith("en") ? "en-GB" : "de-DE";
}

export function formatEuro(value: number, locale = pageLocale()): string {
  return new Intl.NumberFormat(locale, {
    style: "currency",
    currency: "EUR",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  }).format(value);
}

export function formatNumber(value: number, locale = pageLocale(), maxFraction = 4): string {
  return new Intl.NumberFormat(locale, { minimumFractionDigits: 0, maximumFractionDigits: maxFraction }).format(value);
}

export function formatSigned(value: number, formatted: string): string {
  return value > 0 ? `+${formatted}` : formatted;
}

export function formatPercent(value: number, locale = pageLocale()): string {
  const text = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
  return `${formatSigned(value, text)} %`;
}

export function formatTime(iso: string, locale = pageLocale()): string {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) {
    return iso;
  }
  return new Intl.DateTimeFormat(locale, { dateStyle: "short", timeStyle: "medium" }).format(moment);
}

/** Replace `{name}` placeholders of a translated text. */
export function fill(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}

export type ParsedDecimal = { ok: true; value: number } | { ok: false; reason: "required" | "not_a_number" | "too_precise" };

/**
 * Parse a decimal typed by a person ("12,5", "1.000,25" is refused as ambiguous) into a number
 * whose JSON form is the same decimal, so the server reads exactly what was typed.
 */
export function parseDecimalInput(raw: string): ParsedDecimal {
  const text = raw.trim().replace(",", ".");
  if (text === "") {
    return { ok: false, reason: "required" };
  }
  if (!/^-?\d+(\.\d+)?$/.test(text)) {
    return { ok: false, reason: "not_a_number" };
  }
  const digits = text.replace(/^-/, "").replace(".", "").replace(/^0+/, "");
  if (digits.length > 15) {
    return { ok: false, reason: "too_precise" };
  }
  return { ok: true, value: Number(text) };
}
