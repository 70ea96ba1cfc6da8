/**
 * Gateway monitoring pages: live connections (/monitoring/) and the event inspector
 * (/monitoring/inspector/), both on the desk's WebSocketEventClient.
 */

import { CommandError, WebSocketEventClient } from "./event-client.js";
import type { ErrorData, GatewaySnapshotData, WebSocketMessage } from "./events.js";

/** One connection in a `system.gateway_snapshot` (realtime/monitoring.py `gateway_snapshot`). */
interface ConnectionInfo {
  client_id: string;
  user: string;
  address: string | null;
  connected_at: string;
  subscriptions: string[];
  messages_in: number;
  messages_out: number;
  last_activity: string;
}

interface RecentError {
  at: string;
  code: string;
  client_id: string | null;
  correlation_id: string | null;
  message: string;
}

/** A snapshot with the entries of its lists and counters spelled out. */
interface Snapshot extends Omit<GatewaySnapshotData, "connections" | "events_delivered" | "recent_errors"> {
  connections: ConnectionInfo[];
  events_delivered: Record<string, number>;
  recent_errors: RecentError[];
}

interface DisconnectResult {
  client_id: string;
  audit_id: number;
}

const REFRESH_MS = 2000;
const STALE_MS = 3 * REFRESH_MS + 1000;
const MAX_STREAM = 2000;

function required<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`The monitoring page has no #${id}`);
  return found as T;
}

const root = required("monitor");
const statusBadge = required("connection-status");

/** Return a client for the gateway's socket that shows its state in the status badge. */
function gatewayClient(eventTypes: string[] = []): WebSocketEventClient {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const client = new WebSocketEventClient(`${scheme}://${location.host}${root.dataset.wsPath ?? "/ws/"}`, {
    event_types: eventTypes,
    reconnect_max_delay: 10000,
    // A command pressed while the socket is down fails at once instead of running later.
    queue_while_disconnected: false,
  });
  client.on("connection.status", ({ status }: { status: string }) => {
    const connected = status === "connected";
    statusBadge.textContent = connected ? "Verbunden" : "Verbindung getrennt";
    statusBadge.className = `status ${connected ? "success" : "warning"}`;
  });
  return client;
}

function cell(text: string | number | null | undefined, className?: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  return td;
}

function localTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleTimeString() : "–";
}

// Connections page

function connectionsPage(): void {
  const snapshots = new Map<string, { snapshot: Snapshot; previous: Snapshot | null; receivedAt: number }>();
  const rows = required("connections");
  const rates = required("rates");
  const errors = required("errors");
  const notice = required("notice");
  const client = gatewayClient();
  let timer: ReturnType<typeof setInterval> | undefined;

  function render(): void {
    const now = Date.now();
    for (const [process, entry] of snapshots) if (now - entry.receivedAt > STALE_MS) snapshots.delete(process);
    const all = [...snapshots.values()];
    required("processes").textContent = `${all.length} Prozess(e)`;
    required("connection-count").textContent = String(all.reduce((n, e) => n + e.snapshot.connections_total, 0));

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

    const perType = new Map<string, { rate: number; total: number }>();
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
    rates.replaceChildren(
      ...[...perType.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, { rate, total }]) => {
          const tr = document.createElement("tr");
          tr.append(cell(type), cell(rate.toFixed(1)), cell(total));
          return tr;
        }),
    );

    errors.replaceChildren(
      ...all
        .flatMap((e) => e.snapshot.recent_errors)
        .sort((a, b) => b.at.localeCompare(a.at))
        .slice(0, 30)
        .map((error) => {
          const tr = document.createElement("tr");
          tr.append(
            cell(localTime(error.at)),
            cell(error.code),
            cell(error.client_id, "mono"),
            cell(error.correlation_id, "mono"),
            cell(error.message),
          );
          return tr;
        }),
    );
  }

  function disconnect(connection: ConnectionInfo): void {
    const reason = prompt(`Client ${connection.client_id} (${connection.user}) trennen? Grund:`, "");
    if (reason === null) return;
    client.sendUserCommand<DisconnectResult>("disconnect_client", { client_id: connection.client_id, reason }).then(
      (result) => {
        notice.textContent = `Client ${connection.client_id} getrennt (Protokoll-Nr. ${result.audit_id}).`;
      },
      (error: CommandError) => {
        notice.textContent = `Trennen fehlgeschlagen: ${error.message}`;
      },
    );
  }

  function requestSnapshot(): void {
    // The answers come as system.gateway_snapshot events; a request that fails shows as its
    // processes going stale, and the next request follows within REFRESH_MS.
    client.sendUserCommand("monitor_snapshot", {}, { timeout: STALE_MS }).catch(() => undefined);
  }

  client.on("connection.established", () => {
    clearInterval(timer);
    requestSnapshot();
    timer = setInterval(requestSnapshot, REFRESH_MS);
  });
  client.on("connection.closed", () => clearInterval(timer));
  client.on("system.gateway_snapshot", (message) => {
    // The schema table types the lists' entries only as objects; gateway_snapshot() writes these.
    const snapshot = message.data as unknown as Snapshot;
    const previous = snapshots.get(snapshot.process)?.snapshot ?? null;
    snapshots.set(snapshot.process, { snapshot, previous, receivedAt: Date.now() });
    render();
  });
  client.connect().catch(() => undefined); // the status badge shows the state
}

// Event inspector

interface Captured {
  message: WebSocketMessage;
  /** The frame's text, which keeps the exact decimals for the export. */
  raw: string;
}

function inspectorPage(): void {
  const list = required("stream");
  const filter = required<HTMLInputElement>("filter-correlation");
  const pauseButton = required("pause");
  const count = required("stream-count");
  const boxes = () => [...document.querySelectorAll<HTMLInputElement>("#event-types input")];
  const captured: Captured[] = [];
  const eventTypes = new Set(boxes().map((box) => box.value));
  // Boxes the browser restored as checked are held from the start (and after every reconnect).
  const client = gatewayClient(boxes().filter((box) => box.checked).map((box) => box.value));
  let paused = false;
  let held = 0;

  function matches(entry: { message: WebSocketMessage }): boolean {
    const wanted = filter.value.trim();
    return !wanted || (entry.message.correlation_id ?? "").includes(wanted);
  }

  function item(entry: { message: WebSocketMessage }): HTMLLIElement {
    const li = document.createElement("li");
    const header = document.createElement("header");
    for (const text of [localTime(entry.message.timestamp), entry.message.event, entry.message.correlation_id]) {
      const span = document.createElement("span");
      span.textContent = text ?? "";
      header.append(span);
    }
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(entry.message.data, null, 2);
    li.append(header, pre);
    return li;
  }

  function redraw(): void {
    list.replaceChildren(...captured.filter(matches).slice(-300).reverse().map(item));
    updateCount();
  }

  function updateCount(): void {
    count.textContent = `${captured.length} Events${paused ? `, ${held} während der Pause` : ""}`;
  }

  required("event-types").addEventListener("change", (event) => {
    const box = event.target as HTMLInputElement;
    if (box.checked) client.subscribe([box.value]);
    else client.unsubscribe([box.value]);
  });
  filter.addEventListener("input", redraw);
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "Fortsetzen" : "Pause";
    held = 0;
    redraw();
  });
  required("clear").addEventListener("click", () => {
    captured.length = 0;
    redraw();
  });
  required("export").addEventListener("click", () => {
    const lines = captured.filter(matches).map((entry) => entry.raw).join("\n");
    const url = URL.createObjectURL(new Blob([lines + "\n"], { type: "application/x-ndjson" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = `events-${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl`;
    link.click();
    URL.revokeObjectURL(url);
  });

  client.on("*", (message, raw) => {
    if (message.type === "error") {
      count.textContent = `Fehler: ${(message.data as ErrorData).error}`;
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
      while (list.childElementCount > 300) list.lastElementChild?.remove();
      updateCount();
    }
  });
  client.connect().catch(() => undefined); // the status badge shows the state
}

if (root.dataset.page === "connections") connectionsPage();
else if (root.dataset.page === "inspector") inspectorPage();
