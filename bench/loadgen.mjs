// Load generator of `make bench`: many WebSocket clients in one Node process, driven by JSON
// lines on stdin (one answer line on stdout per command). Event latency is receipt time minus
// the publish time the benchmark writes into the tick's `source` ("bench:<microseconds>").
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const HEARTBEAT_MS = 30000;
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
let clients = [];
let latencies = new Float64Array(1 << 20);
let count = 0;
let paused = new Set();
const closes = {};

function record(client, text) {
  const at = text.indexOf('"bench:');
  if (at < 0) return false;
  const sent = Number(text.slice(at + 7, text.indexOf('"', at + 7)));
  client.received += 1;
  if (client.paused || client.gone) return true;
  if (count === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[count++] = nowUs() - sent;
  return true;
}

function open(url, cookie, origin, subscribe, index, eventTypes = ["market.price_update"]) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { Cookie: cookie }, origin, perMessageDeflate: false });
    const client = { ws, received: 0, frames: 0, pending: new Map(), rtts: null };
    clients[index] = client;
    let done = false;
    let confirmed = 0;
    const finish = (ok) => { if (!done) { done = true; resolve(ok); } };
    ws.on("message", (data) => {
      const text = data.toString();
      client.frames += 1;
      if (record(client, text)) return;
      if (text.includes('"connection.established"')) {
        if (!subscribe) return finish(true);
        ws.send(JSON.stringify({ type: "subscription", event: "subscribe", data: { event_types: eventTypes } }));
      } else if (text.includes('"subscription.confirmed"')) {
        if (++confirmed === eventTypes.length) finish(true); // one confirmation per event type
      } else if (text.includes('"error"') && !done && subscribe && !text.includes('"announcement"')) {
        client.error = text;
      } else if (text.includes('.response"')) {
        const id = /"correlation_id":"([^"]+)"/.exec(text.slice(text.lastIndexOf('"correlation_id"')));
        const started = id && client.pending.get(id[1]);
        if (started !== undefined) {
          client.pending.delete(id[1]);
          const ok = text.includes('"status":"success"');
          client.rtts.push({ ms: (nowUs() - started) / 1000, ok, error: ok ? null : (/"code":"([^"]+)"/.exec(text) || [, "?"])[1] });
        }
      }
    });
    // Like the spec's WebSocketEventClient: a heartbeat every 30 s (staggered), so a quiet client
    // is not mistaken for a dead one by a server's idle timeout.
    const beat = () => ws.readyState === WebSocket.OPEN &&
      ws.send(JSON.stringify({ type: "ping", event: "heartbeat", data: {}, timestamp: new Date().toISOString() }));
    client.heartbeat = setTimeout(() => { beat(); client.heartbeat = setInterval(beat, HEARTBEAT_MS); }, Math.random() * HEARTBEAT_MS);
    ws.on("close", (code) => {
      clearTimeout(client.heartbeat); clearInterval(client.heartbeat);
      if (!client.gone) closes[code] = (closes[code] || 0) + 1;
      finish(false);
    });
    ws.on("error", () => finish(false));
  });
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function handle(command) {
  switch (command.cmd) {
    case "connect": {
      const start = clients.length;
      let ok = 0;
      const stopAt = performance.now() + (command.deadline_s || 1e9) * 1000;
      for (let base = 0; base < command.n && performance.now() < stopAt; base += command.batch || 200) {
        const batch = [];
        for (let i = base; i < Math.min(command.n, base + (command.batch || 200)); i++) {
          batch.push(open(command.url, command.cookie, command.origin, command.subscribe, start + i));
        }
        ok += (await Promise.all(batch)).filter(Boolean).length;
      }
      return { connected: ok, total: clients.length };
    }
    case "storm": {
      // Open `n` clients as fast as the server admits them: `window` handshakes in flight at a
      // time, the next one started the moment one is established and subscribed to every type in
      // `event_types` (or failed). Answers the wall time until the last one is subscribed.
      const start = clients.length;
      const started = performance.now();
      let next = 0;
      let ok = 0;
      const worker = async () => {
        while (next < command.n) {
          const i = next++;
          if (await open(command.url, command.cookie, command.origin, true, start + i, command.event_types)) ok++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(command.window || 500, command.n) }, worker));
      const failed = clients.slice(start).filter((c) => c.error).map((c) => c.error);
      return { subscribed: ok, total: clients.length, seconds: (performance.now() - started) / 1000,
               errors: failed.length, error: failed[0] || null, closes };
    }
    case "quiet": // stop the heartbeats: from now on the clients send nothing at all
      for (const c of clients) { clearTimeout(c.heartbeat); clearInterval(c.heartbeat); }
      return { quiet: clients.length };
    case "reset":
      count = 0;
      for (const c of clients) c.received = 0;
      return { reset: true };
    case "pause": // stop reading on the clients of the given indices: their servers' buffers fill up
      for (const i of command.clients) {
        if (!clients[i] || !clients[i].ws._socket) continue;
        paused.add(i); clients[i].paused = true; clients[i].ws._socket.pause();
      }
      return { paused: paused.size };
    case "report": {
      const sorted = Float64Array.from(latencies.subarray(0, count)).sort();
      const live = clients.filter((c, i) => !paused.has(i));
      const per = live.map((c) => c.received);
      return {
        received: count, clients: live.length,
        per_client_min: Math.min(...per), per_client_max: Math.max(...per),
        p50_ms: quantile(sorted, 0.5) / 1000, p99_ms: quantile(sorted, 0.99) / 1000,
        max_ms: sorted.length ? sorted[sorted.length - 1] / 1000 : null,
        paused_received: [...paused].map((i) => clients[i].received),
        frames: live.reduce((sum, c) => sum + c.frames, 0), // every frame read, ticks of any source included
        open: live.filter((c) => c.ws.readyState === WebSocket.OPEN).length,
        closes,
      };
    }
    case "commands": {
      // The clients to send from: their indices (in the order they were opened), else the first
      // `conns` that are not paused (a paused client never reads its answers).
      const users = command.clients
        ? command.clients.map((i) => clients[i])
        : clients.filter((c, i) => !paused.has(i)).slice(0, command.conns);
      for (const c of users) { c.rtts = []; c.pending.clear(); }
      const interval = 1000 / command.rate;
      const started = performance.now();
      for (let n = 0; n < command.n; n++) {
        const wait = started + n * interval - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const c = users[n % users.length];
        const id = `bench-${process.pid}-${Date.now()}-${n}`;
        c.pending.set(id, nowUs());
        // Market orders that fill at once, buying and selling in turn: every round trip takes the
        // whole path (checks, fill, position, cash, events) and nothing piles up in the book.
        c.ws.send(JSON.stringify({ type: "user", event: "place_order", correlation_id: id,
          data: { symbol: command.symbol, side: n % 2 ? "sell" : "buy", quantity: 1, order_type: "market", client_order_id: id } }));
      }
      const deadline = performance.now() + 10000;
      while (users.some((c) => c.pending.size) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const rtts = users.flatMap((c) => c.rtts);
      const sorted = Float64Array.from(rtts.map((r) => r.ms)).sort();
      return {
        sent: command.n, answered: rtts.length, succeeded: rtts.filter((r) => r.ok).length,
        errors: rtts.reduce((seen, r) => (r.ok ? seen : { ...seen, [r.error]: (seen[r.error] || 0) + 1 }), {}),
        seconds: (performance.now() - started) / 1000,
        p50_ms: quantile(sorted, 0.5), p99_ms: quantile(sorted, 0.99), max_ms: sorted[sorted.length - 1] ?? null,
      };
    }
    case "close": {
      for (const c of clients) { c.gone = true; clearTimeout(c.heartbeat); clearInterval(c.heartbeat); c.ws.terminate(); }
      clients = []; count = 0; paused = new Set();
      for (const k of Object.keys(closes)) delete closes[k];
      return { closed: true };
    }
    default:
      return { error: `unknown command ${command.cmd}` };
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const answer = await handle(JSON.parse(line));
  process.stdout.write(JSON.stringify(answer) + "\n");
}
