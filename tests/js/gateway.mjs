// A small gateway speaking the project's protocol over a real WebSocket server (the `ws`
// package), so the compiled client is tested against real sockets, frames and closes.
import { once } from "node:events";
import { WebSocket, WebSocketServer } from "ws";

export { WebSocket };

function envelope(type, event, data, correlationId, clientId) {
  return JSON.stringify({
    type,
    event,
    data,
    timestamp: new Date().toISOString(),
    correlation_id: correlationId ?? `srv-${Math.random().toString(36).slice(2)}`,
    source_service: "test-gateway",
    target_client: clientId,
  });
}

export class Gateway {
  constructor() {
    this.port = 0;
    this.server = null;
    this.sockets = new Set();
    this.connections = []; // {path, clientId}
    this.received = []; // every parsed client frame, in order
    this.commands = new Map(); // name -> (data, reply) => void
    this.answerPings = true;
    this.refuseEventTypes = new Set();
    this.replay = null; // {recovered, seq, epoch}: how to confirm a subscribe that carries `since`
    this.personal = new Set(); // event types confirmed as personal: `complete: false`, so seq gaps are normal
    this.issued = 0;
    this.listeners = new Set();
  }

  async start(port = this.port) {
    this.server = new WebSocketServer({ host: "127.0.0.1", port });
    await once(this.server, "listening");
    this.port = this.server.address().port;
    this.server.on("connection", (socket, request) => this.accept(socket, request));
    return this;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  accept(socket, request) {
    const requested = decodeURIComponent((request.url ?? "").replace(/^\/ws\/?/, ""));
    const clientId = requested || `client-${++this.issued}`;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    this.connections.push({ path: request.url, clientId });
    socket.send(envelope("system", "connection.established", { client_id: clientId, server_time: new Date().toISOString() }, null, clientId));
    socket.on("message", (raw) => {
      const frame = JSON.parse(raw.toString());
      this.received.push(frame);
      this.handle(socket, clientId, frame);
      for (const listener of this.listeners) listener(frame);
    });
  }

  handle(socket, clientId, frame) {
    const send = (type, event, data) => socket.send(envelope(type, event, data, frame.correlation_id, clientId));
    if (frame.type === "ping") {
      if (this.answerPings) send("system", "pong", { timestamp: new Date().toISOString() });
    } else if (frame.type === "subscription") {
      for (const eventType of frame.data.event_types) {
        if (this.refuseEventTypes.has(eventType)) {
          send("error", "permission_denied", { error: `You may not subscribe to '${eventType}'.`, code: "permission_denied", event_type: eventType });
        } else {
          const position = frame.data.since?.[eventType] && this.replay ? this.replay : {};
          const narrowed = frame.event === "subscribe" && frame.data.symbols ? { symbols: [...frame.data.symbols].sort() } : {};
          // As the gateway does: a subscriber sees every number of a type unless it narrowed the
          // type to some symbols or the type is personal (events for some users only).
          const complete = frame.event === "subscribe" ? { complete: !frame.data.symbols && !this.personal.has(eventType) } : {};
          send("system", frame.event === "subscribe" ? "subscription.confirmed" : "subscription.removed", { event_type: eventType, client_id: clientId, ...position, ...narrowed, ...complete });
        }
      }
    } else if (frame.type === "user") {
      const handler = this.commands.get(frame.event);
      const reply = (status, result) =>
        send("command_response", `${frame.event}.response`, { status, command: frame.event, result });
      if (handler) {
        handler(frame.data, reply, send);
      } else {
        reply("error", { error: `Unknown command: ${frame.event}`, code: "unknown_command" });
      }
    }
  }

  /** Broadcast an event message to every open socket. */
  publish(event, data) {
    const type = event.split(".")[0];
    for (const socket of this.sockets) socket.send(envelope(type, event, data, null, null));
  }

  /** Broadcast a numbered event (seq and epoch beside the envelope keys), as the server does. */
  publishNumbered(event, data, seq, epoch) {
    const type = event.split(".")[0];
    const frame = JSON.stringify({ ...JSON.parse(envelope(type, event, data, null, null)), seq, epoch });
    for (const socket of this.sockets) socket.send(frame);
  }

  /** Send this exact frame text to every open socket. */
  publishText(text) {
    for (const socket of this.sockets) socket.send(text);
  }

  /** Resolve with the next client frame that `predicate` accepts. */
  nextFrame(predicate, timeoutMs = 3000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error("no matching client frame"));
      }, timeoutMs);
      const listener = (frame) => {
        if (predicate(frame)) {
          clearTimeout(timer);
          this.listeners.delete(listener);
          resolve(frame);
        }
      };
      this.listeners.add(listener);
    });
  }

  /** Stop listening and cut every connection abruptly (as a crashed server would). */
  async stop() {
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Resolve with the payload of the client's next `event` emission. */
export function nextEmit(client, event, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(event, handler);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const handler = (payload) => {
      clearTimeout(timer);
      client.off(event, handler);
      resolve(payload);
    };
    client.on(event, handler);
  });
}

/** A network monitor the test switches on and off, as the browser's online/offline events. */
export class FakeNetwork {
  constructor() {
    this.online = true;
    this.listeners = new Set();
  }
  isOnline() {
    return this.online;
  }
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(online) {
    this.online = online;
    for (const listener of this.listeners) listener(online);
  }
}

export const quietLogger = { debug() {}, warn() {}, error() {} };
