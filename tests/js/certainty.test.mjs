// Idempotent commands (refused at once while disconnected, re-sent after a lost answer) and the
// resync signal on lost live events, of the compiled WebSocketEventClient against a real
// WebSocket server.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import { WebSocketEventClient, newRequestId } from "../../static/js/event-client.js";
import { FakeNetwork, Gateway, WebSocket, nextEmit, quietLogger } from "./gateway.mjs";

let gateway;
let clients;

function makeClient(options = {}) {
  const client = new WebSocketEventClient(gateway.url, {
    reconnect_base_delay: 20,
    reconnect_max_delay: 100,
    heartbeat_interval: 0,
    command_timeout: 2000,
    network: new FakeNetwork(),
    logger: quietLogger,
    createSocket: (url) => new WebSocket(url),
    ...options,
  });
  clients.push(client);
  return client;
}

/** Settle `promise` if it is settled already (by the next macrotask), else report "pending". */
function settledNow(promise) {
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error) => ({ error }),
    ),
    new Promise((resolve) => setImmediate(() => resolve("pending"))),
  ]);
}

/** A broker that places an order once per client_order_id, as trading.services.order_place does. */
function installBroker({ dropFirstAnswer }) {
  const orders = new Map();
  let dropped = false;
  gateway.commands.set("place_order", (data, reply) => {
    let order = orders.get(data.client_order_id);
    if (!order) {
      order = { order_id: String(orders.size + 1), status: "filled", message: "Order placed and filled." };
      orders.set(data.client_order_id, order);
    }
    if (dropFirstAnswer && !dropped) {
      // The order is placed, but the connection breaks before its answer leaves.
      dropped = true;
      for (const socket of gateway.sockets) socket.terminate();
      return;
    }
    reply("success", order);
  });
  return orders;
}

async function connectedAfterDrop(client) {
  await client.connect();
  const closed = nextEmit(client, "connection.closed");
  await gateway.stop();
  await closed;
}

beforeEach(async () => {
  gateway = await new Gateway().start();
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.disconnect();
  await gateway.stop().catch(() => undefined);
});

describe("idempotent commands", () => {
  test("newRequestId gives distinct ids the server's client_order_id pattern accepts", () => {
    const ids = new Set(Array.from({ length: 100 }, () => newRequestId()));
    assert.equal(ids.size, 100);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_.:-]{1,64}$/);
  });

  test("one sent while disconnected is refused at once and never sent later, even with queueing on", async () => {
    // given a client whose server went away (queueing of ordinary commands is on)
    const client = makeClient({ queue_while_disconnected: true });
    await connectedAfterDrop(client);

    // when an order is sent
    const order = client.sendUserCommand("place_order", { symbol: "SAP", client_order_id: "o-1" }, { idempotent: true });

    // then it is refused before anything else happens, and nothing waits for the connection
    const outcome = await settledNow(order);
    assert.notEqual(outcome, "pending");
    assert.equal(outcome.error.code, "not_connected");
    assert.equal(client.getQueuedCommandCount(), 0);
    assert.equal(client.getUnansweredCommandCount(), 0);
    // and after the reconnect the next command sent is the first the server receives
    await gateway.start();
    await nextEmit(client, "connection.established");
    gateway.commands.set("marker", (data, reply) => reply("success", {}));
    await client.sendUserCommand("marker", {});
    assert.deepEqual(gateway.received.filter((frame) => frame.type === "user").map((frame) => frame.event), ["marker"]);
  });

  test("an order whose answer is lost with the connection is re-sent unchanged after the reconnect and placed once", async () => {
    // given a broker that places the order and then loses the connection before answering
    const orders = installBroker({ dropFirstAnswer: true });
    const client = makeClient({ event_types: ["trading.order_filled"] });
    await client.connect();

    // when the order is sent
    const result = await client.sendUserCommand(
      "place_order",
      { symbol: "SAP", side: "buy", quantity: 3, order_type: "market", client_order_id: "ticket-1" },
      { idempotent: true },
    );

    // then the promise gets the order's final state, the broker holds one order, and the
    // second send is the same frame (ids and data), after the resubscription
    assert.deepEqual(result, { order_id: "1", status: "filled", message: "Order placed and filled." });
    assert.equal(orders.size, 1);
    const sends = gateway.received.filter((frame) => frame.type === "user");
    assert.equal(sends.length, 2);
    assert.deepEqual(sends[1], sends[0]);
    assert.equal(sends[1].data.client_order_id, "ticket-1");
    const secondConnection = gateway.received.slice(gateway.received.indexOf(sends[0]) + 1);
    assert.equal(secondConnection[0].type, "subscription");
    assert.equal(client.getUnansweredCommandCount(), 0);
  });

  test("an ordinary command in flight is still rejected on the drop and not re-sent", async () => {
    installBroker({ dropFirstAnswer: true });
    const client = makeClient();
    await client.connect();

    await assert.rejects(client.sendUserCommand("place_order", { client_order_id: "x-1" }), { code: "connection_lost" });
    await nextEmit(client, "connection.established");
    gateway.commands.set("marker", (data, reply) => reply("success", {}));
    await client.sendUserCommand("marker", {});

    assert.deepEqual(gateway.received.filter((frame) => frame.type === "user").map((frame) => frame.event), ["place_order", "marker"]);
  });

  test("one whose connection does not come back within its window fails as outcome_unknown", async () => {
    // given a command sent, then a server that goes away for longer than the window
    const client = makeClient({ idempotent_window: 150 });
    await client.connect();
    gateway.commands.set("cancel_order", () => undefined);
    const cancel = client.sendUserCommand("cancel_order", { order_id: "7", request_id: "r-1" }, { idempotent: true });
    await gateway.nextFrame((frame) => frame.type === "user");
    await gateway.stop();

    // then it fails as outcome_unknown (not connection_lost), and nothing is left to re-send
    await assert.rejects(cancel, { code: "outcome_unknown" });
    assert.equal(client.getUnansweredCommandCount(), 0);
  });

  test("one without an answer on a live connection fails as outcome_unknown after its timeout", async () => {
    const client = makeClient();
    await client.connect();
    gateway.commands.set("modify_order", () => undefined);

    await assert.rejects(
      client.sendUserCommand("modify_order", { order_id: "7", quantity: 2, request_id: "r-2" }, { idempotent: true, timeout: 100 }),
      { code: "outcome_unknown" },
    );
  });

  test("disconnect ends the wait for a re-send as outcome_unknown", async () => {
    const client = makeClient({ reconnect_base_delay: 60000, reconnect_max_delay: 60000, random: () => 0.99 });
    await client.connect();
    gateway.commands.set("cancel_order", () => undefined);
    const cancel = client.sendUserCommand("cancel_order", { order_id: "7", request_id: "r-3" }, { idempotent: true });
    await gateway.nextFrame((frame) => frame.type === "user");
    const closed = nextEmit(client, "connection.closed");
    await gateway.stop();
    await closed;
    assert.equal(client.getUnansweredCommandCount(), 1);

    client.disconnect();

    await assert.rejects(cancel, { code: "outcome_unknown" });
  });
});

describe("resync on lost live events", () => {
  /** Collect the resync signals; resolve `until(n)` once n have arrived. */
  function signals(client) {
    const seen = [];
    const waiting = [];
    client.on("subscription.recovery_failed", (data) => {
      seen.push(data);
      for (const wait of waiting.filter((w) => seen.length >= w.n)) {
        waiting.splice(waiting.indexOf(wait), 1);
        wait.resolve(seen);
      }
    });
    seen.until = (n, timeoutMs = 3000) =>
      seen.length >= n
        ? Promise.resolve(seen)
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${seen.length} of ${n} resync signals within ${timeoutMs} ms`)), timeoutMs);
            waiting.push({ n, resolve: (value) => (clearTimeout(timer), resolve(value)) });
          });
    return seen;
  }

  async function subscribed(client, types, symbols) {
    const confirmed = types.map(() => nextEmit(client, "subscription.confirmed"));
    if (symbols) client.subscribe(types, { symbols });
    await client.connect();
    await Promise.all(confirmed);
  }

  test("a seq that skips one on a type held for all symbols is a gap, and the event still arrives", async () => {
    // given a client holding market.price_update for all symbols (a complete stream)
    const client = makeClient({ event_types: ["market.price_update"] });
    const seen = signals(client);
    await subscribed(client, ["market.price_update"]);
    const delivered = [];
    client.on("market.price_update", (message) => delivered.push(message.seq));

    // when events 5 and 6 arrive, then 8
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 5, "e1");
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 6, "e1");
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 8, "e1");

    // then the only signal is the gap before 8, and all three events reached the page
    await seen.until(1);
    assert.deepEqual([...seen], [{ event_type: "market.price_update", reason: "gap", seq: 8, epoch: "e1", expected: 7 }]);
    assert.deepEqual(delivered, [5, 6, 8]);
  });

  test("on a personal type (another user's events skip numbers) a skipped seq is normal, but a new epoch is a change", async () => {
    // given a client holding trading.order_filled, which the gateway confirms as not complete
    gateway.personal.add("trading.order_filled");
    const client = makeClient({ event_types: ["trading.order_filled"] });
    const seen = signals(client);
    await subscribed(client, ["trading.order_filled"]);

    // when its events skip numbers (fills of portfolios it is no member of), then a new epoch starts
    gateway.publishNumbered("trading.order_filled", { order_id: "1" }, 3, "e1");
    gateway.publishNumbered("trading.order_filled", { order_id: "2" }, 9, "e1");
    gateway.publishNumbered("trading.order_filled", { order_id: "3" }, 1, "e2");

    // then the first signal is the epoch change: the skip before 9 gave none
    await seen.until(1);
    assert.deepEqual(seen.map((s) => [s.reason, s.seq]), [["epoch_changed", 1]]);
  });

  test("a live event of a new epoch is a change, and the position sent on resubscribe is the new one", async () => {
    const client = makeClient({ event_types: ["market.alert"] });
    const seen = signals(client);
    await subscribed(client, ["market.alert"]);

    gateway.publishNumbered("market.alert", { symbol: "SAP" }, 41, "e1");
    gateway.publishNumbered("market.alert", { symbol: "SAP" }, 1, "e2");
    await seen.until(1);

    assert.deepEqual([...seen], [{ event_type: "market.alert", reason: "epoch_changed", seq: 1, epoch: "e2" }]);
    await gateway.stop();
    const resubscribed = gateway.nextFrame((frame) => frame.type === "subscription", 5000);
    await gateway.start();
    assert.deepEqual((await resubscribed).data.since, { "market.alert": { seq: 1, epoch: "e2" } });
  });

  test("on a type narrowed to some symbols a skipped seq is normal, but a new epoch is a change", async () => {
    // given a client holding market.price_update for SAP only
    const client = makeClient();
    const seen = signals(client);
    await subscribed(client, ["market.price_update"], ["SAP"]);

    // when the events skip numbers (other symbols' events), then a new epoch starts
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 3, "e1");
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 9, "e1");
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 2, "e2");

    // then the first signal is the epoch change: the skip before 9 gave none
    await seen.until(1);
    assert.equal(seen[0].reason, "epoch_changed");
    assert.equal(seen[0].seq, 2);
  });

  test("unnumbered events are delivered and neither signal nor move the position", async () => {
    const client = makeClient({ event_types: ["market.price_update"] });
    const seen = signals(client);
    await subscribed(client, ["market.price_update"]);
    const delivered = [];
    client.on("market.price_update", (message) => delivered.push(message.seq ?? "none"));

    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 5, "e1");
    gateway.publish("market.price_update", { symbol: "SAP" });
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 6, "e1");
    gateway.publishNumbered("market.price_update", { symbol: "SAP" }, 8, "e1");
    await seen.until(1);

    assert.deepEqual(delivered, [5, "none", 6, 8]);
    assert.deepEqual(seen.map((s) => [s.reason, s.expected]), [["gap", 7]]);
  });

  test("after a reconnect each filter is resubscribed with its own symbols", async () => {
    const client = makeClient({ event_types: ["market.alert"] });
    client.subscribe(["market.price_update"], { symbols: ["SIE", "SAP", "SAP"] });
    await client.connect();

    await gateway.stop();
    const frames = [];
    const collecting = (frame) => frame.type === "subscription" && frames.push(frame) && frames.length === 2;
    const both = gateway.nextFrame(collecting, 5000);
    await gateway.start();
    await both;

    const bySymbols = Object.fromEntries(frames.map((frame) => [JSON.stringify(frame.data.symbols ?? null), frame.data.event_types]));
    assert.deepEqual(bySymbols, { null: ["market.alert"], '["SAP","SIE"]': ["market.price_update"] });
  });
});
