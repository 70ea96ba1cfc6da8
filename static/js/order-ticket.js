/**
 * The order ticket's logic: the preview before sending, the warnings for prices and alert
 * thresholds far from the market, when to ask for confirmation, and what a key does.
 */
import { divRound, euros, rescale, units } from "./money.js";
/** Estimate what an order costs or brings in, its fees and the cash after it, as the server books a fill. */
export function previewOrder(input) {
    const quantity = units(input.quantity, 4);
    const price = units(input.orderType === "market" ? input.lastPrice : input.price, 4);
    const empty = { price: price === null ? null : Number(price) / 1e4, gross: null, fees: null, total: null, cashAfter: null };
    if (quantity === null || price === null)
        return { ...empty, exceeds: false };
    const grossCents = rescale(quantity * price, 8, 2);
    const rate = units(input.feeRate, 8);
    const minimum = units(input.minFee, 2);
    let feeCents = null;
    if (rate !== null && minimum !== null) {
        // money(value × rate), at least the minimum fee (trading.execution.fee_for).
        const byRate = divRound(quantity * price * rate, 10n ** 14n);
        feeCents = byRate > minimum ? byRate : minimum;
    }
    const totalCents = feeCents === null ? null : input.side === "buy" ? grossCents + feeCents : grossCents - feeCents;
    const cash = units(input.cash, 2);
    const cashAfter = totalCents === null || cash === null ? null : input.side === "buy" ? cash - totalCents : cash + totalCents;
    let exceeds = false;
    if (input.side === "buy") {
        const power = units(input.buyingPower, 2);
        exceeds = power !== null && totalCents !== null && totalCents > power;
    }
    else {
        const held = units(input.held, 4);
        exceeds = held !== null && quantity > held;
    }
    return {
        price: Number(price) / 1e4,
        gross: euros(grossCents),
        fees: feeCents === null ? null : euros(feeCents),
        total: totalCents === null ? null : euros(totalCents),
        cashAfter: cashAfter === null ? null : euros(cashAfter),
        exceeds,
    };
}
/** How far `price` is from the market `lastPrice`, in percent of it (signed); null without both. */
export function distancePercent(price, lastPrice) {
    const target = units(price, 4);
    const market = units(lastPrice, 4);
    if (target === null || market === null || market <= 0n)
        return null;
    return Number(divRound((target - market) * 10000n, market)) / 100;
}
/** The share of the market price beyond which a limit, stop or alert threshold counts as far from it. */
export const FAR_FROM_MARKET_PERCENT = 10;
/** Whether `price` lies more than `limit` percent from the market price. */
export function isFarFromMarket(price, lastPrice, limit = FAR_FROM_MARKET_PERCENT) {
    const distance = distancePercent(price, lastPrice);
    return distance !== null && Math.abs(distance) > limit;
}
export const CONFIRM_SETTING_KEY = "desk.confirm-orders";
export const CONFIRM_SESSION_SKIP_KEY = "desk.confirm-orders.skip-session";
/**
 * Whether an order is confirmed before it is sent: yes unless the setting (kept across
 * sessions) turns it off or "don't ask again for this session" was chosen.
 */
export class ConfirmPolicy {
    constructor(settings, session) {
        this.settings = settings;
        this.session = session;
    }
    get enabled() {
        return this.settings.getItem(CONFIRM_SETTING_KEY) !== "off";
    }
    set enabled(on) {
        this.settings.setItem(CONFIRM_SETTING_KEY, on ? "on" : "off");
        if (on)
            this.session.setItem(CONFIRM_SESSION_SKIP_KEY, "");
    }
    skipForSession() {
        this.session.setItem(CONFIRM_SESSION_SKIP_KEY, "1");
    }
    /** Ask before sending, unless a warning must be seen: then always ask. */
    shouldConfirm(hasWarnings = false) {
        if (hasWarnings)
            return true;
        return this.enabled && this.session.getItem(CONFIRM_SESSION_SKIP_KEY) !== "1";
    }
}
/**
 * What a key press does on the desk: B/S outside fields start a buy or sell; Enter confirms an
 * open confirmation; Escape closes it (or the modify dialog); Enter in a ticket field is
 * swallowed, so only the send button (clicked, or Enter on it) starts an order.
 */
export function keyAction(context) {
    if (context.modified)
        return null;
    const key = context.key;
    if (key === "Escape")
        return context.dialogOpen ? "cancel" : null;
    if (key === "Enter") {
        if (context.onButton)
            return null;
        if (context.confirming)
            return "confirm";
        if (context.inField && context.inTicket)
            return "swallow-enter";
        return null;
    }
    if (context.inField || context.confirming)
        return null;
    if (key === "b" || key === "B")
        return "start-buy";
    if (key === "s" || key === "S")
        return "start-sell";
    return null;
}
