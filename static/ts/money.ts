/**
 * Exact decimal arithmetic for the desk's money figures, on scaled integers (BigInt).
 *
 * The wire carries exact decimal JSON numbers; a number the browser parsed from one (at most 15
 * significant digits, as every price, quantity and amount of this app) prints back as the same
 * decimal, so `units()` recovers it exactly. Products are rounded to cents half away from zero,
 * as the server's `money()` (ROUND_HALF_UP) does.
 */

export type Amount = number | string | null | undefined;

/** Return `value` as an integer count of 10^-places, exactly; null when it is not a finite decimal. */
export function units(value: Amount, places: number): bigint | null {
  if (value === null || value === undefined || value === "") return null;
  let text = typeof value === "number" ? numberText(value) : value.trim();
  if (text === null) return null;
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match || (match[2] === "" && (match[3] ?? "") === "")) return null;
  const [, sign, whole, fraction = ""] = match;
  const kept = fraction.slice(0, places).padEnd(places, "0");
  let result = BigInt((whole || "0") + kept);
  // Digits beyond `places` round half away from zero.
  const dropped = fraction.slice(places);
  if (dropped !== "" && dropped[0] >= "5") result += 1n;
  return sign === "-" ? -result : result;
}

function numberText(value: number): string | null {
  if (!Number.isFinite(value)) return null;
  const text = String(value);
  if (!/e/i.test(text)) return text;
  // 1e-7 or 1e+21: far outside any figure of the desk; written out in full.
  return Math.abs(value) < 1 ? value.toFixed(20) : BigInt(Math.round(value)).toString();
}

/** Divide and round half away from zero. */
export function divRound(numerator: bigint, denominator: bigint): bigint {
  if (denominator === 0n) throw new RangeError("division by zero");
  const negative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = denominator < 0n ? -denominator : denominator;
  const quotient = (2n * n + d) / (2n * d);
  return negative ? -quotient : quotient;
}

/** Scale factor 10^places. */
export function scale(places: number): bigint {
  return 10n ** BigInt(places);
}

/** Return `value` (in 10^-from) in 10^-to, rounded half away from zero when it loses digits. */
export function rescale(value: bigint, from: number, to: number): bigint {
  return to >= from ? value * scale(to - from) : divRound(value, scale(from - to));
}

/** Return a count of cents as a number of euros (exact for every amount the desk shows). */
export function euros(cents: bigint): number {
  return Number(cents) / 100;
}

/** Return `part` as a percentage of `whole`, to two places; 0 when `whole` is not positive (as the server's `percent`). */
export function percentOf(part: bigint, whole: bigint): number {
  if (whole <= 0n) return 0;
  return Number(divRound(part * 10000n, whole)) / 100;
}
