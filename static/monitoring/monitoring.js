// Gateway monitoring pages: live connections (/monitoring/) and the event inspector.
// Plain modern JS, no build step. Speaks the gateway's own protocol (spec message format):
// commands are {type: "user", event, data, correlation_id}; subscriptions are
// {type: "subscription", event: "subscribe"|"unsubscribe", data: {event_types}}.

const root = document.getElementById("monitor");
const statusBadge = document.getElementById("connection-status");
const REFRESH_MS = 2000;
const STALE_MS = 3 * REFRESH_MS + 1000;
const MAX_STREAM = 2000;
const HEALTH_MS = 5000;
const TREND_SAMPLES = 60; // two minutes of snapshots
// Codes of the gateway's own faults, limits and protocol errors (realtime.protocol.ErrorCode
// minus the refusals validation_error, not_found and permission_denied). Every other code is a
// business refusal (a domain error such as insufficient_cash) and is listed apart.
const GATEWAY_ERROR_CODES = new Set([
  "invalid_message_format",
  "invalid_message",
  "binary_not_supported",
  "message_too_large",
  "unknown_message_type",
  "invalid_event_type",
  "unknown_event_type",
  "too_many_event_types",
  "unknown_command",
  "invalid_command",
  "too_many_commands",
  "too_many_subscriptions",
  "too_many_connections",
  "rate_limited",
  "service_unavailable",
  "internal_error",
]);
const SERVICE_NAMES = { database: "Datenbank", channel_layer: "Channel-Layer", bus: "Event-Bus", market_feed: "Kurs-Feed", gateway: "Gateway" };
const STATUS_NAMES = { online: "in Ordnung", degraded: "eingeschränkt", offline: "ausgefallen" };

let socket = null;
let retryDelay = 500;
const pending = new Map(); // correlation_id -> callback for command responses

function newId() {
  return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
}

function setStatus(connected) {
  statusBadge.textContent = connected ? "Verbunden" : "Verbindung getrennt";
  statusBadge.className = `status ${connected ? "success" : "warning"}`;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function command(name, data = {}, onResponse = null) {
  const correlationId = newId();
  if (onResponse) pending.set(correlationId, onResponse);
  send({ type: "user", event: name, data, correlation_id: correlationId });
}

function subscription(action, eventTypes) {
  if (eventTypes.length) send({ type: "subscription", event: action, data: { event_types: eventTypes }, correlation_id: newId() });
}

function connect(handlers) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  socket.addEventListener("open", () => {
    retryDelay = 500;
    setStatus(true);
  });
  socket.addEventListener("message", (frame) => {
    let message;
    try {
      message = JSON.parse(frame.data);
    } catch {
      return;
    }
    if (message.type === "command_response" && pending.has(message.correlation_id)) {
      const callback = pending.get(message.correlation_id);
      pending.delete(message.correlation_id);
      callback(message.data);
    }
    if (message.event === "connection.established") handlers.onOpen?.();
    handlers.onMessage?.(message, frame.data);
  });
  socket.addEventListener("close", () => {
    setStatus(false);
    handlers.onClose?.();
    setTimeout(() => connect(handlers), retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  });
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  if (className) td.className = className;
  return td;
}

function localTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "–";
}

const SVG = "http://www.w3.org/2000/svg";

/** A small line graph of the last values, with its title and the newest value. */
function sparkline(title, values, format) {
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  const name = document.createElement("span");
  name.textContent = title;
  const latest = document.createElement("strong");
  latest.textContent = values.length ? format(values[values.length - 1]) : "–";
  caption.append(name, latest);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${TREND_SAMPLES - 1} 40`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${values.map(format).join(", ")}`);
  const top = Math.max(1, ...values);
  const line = document.createElementNS(SVG, "polyline");
  const offset = TREND_SAMPLES - values.length;
  line.setAttribute("points", values.map((v, i) => `${offset + i},${(38 - (v / top) * 36).toFixed(1)}`).join(" "));
  svg.append(line);
  figure.append(caption, svg);
  return figure;
}

function errorRow(error) {
  const tr = document.createElement("tr");
  tr.append(cell(localTime(error.at)), cell(error.code), cell(error.client_id, "mono"), cell(error.correlation_id, "mono"), cell(error.message));
  return tr;
}

/** The health panel: one entry per service with its state and round trip, and the overall health. */
function renderHealth(response) {
  const list = document.getElementById("health");
  const overall = document.getElementById("overall-health");
  if (response.status !== "success") {
    list.replaceChildren(Object.assign(document.createElement("li"), { textContent: `Systemzustand nicht verfügbar: ${response.result?.error ?? response.status}` }));
    overall.textContent = "";
    return;
  }
  const status = response.result;
  overall.textContent = `${status.overall_health} / 100 – ${STATUS_NAMES[status.status] ?? status.status}`;
  list.replaceChildren(
    ...Object.entries(status.services).map(([name, facts]) => {
      const li = document.createElement("li");
      li.dataset.service = name;
      li.dataset.status = facts.status;
      const title = Object.assign(document.createElement("span"), { className: "name", textContent: SERVICE_NAMES[name] ?? name });
      const details = [STATUS_NAMES[facts.status] ?? facts.status];
      if (typeof facts.response_time_ms === "number" && name !== "gateway") details.push(`${facts.response_time_ms.toFixed(1)} ms`);
      if (name === "market_feed" && facts.last_tick_age_seconds != null) details.push(`letzter Kurs vor ${Math.round(facts.last_tick_age_seconds)} s`);
      if (name === "gateway") details.push(`${facts.connections_open} Verbindungen`);
      if (facts.error) details.push(facts.error);
      const state = Object.assign(document.createElement("span"), { className: "state", textContent: details.join(" · ") });
      li.append(title, state);
      return li;
    }),
  );
}

// Connections page

function connectionsPage() {
  const snapshots = new Map(); // process -> {snapshot, receivedAt, previous}
  const rows = document.getElementById("connections");
  const rates = document.getElementById("rates");
  const errors = document.getElementById("errors");
  const refusals = document.getElementById("refusals");
  const notice = document.getElementById("notice");
  const trends = { rate: [], connections: [], errors: [], refusals: [] };
  const seenErrors = new Set();
  let timer = null;
  let healthTimer = null;

  function render() {
    const now = Date.now();
    for (const [process, entry] of snapshots) if (now - entry.receivedAt > STALE_MS) snapshots.delete(process);
    const all = [...snapshots.values()];
    document.getElementById("processes").textContent = `${all.length} Prozess(e)`;
    document.getElementById("connection-count").textContent = all.reduce((n, e) => n + e.snapshot.connections_total, 0);

    rows.replaceChildren(
      ...all
        .flatMap((e) => e.snapshot.connections)
        .sort((a, b) => a.connected_at.localeCompare(b.connected_at))
        .map((c) => {
          const tr = document.createElement("tr");
          tr.dataset.clientId = c.client_id;
          tr.append(
            cell(c.user),
            cell(c.client_id, "mono"),
            cell(c.address),
            cell(localTime(c.connected_at)),
            cell(c.subscriptions.join(", ")),
            cell(c.messages_in),
            cell(c.messages_out),
            cell(localTime(c.last_activity)),
          );
          const action = document.createElement("td");
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = "Trennen";
          button.addEventListener("click", () => disconnect(c));
          action.append(button);
          tr.append(action);
          return tr;
        }),
    );

    const perType = new Map();
    for (const { snapshot, previous } of all) {
      const seconds = previous ? (Date.parse(snapshot.timestamp) - Date.parse(previous.timestamp)) / 1000 : 0;
      for (const [type, total] of Object.entries(snapshot.events_delivered)) {
        const before = previous?.events_delivered[type] ?? total;
        const entry = perType.get(type) ?? { rate: 0, total: 0 };
        entry.total += total;
        if (seconds > 0) entry.rate += Math.max(0, total - before) / seconds;
        perType.set(type, entry);
      }
    }
    const recent = all.flatMap((e) => e.snapshot.recent_errors).sort((a, b) => b.at.localeCompare(a.at));
    const isError = (error) => GATEWAY_ERROR_CODES.has(error.code);
    let newErrors = 0;
    let newRefusals = 0;
    for (const error of recent) {
      const key = `${error.at}|${error.client_id}|${error.correlation_id}|${error.code}`;
      if (seenErrors.has(key)) continue;
      seenErrors.add(key);
      if (seenErrors.size > 500) seenErrors.delete(seenErrors.values().next().value);
      if (isError(error)) newErrors += 1;
      else newRefusals += 1;
    }
    const sample = (series, value) => {
      series.push(value);
      if (series.length > TREND_SAMPLES) series.shift();
    };
    sample(trends.rate, [...perType.values()].reduce((sum, entry) => sum + entry.rate, 0));
    sample(trends.connections, all.reduce((n, e) => n + e.snapshot.connections_total, 0));
    sample(trends.errors, newErrors);
    sample(trends.refusals, newRefusals);
    const one = (v) => v.toFixed(1);
    const whole = (v) => String(Math.round(v));
    document.getElementById("sparklines").replaceChildren(
      sparkline("Events pro Sekunde", trends.rate, one),
      sparkline("Verbindungen", trends.connections, whole),
      sparkline("Fehler je Messung", trends.errors, whole),
      sparkline("Ablehnungen je Messung", trends.refusals, whole),
    );

    rates.replaceChildren(
      ...[...perType.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, { rate, total }]) => {
          const tr = document.createElement("tr");
          tr.append(cell(type), cell(rate.toFixed(1)), cell(total));
          return tr;
        }),
    );

    errors.replaceChildren(...recent.filter(isError).slice(0, 30).map(errorRow));
    refusals.replaceChildren(...recent.filter((error) => !isError(error)).slice(0, 30).map(errorRow));
  }

  function disconnect(connection) {
    const reason = prompt(`Client ${connection.client_id} (${connection.user}) trennen? Grund:`, "");
    if (reason === null) return;
    command("disconnect_client", { client_id: connection.client_id, reason }, (response) => {
      notice.textContent =
        response.status === "success"
          ? `Client ${connection.client_id} getrennt (Protokoll-Nr. ${response.result.audit_id}).`
          : `Trennen fehlgeschlagen: ${response.result.error}`;
    });
  }

  connect({
    onOpen() {
      clearInterval(timer);
      clearInterval(healthTimer);
      command("monitor_snapshot");
      timer = setInterval(() => command("monitor_snapshot"), REFRESH_MS);
      command("get_system_status", {}, renderHealth);
      healthTimer = setInterval(() => command("get_system_status", {}, renderHealth), HEALTH_MS);
    },
    onClose() {
      clearInterval(timer);
      clearInterval(healthTimer);
    },
    onMessage(message) {
      if (message.event !== "system.gateway_snapshot") return;
      const snapshot = message.data;
      const previous = snapshots.get(snapshot.process)?.snapshot ?? null;
      snapshots.set(snapshot.process, { snapshot, previous, receivedAt: Date.now() });
      render();
    },
  });
}

// Event inspector

function inspectorPage() {
  const list = document.getElementById("stream");
  const filter = document.getElementById("filter-correlation");
  const pauseButton = document.getElementById("pause");
  const count = document.getElementById("stream-count");
  const captured = []; // {message, raw}; raw keeps the exact decimals for export
  const eventTypes = new Set([...document.querySelectorAll("#event-types input")].map((box) => box.value));
  let paused = false;
  let held = 0;
  // First visit: every type but the price ticks, which would drown the rest; later the last choice.
  const SELECTION_KEY = "inspector.event_types";
  let remembered = null;
  try {
    remembered = JSON.parse(localStorage.getItem(SELECTION_KEY) ?? "null");
  } catch {
    remembered = null;
  }
  for (const box of document.querySelectorAll("#event-types input")) {
    box.checked = Array.isArray(remembered) ? remembered.includes(box.value) : box.value !== "market.price_update";
  }

  function chosen() {
    return [...document.querySelectorAll("#event-types input:checked")].map((box) => box.value);
  }

  function matches(entry) {
    const wanted = filter.value.trim();
    return !wanted || (entry.message.correlation_id ?? "").includes(wanted);
  }

  /** One compact row per event (seq, time, type, correlation id) that opens to show its data. */
  function item(entry) {
    const li = document.createElement("li");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const seq = entry.message.seq;
    for (const [text, className] of [
      [seq === undefined || seq === null ? "seq –" : `seq ${seq}`, "seq"],
      [localTime(entry.message.timestamp), ""],
      [entry.message.event, ""],
      [entry.message.correlation_id ?? "", "mono"],
    ]) {
      const span = document.createElement("span");
      span.textContent = text;
      if (className) span.className = className;
      summary.append(span);
    }
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(entry.message.data, null, 2);
    details.append(summary, pre);
    li.append(details);
    return li;
  }

  function redraw() {
    list.replaceChildren(...captured.filter(matches).slice(-300).reverse().map(item));
    updateCount();
  }

  function updateCount() {
    count.textContent = `${captured.length} Events${paused ? `, ${held} während der Pause` : ""}`;
  }

  document.getElementById("event-types").addEventListener("change", (event) => {
    const box = event.target;
    subscription(box.checked ? "subscribe" : "unsubscribe", [box.value]);
    try {
      localStorage.setItem(SELECTION_KEY, JSON.stringify(chosen()));
    } catch {
      // Storage refused: the choice lasts as long as the page.
    }
  });
  filter.addEventListener("input", redraw);
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "Fortsetzen" : "Pause";
    held = 0;
    redraw();
  });
  document.getElementById("clear").addEventListener("click", () => {
    captured.length = 0;
    redraw();
  });
  document.getElementById("export").addEventListener("click", () => {
    const lines = captured.filter(matches).map((entry) => entry.raw).join("\n");
    const url = URL.createObjectURL(new Blob([lines + "\n"], { type: "application/x-ndjson" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = `events-${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl`;
    link.click();
    URL.revokeObjectURL(url);
  });

  connect({
    onOpen() {
      subscription("subscribe", chosen()); // after a reconnect, subscribe again
    },
    onMessage(message, raw) {
      if (message.type === "error") {
        count.textContent = `Fehler: ${message.data.error}`;
        return;
      }
      if (!eventTypes.has(message.event)) return; // confirmations, pongs, responses
      captured.push({ message, raw });
      if (captured.length > MAX_STREAM) captured.splice(0, captured.length - MAX_STREAM);
      if (paused) {
        held += 1;
        updateCount();
      } else if (matches({ message })) {
        list.prepend(item({ message }));
        while (list.childElementCount > 300) list.lastElementChild.remove();
        updateCount();
      }
    },
  });
}

if (root.dataset.page === "connections") connectionsPage();
else if (root.dataset.page === "inspector") inspectorPage();
