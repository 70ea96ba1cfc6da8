/**
 * Wire types of the gateway's event protocol, mirroring realtime/protocol.py and
 * realtime/events.py. Decimal fields (money, prices, quantities) arrive as JSON numbers.
 */
/** Every event type a client may subscribe to (the keys of realtime.events.EVENT_SCHEMAS). */
export const SUBSCRIBABLE_EVENT_TYPES = [
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
];
