// The desk's WebSocketEventClient (the compiled static/js) places an order through a TCP proxy
// that loses the answer: once armed, the proxy withholds what the server sends and, as soon as
// the withheld bytes hold the place_order response, cuts the connection. The client reconnects
// through the proxy and re-sends; the script reports what it saw as one JSON line on stdout.
//
// Run by tests/test_e2e_trading.py. Environment: GATEWAY_PORT (daphne), GATEWAY_COOKIE. The
// proxy passes the Host header through unchanged, so the page's origin is the proxy's address,
// as it would be behind a real TCP balancer.
import { once } from "node:events";
import net from "node:net";

import { WebSocket } from "ws";

import { WebSocketEventClient, newRequestId } from "../../static/js/event-client.js";

const TARGET_PORT = Number(process.env.GATEWAY_PORT);
const COOKIE = process.env.GATEWAY_COOKIE ?? "";

/** A TCP proxy to the gateway that can lose the server's next answer. */
class LossyProxy {
  constructor() {
    this.armed = false;
    this.cuts = 0;
    this.connections = 0;
    this.server = net.createServer((client) => this.accept(client));
  }

  async start() {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return this.server.address().port;
  }

  accept(client) {
    this.connections += 1;
    const upstream = net.connect(TARGET_PORT, "127.0.0.1");
    let withheld = "";
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (!this.armed) {
        client.write(chunk);
        return;
      }
      // Server frames are not masked (and compression is off), so the response is readable.
      withheld += chunk.toString("latin1");
      if (withheld.includes('"place_order.response"')) {
        this.armed = false;
        this.cuts += 1;
        client.destroy();
        upstream.destroy();
      }
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  }

  close() {
    this.server.close();
  }
}

function nextEmit(client, event, predicate = () => true, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    const handler = (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      client.off(event, handler);
      resolve(payload);
    };
    client.on(event, handler);
  });
}

const proxy = new LossyProxy();
const proxyPort = await proxy.start();
const ORIGIN = `http://127.0.0.1:${proxyPort}`;
const sent = [];
const client = new WebSocketEventClient(`ws://127.0.0.1:${proxyPort}/ws`, {
  event_types: ["trading.order_created", "trading.order_filled"],
  heartbeat_interval: 0,
  reconnect_base_delay: 50,
  reconnect_max_delay: 200,
  command_timeout: 10000,
  logger: { debug() {}, warn() {}, error() {} },
  createSocket: (url) => {
    const socket = new WebSocket(url, { headers: { Cookie: COOKIE }, origin: ORIGIN, perMessageDeflate: false });
    const send = socket.send.bind(socket);
    socket.send = (data) => {
      sent.push(JSON.parse(data));
      send(data);
    };
    return socket;
  },
});

let report;
try {
  const confirmed = nextEmit(client, "subscription.confirmed", (m) => m.data.event_type === "trading.order_filled");
  await client.connect();
  await confirmed;
  const reconnected = nextEmit(client, "connection.established");
  proxy.armed = true;
  const clientOrderId = newRequestId();
  const result = await client.sendUserCommand(
    "place_order",
    { symbol: "SAP", side: "buy", quantity: 3, order_type: "market", price: null, client_order_id: clientOrderId },
    { idempotent: true },
  );
  await reconnected;
  report = {
    ok: true,
    client_order_id: clientOrderId,
    result,
    cuts: proxy.cuts,
    connections: proxy.connections,
    sends: sent.filter((frame) => frame.type === "user"),
  };
} catch (error) {
  report = { ok: false, error: String(error?.stack ?? error), cuts: proxy.cuts, connections: proxy.connections, sent };
} finally {
  client.disconnect();
  proxy.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.ok ? 0 : 1);
