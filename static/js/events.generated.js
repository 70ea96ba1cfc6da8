/**
 * The `data` of every event type, generated from the gateway's schema table
 * (realtime/wire/events.py) by `python manage.py generate_ts_events`; do not edit.
 *
 * Field names are those on the wire. Decimals (money, prices, quantities) arrive as exact JSON
 * numbers, which JSON.parse reads as `number`; a handler's second argument has the frame's text
 * when every digit matters. A choice also admits the value the spec's dataclass defaults it to
 * (mostly ""), which the gateway accepts from services on the Redis bus.
 */
/** Every event type a client may subscribe to (each still needs its permission). */
export const EVENT_TYPES = [
    "portfolio.update",
    "portfolio.position_changed",
    "portfolio.value_changed",
    "trading.order_created",
    "trading.order_filled",
    "trading.order_cancelled",
    "trading.order_failed",
    "market.price_update",
    "market.alert",
    "analysis.complete",
    "system.service_status",
    "system.performance_alert",
    "system.error",
    "system.gateway_snapshot",
    "system.bus_message_dropped",
    "user.action",
    "user.command",
    "user.subscription",
];
/** The event types a subscription can narrow to some symbols (`subscribe(types, {symbols})`). */
export const SYMBOL_FILTERED_EVENT_TYPES = [
    "market.price_update",
    "market.alert",
    "analysis.complete",
];
/** The event types whose events may be meant for some users only (a gap in `seq` is no loss). */
export const PERSONAL_EVENT_TYPES = [
    "portfolio.update",
    "portfolio.position_changed",
    "portfolio.value_changed",
    "trading.order_created",
    "trading.order_filled",
    "trading.order_cancelled",
    "trading.order_failed",
    "market.alert",
    "analysis.complete",
];
