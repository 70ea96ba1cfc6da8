// Unit tests of the compiled WebSocketEventClient against a real WebSocket server.
import assert from "node:assert/strict";
import net from "node:net";
import { afterEach, beforeEach, describe, test } from "node:test";

import { WebSocketEventClient, CommandError, backoffDelay, newRequestId } from "../../static/js/event-client.js";
import { FakeNetwork, Gateway, WebSocket, nextEmit, quietLogger } from "./gateway.mjs";

let gateway;
let clients;

function makeClient(options = {}) {
  const sockets = [];
  const client = new WebSocketEventClient(gateway.url, {
    reconnect_base_delay: 20,
    reconnect_max_delay: 100,
    heartbeat_interval: 0,
    command_timeout: 2000,
    network: new FakeNetwork(),
    logger: quietLogger,
    createSocket: (url) => {
      sockets.push(url);
      return new WebSocket(url);
    },
    ...options,
  });
  client.socketUrls = sockets;
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

describe("connection", () => {
  test("connect resolves once the server establishes the connection and subscribes the initial types", async () => {
    // given a client holding two event types
    const client = makeClient({ event_types: ["market.price_update", "trading.order_filled"] });
    const subscribed = gateway.nextFrame((frame) => frame.type === "subscription");

    // when it connects
    await client.connect();

    // then it is connected under the server's client id and has subscribed both types
    assert.equal(client.getConnectionStatus(), "connected");
    assert.equal(client.getClientId(), "client-1");
    assert.deepEqual((await subscribed).data.event_types, ["market.price_update", "trading.order_filled"]);
    assert.equal(gateway.connections[0].path, "/ws/");
  });

  test("events reach the handlers of their type and a handler removed with off no longer runs", async () => {
    const client = makeClient({ event_types: ["market.price_update"] });
    await client.connect();
    const seen = [];
    const removed = () => seen.push("removed");
    client.on("market.price_update", (message) => seen.push(message.data.price));
    client.on("market.price_update", removed);
    client.off("market.price_update", removed);

    const arrived = nextEmit(client, "market.price_update");
    gateway.publish("market.price_update", { symbol: "SAP", price: 123.45 });
    await arrived;

    assert.deepEqual(seen, [123.45]);
  });

  test("handlers of a server message get the frame text as received, with its exact decimals", async () => {
    // given a connected client with a handler for one type and one for every message
    const client = makeClient({ event_types: ["market.price_update"] });
    await client.connect();
    const typed = [];
    const every = [];
    client.on("market.price_update", (message, raw) => typed.push([message.data.price, raw]));
    client.on("*", (message, raw) => every.push([message.event, raw]));

    // when a frame arrives whose decimal JSON.parse would shorten
    const text = '{"type":"market","event":"market.price_update","data":{"symbol":"SAP","price":1.50},"timestamp":"2026-01-02T10:00:00Z"}';
    const arrived = nextEmit(client, "market.price_update");
    gateway.publishText(text);
    await arrived;

    // then both handlers get the parsed message and the text exactly as sent
    assert.deepEqual(typed, [[1.5, text]]);
    assert.deepEqual(every, [["market.price_update", text]]);
  });

  test("disconnect closes for good and rejects commands still waiting", async () => {
    const client = makeClient();
    await client.connect();
    gateway.commands.set("slow", () => undefined);
    const pending = client.sendUserCommand("slow", {});

    client.disconnect();

    await assert.rejects(pending, (error) => error instanceof CommandError && error.code === "client_closed");
    assert.equal(client.getConnectionStatus(), "disconnected");
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(gateway.connections.length, 1, "no reconnect after disconnect()");
  });
});

describe("commands", () => {
  test("each response resolves the command with the same correlation id, whatever the order", async () => {
    // given a server that answers the first command only after the second
    const client = makeClient();
    await client.connect();
    let first;
    gateway.commands.set("place_order", (data, reply) => {
      if (data.symbol === "SAP") {
        first = reply;
      } else {
        reply("success", { order_id: "o-2", status: "filled", message: data.symbol });
        first("success", { order_id: "o-1", status: "filled", message: "SAP" });
      }
    });

    // when two commands are in flight
    const sap = client.sendUserCommand("place_order", { symbol: "SAP" });
    await gateway.nextFrame((frame) => frame.type === "user");
    const bmw = client.sendUserCommand("place_order", { symbol: "BMW" });

    // then each gets its own result
    assert.deepEqual(await sap, { order_id: "o-1", status: "filled", message: "SAP" });
    assert.deepEqual(await bmw, { order_id: "o-2", status: "filled", message: "BMW" });
  });

  test("events caused by a command share its correlation id but only the response settles it", async () => {
    // given a server that announces the order (same correlation id) before it answers
    const client = makeClient({ event_types: ["trading.order_created"] });
    await client.connect();
    gateway.commands.set("place_order", (data, reply, send) => {
      send("trading", "trading.order_created", { order_id: "o-1", symbol: "SAP", status: "pending" });
      setTimeout(() => reply("success", { order_id: "o-1", status: "filled", message: "filled" }), 30);
    });
    const announced = nextEmit(client, "trading.order_created");

    // when the order is placed
    const result = await client.sendUserCommand("place_order", { symbol: "SAP" });

    // then the event reached its handlers and the command resolved with the response's result
    assert.equal((await announced).data.order_id, "o-1");
    assert.deepEqual(result, { order_id: "o-1", status: "filled", message: "filled" });
  });

  test("an error response rejects with the server's code, message and details", async () => {
    const client = makeClient();
    await client.connect();
    gateway.commands.set("place_order", (data, reply) =>
      reply("error", { error: "Quantity must be positive.", code: "validation_error", field: "quantity" }),
    );

    await assert.rejects(client.sendUserCommand("place_order", { quantity: -1 }), (error) => {
      assert.ok(error instanceof CommandError);
      assert.equal(error.code, "validation_error");
      assert.equal(error.message, "Quantity must be positive.");
      assert.deepEqual(error.details, { field: "quantity" });
      return true;
    });
  });

  test("an error message carrying the command's correlation id rejects it", async () => {
    const client = makeClient();
    await client.connect();
    gateway.commands.set("flood", (data, reply, send) =>
      send("error", "too_many_commands", { error: "Too many commands.", code: "too_many_commands" }),
    );

    await assert.rejects(client.sendUserCommand("flood", {}), { code: "too_many_commands" });
  });

  test("a command without an answer is rejected after its timeout", async () => {
    const client = makeClient();
    await client.connect();
    gateway.commands.set("slow", () => undefined);

    const started = Date.now();
    await assert.rejects(client.sendUserCommand("slow", {}, { timeout: 100 }), { code: "timeout" });
    assert.ok(Date.now() - started >= 95);
  });

  test("a command sent while disconnected waits in the queue and is delivered after the reconnect", async () => {
    // given a connected client whose server goes away
    const client = makeClient();
    await client.connect();
    gateway.commands.set("refresh_portfolio", (data, reply) => reply("success", { refreshed: true }));
    const closed = nextEmit(client, "connection.closed");
    await gateway.stop();
    await closed;

    // when a command is sent while the server is down and the server comes back
    const answer = client.sendUserCommand("refresh_portfolio", {});
    assert.equal(client.getQueuedCommandCount(), 1);
    await gateway.start();

    // then the queued command is delivered and answered
    assert.deepEqual(await answer, { refreshed: true });
    assert.equal(client.getQueuedCommandCount(), 0);
  });

  test("with queueing off a command sent while disconnected is refused at once", async () => {
    const client = makeClient({ queue_while_disconnected: false });
    await client.connect();
    const closed = nextEmit(client, "connection.closed");
    await gateway.stop();
    await closed;

    await assert.rejects(client.sendUserCommand("refresh_portfolio", {}), { code: "not_connected" });
  });

  test("a full queue refuses further commands explicitly", async () => {
    const client = makeClient({ max_queued_commands: 2 });
    await client.connect();
    const closed = nextEmit(client, "connection.closed");
    await gateway.stop();
    await closed;

    const queued = [client.sendUserCommand("a", {}, { timeout: 50 }), client.sendUserCommand("b", {}, { timeout: 50 })];
    await assert.rejects(client.sendUserCommand("c", {}), { code: "queue_full" });
    for (const promise of queued) await assert.rejects(promise, { code: "timeout" });
    assert.equal(client.getQueuedCommandCount(), 0);
  });

  test("a command in flight when the connection drops is rejected, not re-sent", async () => {
    const client = makeClient();
    await client.connect();
    gateway.commands.set("place_order", () => undefined);
    const order = client.sendUserCommand("place_order", { symbol: "SAP" });
    await gateway.nextFrame((frame) => frame.type === "user");

    await gateway.stop();

    await assert.rejects(order, { code: "connection_lost" });
    await gateway.start();
    await nextEmit(client, "connection.established");
    const orders = gateway.received.filter((frame) => frame.type === "user");
    assert.equal(orders.length, 1);
  });
});

describe("disconnect", () => {
  test("disconnecting while the handshake is under way throws nothing, later either (Node's ws)", async () => {
    // given a server that takes the TCP connection and never answers the upgrade
    const silent = net.createServer();
    const arrived = new Promise((resolve) => silent.once("connection", resolve));
    await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
    let socket;
    const client = new WebSocketEventClient(`ws://127.0.0.1:${silent.address().port}/ws/`, {
      heartbeat_interval: 0,
      network: new FakeNetwork(),
      logger: quietLogger,
      createSocket: (url) => (socket = new WebSocket(url)),
    });
    const connecting = client.connect().catch((error) => error);
    (await arrived).on("error", () => undefined);
    // An error that escapes ends the wait at once (and the socket's close would not follow).
    let listener;
    const escaped = new Promise((resolve) => (listener = (error) => resolve(`escaped: ${error}`)));
    process.on("uncaughtException", listener);
    const closed = new Promise((resolve) => socket.once("close", () => resolve("closed")));
    try {
      // when the client is disconnected before the handshake completes
      client.disconnect();
      // then the socket closes, connect() rejects, and no error escapes
      assert.equal(await Promise.race([closed, escaped]), "closed");
      assert.match(String(await connecting), /disconnected/);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(await Promise.race([escaped, "none"]), "none");
      assert.equal(client.getConnectionStatus(), "disconnected");
    } finally {
      process.off("uncaughtException", listener);
      silent.close();
    }
  });
});

describe("reconnect", () => {
  test("after a server restart it reconnects with its client id and every held subscription", async () => {
    // given a client that changed its subscriptions after connecting
    const client = makeClient({ event_types: ["market.price_update"] });
    await client.connect();
    client.subscribe(["trading.order_filled", "market.alert"]);
    client.unsubscribe(["market.alert"]);
    const statuses = [];
    client.on("connection.status", ({ status }) => statuses.push(status));

    // when the server goes away and comes back
    await gateway.stop();
    const resubscribed = gateway.nextFrame((frame) => frame.type === "subscription", 5000);
    await gateway.start();
    await nextEmit(client, "connection.established");

    // then the new connection reuses the id and re-subscribes what it held
    assert.equal(gateway.connections.at(-1).path, "/ws/client-1");
    assert.equal(client.getClientId(), "client-1");
    assert.deepEqual((await resubscribed).data.event_types.sort(), ["market.price_update", "trading.order_filled"]);
    assert.deepEqual(client.getSubscriptions().sort(), ["market.price_update", "trading.order_filled"]);
    assert.equal(statuses[0], "reconnecting");
    assert.equal(statuses.at(-1), "connected");
  });

  test("it resubscribes with the last seq and epoch it saw and reports a replay the server cannot give", async () => {
    // given a client that saw event 7 of epoch e1
    const client = makeClient({ event_types: ["market.alert"] });
    await client.connect();
    const seen = nextEmit(client, "market.alert");
    gateway.publishNumbered("market.alert", { symbol: "SAP" }, 7, "e1");
    await seen;

    // when the server comes back and cannot replay
    await gateway.stop();
    gateway.replay = { recovered: false, seq: 3, epoch: "e2" };
    const resubscribed = gateway.nextFrame((frame) => frame.type === "subscription", 5000);
    const lost = nextEmit(client, "subscription.recovery_failed", 5000);
    await gateway.start();

    // then it asked for what came after 7 of e1, and is told to reload
    assert.deepEqual((await resubscribed).data.since, { "market.alert": { seq: 7, epoch: "e1" } });
    assert.deepEqual(await lost, { event_type: "market.alert", reason: "not_recovered", seq: 3, epoch: "e2" });
    gateway.replay = null;
  });

  test("reconnectNow skips the rest of a long backoff, and does nothing while connected", async () => {
    // given a client waiting out a one-minute backoff after the server went away
    const client = makeClient({ reconnect_base_delay: 60000, reconnect_max_delay: 60000, random: () => 0.99 });
    await client.connect();
    client.reconnectNow();
    assert.equal(client.socketUrls.length, 1);
    await gateway.stop();
    await nextEmit(client, "connection.reconnecting");
    await gateway.start();
    assert.equal(client.getConnectionStatus(), "reconnecting");

    // when the page asks to connect now (the server answers again)
    const started = Date.now();
    client.reconnectNow();
    await nextEmit(client, "connection.established", 5000);

    // then it is back long before the backoff would have tried
    assert.equal(client.getConnectionStatus(), "connected");
    assert.ok(Date.now() - started < 5000);
    assert.equal(client.socketUrls.length, 2);
  });

  test("it keeps retrying beyond ten attempts while the server is down", async () => {
    const client = makeClient({ reconnect_base_delay: 2, reconnect_max_delay: 5 });
    await client.connect();
    await gateway.stop();

    while (client.socketUrls.length < 15) {
      await nextEmit(client, "connection.reconnecting");
    }
    await gateway.start();
    await nextEmit(client, "connection.established");

    assert.equal(client.getConnectionStatus(), "connected");
    assert.ok(client.socketUrls.length >= 15);
  });

  test("while offline it does not try, and it reconnects at once when the network returns", async () => {
    // given a client whose network is offline and whose server went away
    const network = new FakeNetwork();
    const client = makeClient({ network, reconnect_base_delay: 60000, reconnect_max_delay: 60000, random: () => 0.99 });
    await client.connect();
    network.set(false);
    await gateway.stop();
    await nextEmit(client, "connection.closed");
    const attempts = client.socketUrls.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(client.getConnectionStatus(), "offline");
    assert.equal(client.socketUrls.length, attempts);

    // when the network comes back (the backoff would wait a minute)
    await gateway.start();
    network.set(true);

    // then it connects right away
    await nextEmit(client, "connection.established", 1000);
    assert.equal(client.getConnectionStatus(), "connected");
  });

  test("a connection that stops answering the heartbeat is dropped and re-opened", async () => {
    // given a connected client and a server that stops answering (without closing)
    const client = makeClient({ heartbeat_interval: 50, heartbeat_timeout: 100 });
    await client.connect();
    gateway.answerPings = false;

    // when the heartbeat goes unanswered
    const closed = await nextEmit(client, "connection.closed");
    gateway.answerPings = true;
    await nextEmit(client, "connection.established");

    // then the client noticed the dead connection and opened a new one
    assert.equal(closed.reason, "heartbeat timeout");
    assert.equal(closed.will_reconnect, true);
    assert.equal(gateway.connections.length, 2);
  });

  test("an event type the server refuses is dropped from the held subscriptions", async () => {
    gateway.refuseEventTypes.add("system.error");
    const client = makeClient({ event_types: ["market.price_update", "system.error"] });
    await client.connect();

    await nextEmit(client, "permission_denied");

    assert.deepEqual(client.getSubscriptions(), ["market.price_update"]);
  });

  test("a close with access revoked ends reconnecting", async () => {
    const client = makeClient();
    await client.connect();

    for (const socket of gateway.sockets) socket.close(4003, "access revoked");
    const closed = await nextEmit(client, "connection.closed");

    assert.equal(closed.will_reconnect, false);
    assert.equal(client.getConnectionStatus(), "disconnected");
  });
});

describe("backoffDelay", () => {
  test("the ceiling doubles per attempt up to the maximum and the delay is jittered below it", () => {
    const top = () => 0.999999;
    assert.equal(backoffDelay(0, 100, 5000, top), 99);
    assert.equal(backoffDelay(3, 100, 5000, top), 799);
    assert.equal(backoffDelay(20, 100, 5000, top), 4999);
    assert.equal(backoffDelay(5, 100, 5000, () => 0), 0);
    assert.equal(backoffDelay(1000, 100, 5000, () => 0.5), 2500);
  });
});
