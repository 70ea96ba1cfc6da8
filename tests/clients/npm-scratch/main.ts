// A program written against the packed @aktienanalyse/event-client as an outside user would:
// it connects with a bearer token, holds one event type, asks who it is, and prints what it saw
// as one JSON line. Run by tests/test_typescript_package.py (GATEWAY_URL, GATEWAY_ORIGIN,
// GATEWAY_TOKEN).
import {
  CommandError,
  WebSocketEventClient,
  type ConnectionStatus,
  type PriceUpdateData,
  type SubscriptionChangeData,
  type WebSocketMessage,
} from "@aktienanalyse/event-client";
import { EVENT_TYPES, SYMBOL_FILTERED_EVENT_TYPES } from "@aktienanalyse/event-client/events";
import WebSocket from "ws";

interface ConnectionInfo {
  client_id: string;
  user: string;
  subscriptions: string[];
}

const url = process.env.GATEWAY_URL ?? "ws://127.0.0.1:8000/ws";
const origin = process.env.GATEWAY_ORIGIN ?? "http://127.0.0.1:8000";
const token = process.env.GATEWAY_TOKEN ?? "";

const client = new WebSocketEventClient(url, {
  event_types: ["market.price_update"],
  heartbeat_interval: 0,
  createSocket: (address) => new WebSocket(address, { origin, headers: { Authorization: `Bearer ${token}` } }),
});

const prices: number[] = [];
client.on("market.price_update", (message: WebSocketMessage<PriceUpdateData>) => {
  prices.push(message.data.price);
});
const confirmed = new Promise<SubscriptionChangeData>((resolve) => {
  client.on("subscription.confirmed", (message) => resolve(message.data));
});

try {
  await client.connect();
  const subscription = await confirmed;
  const info = await client.sendUserCommand<ConnectionInfo>("get_connection_info");
  const status: ConnectionStatus = client.getConnectionStatus();
  console.log(
    JSON.stringify({
      status,
      client_id: client.getClientId(),
      held: client.getSubscriptions(),
      confirmed: subscription.event_type,
      info,
      known_types: EVENT_TYPES.length,
      filtered: SYMBOL_FILTERED_EVENT_TYPES.includes("market.price_update"),
    }),
  );
} catch (error) {
  const code = error instanceof CommandError ? error.code : "connect";
  console.log(JSON.stringify({ error: String(error), code }));
  process.exitCode = 1;
} finally {
  client.disconnect();
}
