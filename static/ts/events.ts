/**
 * Wire types of the gateway's event protocol, mirroring realtime/protocol.py and
 * realtime/events.py. Decimal fields (money, prices, quantities) arrive as JSON numbers.
 */

/** A decimal value of the server (money, price, quantity), received as a JSON number. */
export type DecimalNumber = number;
/** An ISO-8601 timestamp string. */
export type Timestamp = string;

export type MessageType =
  | "portfolio"
  | "trading"
  | "market"
  | "analysis"
  | "system"
  | "unknown"
  | "command_response"
  | "error";

/** Every server message carries this envelope (the spec's `WebSocketMessage`). */
export interface WebSocketMessage<D = unknown> {
  type: MessageType | string;
  event: string;
  data: D;
  timestamp: Timestamp;
  correlation_id?: string | null;
  source_service?: string | null;
  target_client?: string | null;
  /** Broadcast events only: position in the event type's stream, for replay after a reconnect. */
  seq?: number;
  epoch?: string;
}

/** A message a client sends: subscription, user command or ping. */
export interface ClientMessage {
  type: "subscription" | "user" | "ping";
  event: string;
  data: Record<string, unknown>;
  timestamp: Timestamp;
  correlation_id?: string;
}

// 2.1 Portfolio

export interface PortfolioPosition {
  symbol?: string;
  isin?: string;
  quantity?: DecimalNumber;
  [field: string]: unknown;
}

export interface PortfolioUpdateData {
  portfolio_id: string;
  total_value: DecimalNumber;
  total_change: DecimalNumber;
  total_change_percent: DecimalNumber;
  positions_count: number;
  last_updated: Timestamp;
  positions: PortfolioPosition[];
}

export interface PositionChangedData {
  portfolio_id: string;
  symbol: string;
  isin: string;
  action: "buy" | "sell" | "update";
  quantity: DecimalNumber;
  price: DecimalNumber;
  value: DecimalNumber;
  change: DecimalNumber;
  change_percent: DecimalNumber;
  timestamp: Timestamp;
}

export interface PortfolioValueChangedData {
  portfolio_id: string;
  previous_value: DecimalNumber;
  current_value: DecimalNumber;
  change: DecimalNumber;
  change_percent: DecimalNumber;
  trigger_reason: string;
  timestamp: Timestamp;
}

// 2.2 Trading

export type OrderType = "market" | "limit" | "stop";
export type OrderSide = "buy" | "sell";

export interface OrderCreatedData {
  order_id: string;
  symbol: string;
  order_type: OrderType;
  side: OrderSide;
  quantity: DecimalNumber;
  price: DecimalNumber | null;
  stop_price: DecimalNumber | null;
  status: string;
  created_at: Timestamp;
}

export interface OrderFilledData {
  order_id: string;
  symbol: string;
  side: OrderSide;
  quantity: DecimalNumber;
  filled_quantity: DecimalNumber;
  fill_price: DecimalNumber;
  total_value: DecimalNumber;
  fees: DecimalNumber;
  status: "filled" | "partially_filled";
  filled_at: Timestamp;
}

export interface OrderCancelledData {
  order_id: string;
  symbol: string;
  cancel_reason: string;
  remaining_quantity: DecimalNumber;
  cancelled_at: Timestamp;
}

export interface OrderFailedData {
  order_id: string;
  symbol: string;
  error_code: string;
  error_message: string;
  failed_at: Timestamp;
}

// 2.3 Market data and analysis

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

export interface MarketAlertData {
  alert_type: string;
  symbol: string;
  message: string;
  severity: "info" | "warning" | "critical";
  trigger_value: DecimalNumber;
  current_value: DecimalNumber;
  threshold: DecimalNumber;
  timestamp: Timestamp;
}

export interface AnalysisCompleteData {
  analysis_id: string;
  analysis_type: string;
  symbol: string;
  result: Record<string, unknown>;
  confidence_score: DecimalNumber;
  recommendation: "buy" | "sell" | "hold";
  completed_at: Timestamp;
}

// 2.4 System

export interface ServiceStatusData {
  service_name: string;
  status: "online" | "offline" | "degraded";
  health_score: number;
  response_time_ms: number;
  error_rate: number;
  timestamp: Timestamp;
  additional_info: Record<string, unknown>;
}

export interface PerformanceAlertData {
  alert_type: string;
  service_name: string;
  metric_name: string;
  current_value: number;
  threshold: number;
  severity: "warning" | "critical";
  timestamp: Timestamp;
}

export interface SystemErrorData {
  error_id: string;
  service_name: string;
  error_type: string;
  error_message: string;
  severity: "warning" | "error" | "critical";
  user_affected: boolean;
  timestamp: Timestamp;
}

// Messages the gateway writes itself

export interface ConnectionEstablishedData {
  client_id: string;
  server_time: Timestamp;
}

export interface SubscriptionChangeData {
  event_type: string;
  client_id: string;
  /** The stream position the subscription starts after (absent when the history is unavailable). */
  seq?: number;
  epoch?: string;
  /** Present when `since` was sent: whether the missed events were replayed. */
  recovered?: boolean;
  /** Present when the type is narrowed to these symbols. */
  symbols?: string[];
}

export interface PongData {
  timestamp: Timestamp;
}

/** `data` of an `error` message: `event` and `code` carry the machine-readable code. */
export interface ErrorData {
  error: string;
  code: string;
  [detail: string]: unknown;
}

/** `data` of a `command_response` message (`event` is `<command>.response`). */
export interface CommandResponseData<R = unknown> {
  status: "success" | "error";
  command: string;
  result: R;
}

/** Event types and the `data` each carries. */
export interface EventDataMap {
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
  "system.error": SystemErrorData;
  "subscription.confirmed": SubscriptionChangeData;
  "subscription.removed": SubscriptionChangeData;
  pong: PongData;
}

export type EventType = keyof EventDataMap;

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
] as const;

// Command payloads and results (trading and market data apps)

export interface PlaceOrderCommand {
  symbol: string;
  side: OrderSide;
  quantity: DecimalNumber;
  order_type: OrderType;
  price?: DecimalNumber | null;
  stop_price?: DecimalNumber | null;
  client_order_id?: string;
}

/** `cancel_order`: `request_id` makes a repeat answer with the order instead of failing or acting twice. */
export interface CancelOrderCommand {
  order_id: string;
  request_id?: string;
}

/** `modify_order`: a new quantity, a new price (limit or stop), or both; `request_id` as for cancel. */
export interface ModifyOrderCommand {
  order_id: string;
  quantity?: DecimalNumber;
  price?: DecimalNumber;
  request_id?: string;
}

export interface PlaceOrderResult {
  order_id: string;
  status: string;
  message: string;
  /** The message by code, with the figures it names, for a client's own wording (added to the spec). */
  message_code?: string;
  message_params?: Record<string, unknown>;
}
