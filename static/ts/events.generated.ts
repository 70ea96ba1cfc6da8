/**
 * The `data` of every event type, generated from the gateway's schema table
 * (realtime/wire/events.py) by `python manage.py generate_ts_events`; do not edit.
 *
 * Field names are those on the wire. Decimals (money, prices, quantities) arrive as exact JSON
 * numbers, which JSON.parse reads as `number`; a handler's second argument has the frame's text
 * when every digit matters. A choice also admits the value the spec's dataclass defaults it to
 * (mostly ""), which the gateway accepts from services on the Redis bus.
 */

/** A decimal of the server (money, price, quantity), received as a JSON number. */
export type DecimalNumber = number;
/** An ISO-8601 timestamp string. */
export type Timestamp = string;

/** The `type` of an event message: its event type's prefix. */
export type EventCategory = "portfolio" | "trading" | "market" | "analysis" | "system" | "unknown";

/** `portfolio.update` (spec section 2.1, `PortfolioUpdateEvent`). */
export interface PortfolioUpdateData {
  portfolio_id: string;
  total_value: DecimalNumber;
  total_change: DecimalNumber;
  total_change_percent: DecimalNumber;
  positions_count: number;
  last_updated: Timestamp;
  positions: Record<string, unknown>[];
}

/** `portfolio.position_changed` (spec section 2.1, `PositionChangedEvent`). */
export interface PositionChangedData {
  portfolio_id: string;
  symbol: string;
  isin: string;
  action: "buy" | "sell" | "update" | "";
  quantity: DecimalNumber;
  price: DecimalNumber;
  value: DecimalNumber;
  change: DecimalNumber;
  change_percent: DecimalNumber;
  timestamp: Timestamp;
}

/** `portfolio.value_changed` (spec section 2.1, `PortfolioValueChangedEvent`). */
export interface PortfolioValueChangedData {
  portfolio_id: string;
  previous_value: DecimalNumber;
  current_value: DecimalNumber;
  change: DecimalNumber;
  change_percent: DecimalNumber;
  trigger_reason: string;
  timestamp: Timestamp;
}

/** `trading.order_created` (spec section 2.2, `OrderCreatedEvent`). */
export interface OrderCreatedData {
  order_id: string;
  symbol: string;
  order_type: "market" | "limit" | "stop" | "";
  side: "buy" | "sell" | "";
  quantity: DecimalNumber;
  price: DecimalNumber | null;
  stop_price: DecimalNumber | null;
  status: string;
  created_at: Timestamp;
}

/** `trading.order_filled` (spec section 2.2, `OrderFilledEvent`). */
export interface OrderFilledData {
  order_id: string;
  symbol: string;
  side: "buy" | "sell" | "";
  quantity: DecimalNumber;
  filled_quantity: DecimalNumber;
  fill_price: DecimalNumber;
  total_value: DecimalNumber;
  fees: DecimalNumber;
  status: "filled" | "partially_filled";
  filled_at: Timestamp;
}

/** `trading.order_cancelled` (spec section 2.2, `OrderCancelledEvent`). */
export interface OrderCancelledData {
  order_id: string;
  symbol: string;
  cancel_reason: string;
  remaining_quantity: DecimalNumber;
  cancelled_at: Timestamp;
}

/** `trading.order_failed` (spec section 2.2, `OrderFailedEvent`). */
export interface OrderFailedData {
  order_id: string;
  symbol: string;
  error_code: string;
  error_message: string;
  failed_at: Timestamp;
}

/** `market.price_update` (spec section 2.3, `PriceUpdateEvent`). */
export interface PriceUpdateData {
  symbol: string;
  isin: string;
  price: DecimalNumber;
  previous_price: DecimalNumber;
  change: DecimalNumber;
  change_percent: DecimalNumber;
  volume: number;
  timestamp: Timestamp;
  source: string;
}

/** `market.alert` (spec section 2.3, `MarketAlertEvent`). */
export interface MarketAlertData {
  alert_type: string;
  symbol: string;
  message: string;
  severity: "info" | "warning" | "critical" | "";
  trigger_value: DecimalNumber;
  current_value: DecimalNumber;
  threshold: DecimalNumber;
  timestamp: Timestamp;
}

/** `analysis.complete` (spec section 2.3, `AnalysisCompleteEvent`). */
export interface AnalysisCompleteData {
  analysis_id: string;
  analysis_type: string;
  symbol: string;
  result: Record<string, unknown>;
  confidence_score: DecimalNumber;
  recommendation: "buy" | "sell" | "hold" | "";
  completed_at: Timestamp;
}

/** `system.service_status` (spec section 2.4, `ServiceStatusEvent`). */
export interface ServiceStatusData {
  service_name: string;
  status: "online" | "offline" | "degraded" | "";
  health_score: number;
  response_time_ms: number;
  error_rate: number;
  timestamp: Timestamp;
  additional_info: Record<string, unknown>;
}

/** `system.performance_alert` (spec section 2.4, `PerformanceAlertEvent`). */
export interface PerformanceAlertData {
  alert_type: string;
  service_name: string;
  metric_name: string;
  current_value: number;
  threshold: number;
  severity: "warning" | "critical" | "";
  timestamp: Timestamp;
}

/** `system.error` (spec section 2.4, `ErrorOccurredEvent`). */
export interface ErrorOccurredData {
  error_id: string;
  service_name: string;
  error_type: string;
  error_message: string;
  severity: "warning" | "error" | "critical" | "";
  user_affected: boolean;
  timestamp: Timestamp;
}

/** `system.gateway_snapshot`: the gateway's own event (not in the spec). */
export interface GatewaySnapshotData {
  process: string;
  connections: Record<string, unknown>[];
  connections_total: number;
  events_delivered: Record<string, unknown>;
  messages_received: number;
  messages_sent: number;
  recent_errors: Record<string, unknown>[];
  timestamp: Timestamp;
}

/** `system.bus_message_dropped`: the gateway's own event (not in the spec). */
export interface BusMessageDroppedData {
  reason: string;
  detail: string;
  excerpt: string;
  dropped_since_last: number;
  timestamp: Timestamp;
}

/** `user.action`: written by the gateway; the spec names the type and no fields. */
export interface UserActionData {
  user_id: number;
  username: string;
  client_id: string;
  action: "connected" | "disconnected";
  timestamp: Timestamp;
}

/** `user.command`: written by the gateway; the spec names the type and no fields. */
export interface UserCommandData {
  user_id: number;
  username: string;
  client_id: string;
  command: string;
  status: "success" | "error" | "failure" | "refused" | "forwarded";
  error_code: string | null;
  duration_ms: number | null;
  timestamp: Timestamp;
}

/** `user.subscription`: written by the gateway; the spec names the type and no fields. */
export interface UserSubscriptionData {
  user_id: number;
  username: string;
  client_id: string;
  action: "subscribe" | "unsubscribe" | "revoked";
  event_types: string[];
  symbols: string[] | null;
  timestamp: Timestamp;
}

/** Every event type of the schema table and the `data` it carries. */
export interface SchemaEventDataMap {
  "portfolio.update": PortfolioUpdateData;
  "portfolio.position_changed": PositionChangedData;
  "portfolio.value_changed": PortfolioValueChangedData;
  "trading.order_created": OrderCreatedData;
  "trading.order_filled": OrderFilledData;
  "trading.order_cancelled": OrderCancelledData;
  "trading.order_failed": OrderFailedData;
  "market.price_update": PriceUpdateData;
  "market.alert": MarketAlertData;
  "analysis.complete": AnalysisCompleteData;
  "system.service_status": ServiceStatusData;
  "system.performance_alert": PerformanceAlertData;
  "system.error": ErrorOccurredData;
  "system.gateway_snapshot": GatewaySnapshotData;
  "system.bus_message_dropped": BusMessageDroppedData;
  "user.action": UserActionData;
  "user.command": UserCommandData;
  "user.subscription": UserSubscriptionData;
}

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
] as const;

/** The event types a subscription can narrow to some symbols (`subscribe(types, {symbols})`). */
export const SYMBOL_FILTERED_EVENT_TYPES = [
  "market.price_update",
  "market.alert",
  "analysis.complete",
] as const;

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
] as const;
