// Uses the package's types wrongly; the test expects the compiler to refuse each line.
import { WebSocketEventClient } from "@aktienanalyse/event-client";

const client = new WebSocketEventClient("ws://127.0.0.1/ws", { heartbeat_interval: "30s" });
client.on("trading.order_filled", (message) => message.data.fill_prise);
client.subscribe("market.price_update");
