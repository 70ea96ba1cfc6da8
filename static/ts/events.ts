/**
 * Wire types of the gateway's protocol: the envelope and the gateway's own messages, mirroring
 * realtime/wire/protocol.py, and the command payloads. The `data` of every event type is generated
 * from realtime/wire/events.py into events.generated.ts, re-exported here.
 */

import type { DecimalNumber, ErrorOccurredData, OrderCreatedData, SchemaEventDataMap, Timestamp } from "./events.generated.js";
import { EVENT_TYPES } from "./events.generated.js";

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

// Every event type's data, from the schema table

export * from "./events.generated.js";

/** The order types and sides a command may name (the events also admit the bus services' ""). */
export type OrderType = Exclude<OrderCreatedData["order_type"], "">;
export type OrderSide = Exclude<OrderCreatedData["side"], "">;
/** The `data` of `system.error` (the spec's `ErrorOccurredEvent`). */
export type SystemErrorData = ErrorOccurredData;

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
  /** Whether this connection gets every numbered event of the type, so a skipped seq is a loss. */
  complete?: boolean;
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

/** Event types and the gateway's own messages, and the `data` each carries. */
export interface EventDataMap extends SchemaEventDataMap {
  "subscription.confirmed": SubscriptionChangeData;
  "subscription.removed": SubscriptionChangeData;
  pong: PongData;
}

export type EventType = keyof EventDataMap;

/** Every event type a client may subscribe to (the keys of realtime.wire.events.EVENT_SCHEMAS). */
export const SUBSCRIBABLE_EVENT_TYPES = EVENT_TYPES;

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
