// The client and a draining server: close 1012 ("service restart") means reconnect now.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { WebSocketEventClient } from "../../static/js/event-client.js";
import { FakeNetwork, Gateway, WebSocket, nextEmit, quietLogger } from "./gateway.mjs";

let gateway;
let clients;

// A backoff of a minute at least, so only an immediate reconnect comes back within the test.
function slowBackoffClient(options = {}) {
  const client = new WebSocketEventClient(gateway.url, {
    reconnect_base_delay: 60000,
    reconnect_max_delay: 60000,
    random: () => 0.99,
    heartbeat_interval: 0,
    network: new FakeNetwork(),
    logger: quietLogger,
    createSocket: (url) => new WebSocket(url),
    ...options,
  });
  clients.push(client);
  return client;
}

beforeEach(async () => {
  gateway = await new Gateway().start();
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.disconnect();
  await gateway.stop().catch(() => undefined);
});

test("a 1012 close reconnects at once, without backoff, and resubscribes with since", async () => {
  // given a client that saw event 41 of epoch e7 and whose backoff would wait a minute
  const client = slowBackoffClient({ event_types: ["trading.order_filled"] });
  await client.connect();
  const seen = nextEmit(client, "trading.order_filled");
  gateway.publishNumbered("trading.order_filled", { order_id: "1" }, 41, "e7");
  await seen;

  // when the server closes the socket with 1012 (it drains for a restart)
  const resubscribed = gateway.nextFrame((frame) => frame.type === "subscription" && gateway.connections.length === 2, 2000);
  const closed = nextEmit(client, "connection.closed");
  for (const socket of gateway.sockets) socket.close(1012, "service restart");

  // then it reconnects with no delay under its client id and asks for what followed event 41
  assert.equal((await closed).delay, 0);
  await nextEmit(client, "connection.established", 2000);
  assert.equal(gateway.connections[1].path, "/ws/client-1");
  assert.deepEqual((await resubscribed).data.since, { "trading.order_filled": { seq: 41, epoch: "e7" } });
});

test("any other close waits for the backoff", async () => {
  // given the same client
  const client = slowBackoffClient();
  await client.connect();

  // when the server goes away with 1001
  const closed = nextEmit(client, "connection.closed");
  for (const socket of gateway.sockets) socket.close(1001, "going away");

  // then the reconnect is scheduled after the backoff, not now
  const { delay, will_reconnect } = await closed;
  assert.equal(will_reconnect, true);
  assert.ok(delay >= 50000, `delay ${delay}`);
});

test("when the immediate reconnect after a 1012 fails, the next one backs off", async () => {
  // given a connected client
  const client = slowBackoffClient();
  await client.connect();

  // when the server stops listening, then closes the open socket with 1012
  gateway.server.close(); // no new connections from now on; ws 8 keeps the open socket open
  const first = nextEmit(client, "connection.closed");
  for (const socket of gateway.sockets) socket.close(1012, "service restart");
  assert.equal((await first).delay, 0);
  const second = await nextEmit(client, "connection.closed", 2000);

  // then the next attempt waits for the backoff
  assert.ok(second.delay >= 50000, `delay ${second.delay}`);
});
