/**
 * The blotter's logic: which orders are open, how far each got, the queries of its three
 * lists (open orders, executions, history) and the reason shown in an order's row.
 */
import { reasonText } from "./i18n.js";
/** Statuses in which an order still rests in the market (cancel and modify apply). */
export const OPEN_STATUSES = ["open", "partially_filled"];
/** Statuses of the history's status filter, in the order the filter lists them. */
export const HISTORY_STATUSES = ["pending", "open", "partially_filled", "filled", "cancelled", "rejected", "failed"];
export function isOpen(status) {
    return OPEN_STATUSES.includes(status ?? "");
}
function num(value) {
    const number = typeof value === "number" ? value : Number(value ?? 0);
    return Number.isFinite(number) ? number : 0;
}
/** The quantity still to fill: the server's `remaining_quantity`, else quantity less filled. */
export function remainingOf(order) {
    if (order.remaining_quantity !== undefined && order.remaining_quantity !== null)
        return num(order.remaining_quantity);
    return num(order.quantity) - num(order.filled_quantity);
}
/** Whether some but not all of an order was filled. */
export function isPartlyFilled(order) {
    const filled = num(order.filled_quantity);
    return filled > 0 && filled < num(order.quantity);
}
/** The order's resting price (limit or stop), null for a market order. */
export function restingPrice(order) {
    const price = order.order_type === "stop" ? order.stop_price : order.price;
    return price === null || price === undefined || price === "" ? null : num(price);
}
/** The query string of a blotter list: page, symbol and status (several statuses comma-separated). */
export function listQuery(filter) {
    const query = new URLSearchParams();
    query.set("page", String(Math.max(1, filter.page ?? 1)));
    if (filter.symbol)
        query.set("symbol", filter.symbol);
    if (filter.status)
        query.set("status", filter.status);
    return query.toString();
}
/** The query of the open orders' list. */
export function openOrdersQuery(symbol) {
    return listQuery({ symbol, status: OPEN_STATUSES.join(","), page: 1 }) + "&page_size=200";
}
/** The ids of the orders "cancel all" cancels: every open one of the list. */
export function cancelAllTargets(orders) {
    return orders.filter((order) => isOpen(order.status)).map((order) => String(order.id));
}
/** The reason an order's row shows, in the page's language (empty when it has none). */
export function orderReason(strings, order, locale) {
    if (!order.reason_code)
        return "";
    return reasonText(strings, order.reason_code, { symbol: order.symbol, ...(order.reason_params ?? {}) }, locale);
}
/** The page count of a list whose pages hold `pageSize` rows. */
export function pageCount(count, pageSize) {
    return Math.max(1, Math.ceil(count / Math.max(1, pageSize)));
}
