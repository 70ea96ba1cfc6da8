/**
 * Gateway monitoring pages: live connections (/monitoring/) and the event inspector
 * (/monitoring/inspector/), both on the desk's WebSocketEventClient.
 *
 * Every text is in the page's language, as on the desk: the page embeds its texts
 * (`monitoring-config`, realtime/views.py `_monitoring_strings`, translated by Django) and the
 * server's errors are worded from their codes and details (static/ts/i18n.ts), the server's
 * own English text kept as the row's title.
 */
import { CommandError, WebSocketEventClient } from "./event-client.js";
import { formatNumber, pageLocale } from "./format.js";
import { errorText, render as renderText } from "./i18n.js";
const REFRESH_MS = 2000;
const STALE_MS = 3 * REFRESH_MS + 1000;
const MAX_STREAM = 2000;
const HEALTH_MS = 5000;
const TREND_SAMPLES = 60; // two minutes of snapshots
// Codes of the gateway's own faults, limits and protocol errors (realtime.wire.protocol.ErrorCode
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
// The inspector's chosen event types, kept in the browser between visits.
const SELECTION_KEY = "inspector.event_types";
function required(id) {
    const found = document.getElementById(id);
    if (!found)
        throw new Error(`The monitoring page has no #${id}`);
    return found;
}
const root = required("monitor");
const statusBadge = required("connection-status");
const locale = pageLocale();
const strings = (() => {
    const source = document.getElementById("monitoring-config");
    const config = source?.textContent ? JSON.parse(source.textContent) : {};
    return config.strings ?? {};
})();
/** The page's text `key` filled from `params`; the key itself when the page lacks it. */
function t(key, params = {}) {
    const template = strings[key];
    return template === undefined ? key : renderText(template, params, locale, strings);
}
function serviceName(name) {
    return strings[`service_${name}`] ?? name;
}
function healthName(status) {
    return strings[`health_${status}`] ?? status;
}
/** Return a client for the gateway's socket that shows its state in the status badge. */
function gatewayClient(eventTypes = []) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const client = new WebSocketEventClient(`${scheme}://${location.host}${root.dataset.wsPath ?? "/ws/"}`, {
        event_types: eventTypes,
        reconnect_max_delay: 10000,
        // A command pressed while the socket is down fails at once instead of running later.
        queue_while_disconnected: false,
    });
    client.on("connection.status", ({ status }) => {
        const connected = status === "connected";
        statusBadge.textContent = connected ? t("connected") : t("disconnected");
        statusBadge.className = `status ${connected ? "success" : "warning"}`;
    });
    return client;
}
function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (className)
        td.className = className;
    return td;
}
function localTime(iso) {
    return iso ? new Date(iso).toLocaleTimeString(locale) : "–";
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
/** One error: worded from its code and details in the page's language, the server's text as the title. */
function errorRow(error) {
    const tr = document.createElement("tr");
    const message = cell(errorText(strings, error.code, error.params ?? {}, locale));
    message.title = t("server_text", { message: error.message });
    tr.append(cell(localTime(error.at)), cell(error.code, "mono"), cell(error.client_id, "mono"), cell(error.correlation_id, "mono"), message);
    return tr;
}
/** The health panel: one entry per service with its state and round trip, and the overall health. */
function renderHealth(status) {
    required("overall-health").textContent = t("overall_health", { score: status.overall_health, status: healthName(status.status) });
    required("health").replaceChildren(...Object.entries(status.services).flatMap(([name, facts]) => (typeof facts === "string" ? [] : [[name, facts]])).map(([name, facts]) => {
        const li = document.createElement("li");
        li.dataset.service = name;
        li.dataset.status = facts.status;
        const title = document.createElement("span");
        title.className = "name";
        title.textContent = serviceName(name);
        const details = [healthName(facts.status)];
        if (typeof facts.response_time_ms === "number" && name !== "gateway") {
            details.push(`${formatNumber(facts.response_time_ms, locale, 1)} ms`);
        }
        if (name === "market_feed" && typeof facts.last_tick_age_seconds === "number") {
            details.push(t("last_tick_age", { seconds: Math.round(facts.last_tick_age_seconds) }));
        }
        if (name === "gateway" && facts.connections_open !== undefined)
            details.push(t("connections_open", { count: facts.connections_open }));
        // A probe's failure is the driver's own text (a diagnosis for the operator), shown as it is.
        if (facts.error)
            details.push(facts.error);
        const state = document.createElement("span");
        state.className = "state";
        state.textContent = details.join(" · ");
        li.append(title, state);
        return li;
    }));
}
function healthUnavailable(error) {
    const item = document.createElement("li");
    const reason = error instanceof CommandError ? errorText(strings, error.code, error.details, locale) : String(error);
    item.textContent = t("health_unavailable", { reason });
    required("health").replaceChildren(item);
    required("overall-health").textContent = "";
}
// Connections page
function connectionsPage() {
    const snapshots = new Map();
    const rows = required("connections");
    const rates = required("rates");
    const errors = required("errors");
    const refusals = required("refusals");
    const notice = required("notice");
    const client = gatewayClient();
    const trends = { rate: [], connections: [], errors: [], refusals: [] };
    const seenErrors = new Set();
    let timer;
    let healthTimer;
    function render() {
        const now = Date.now();
        for (const [process, entry] of snapshots)
            if (now - entry.receivedAt > STALE_MS)
                snapshots.delete(process);
        const all = [...snapshots.values()];
        required("processes").textContent = t("processes", { count: all.length });
        required("connection-count").textContent = String(all.reduce((n, e) => n + e.snapshot.connections_total, 0));
        rows.replaceChildren(...all
            .flatMap((e) => e.snapshot.connections)
            .sort((a, b) => a.connected_at.localeCompare(b.connected_at))
            .map((c) => {
            const tr = document.createElement("tr");
            tr.dataset.clientId = c.client_id;
            tr.append(cell(c.user), cell(c.client_id, "mono"), cell(c.address), cell(localTime(c.connected_at)), cell(c.subscriptions.join(", ")), cell(c.messages_in), cell(c.messages_out), cell(localTime(c.last_activity)));
            const action = document.createElement("td");
            const button = document.createElement("button");
            button.type = "button";
            button.textContent = t("disconnect");
            button.addEventListener("click", () => disconnect(c));
            action.append(button);
            tr.append(action);
            return tr;
        }));
        const perType = new Map();
        for (const { snapshot, previous } of all) {
            const seconds = previous ? (Date.parse(snapshot.timestamp) - Date.parse(previous.timestamp)) / 1000 : 0;
            for (const [type, total] of Object.entries(snapshot.events_delivered)) {
                const before = previous?.events_delivered[type] ?? total;
                const entry = perType.get(type) ?? { rate: 0, total: 0 };
                entry.total += total;
                if (seconds > 0)
                    entry.rate += Math.max(0, total - before) / seconds;
                perType.set(type, entry);
            }
        }
        const recent = all.flatMap((e) => e.snapshot.recent_errors).sort((a, b) => b.at.localeCompare(a.at));
        const isError = (error) => GATEWAY_ERROR_CODES.has(error.code);
        let newErrors = 0;
        let newRefusals = 0;
        for (const error of recent) {
            const key = `${error.at}|${error.client_id}|${error.correlation_id}|${error.code}`;
            if (seenErrors.has(key))
                continue;
            seenErrors.add(key);
            if (seenErrors.size > 500)
                seenErrors.delete(seenErrors.values().next().value);
            if (isError(error))
                newErrors += 1;
            else
                newRefusals += 1;
        }
        const sample = (series, value) => {
            series.push(value);
            if (series.length > TREND_SAMPLES)
                series.shift();
        };
        sample(trends.rate, [...perType.values()].reduce((sum, entry) => sum + entry.rate, 0));
        sample(trends.connections, all.reduce((n, e) => n + e.snapshot.connections_total, 0));
        sample(trends.errors, newErrors);
        sample(trends.refusals, newRefusals);
        const one = (v) => formatNumber(v, locale, 1);
        const whole = (v) => formatNumber(Math.round(v), locale, 0);
        required("sparklines").replaceChildren(sparkline(t("trend_events"), trends.rate, one), sparkline(t("trend_connections"), trends.connections, whole), sparkline(t("trend_errors"), trends.errors, whole), sparkline(t("trend_refusals"), trends.refusals, whole));
        rates.replaceChildren(...[...perType.entries()]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([type, { rate, total }]) => {
            const tr = document.createElement("tr");
            tr.append(cell(type), cell(formatNumber(rate, locale, 1)), cell(formatNumber(total, locale, 0)));
            return tr;
        }));
        errors.replaceChildren(...recent.filter(isError).slice(0, 30).map(errorRow));
        refusals.replaceChildren(...recent.filter((error) => !isError(error)).slice(0, 30).map(errorRow));
    }
    function disconnect(connection) {
        const reason = prompt(t("disconnect_prompt", { client_id: connection.client_id, user: connection.user }), "");
        if (reason === null)
            return;
        client.sendUserCommand("disconnect_client", { client_id: connection.client_id, reason }).then((result) => {
            notice.textContent = t("disconnected_client", { client_id: connection.client_id, audit_id: result.audit_id });
        }, (error) => {
            notice.textContent = t("disconnect_failed", { reason: errorText(strings, error.code, error.details, locale) });
        });
    }
    function requestSnapshot() {
        // The answers come as system.gateway_snapshot events; a request that fails shows as its
        // processes going stale, and the next request follows within REFRESH_MS.
        client.sendUserCommand("monitor_snapshot", {}, { timeout: STALE_MS }).catch(() => undefined);
    }
    function requestHealth() {
        client.sendUserCommand("get_system_status", {}, { timeout: HEALTH_MS }).then(renderHealth, healthUnavailable);
    }
    client.on("connection.established", () => {
        clearInterval(timer);
        clearInterval(healthTimer);
        requestSnapshot();
        timer = setInterval(requestSnapshot, REFRESH_MS);
        requestHealth();
        healthTimer = setInterval(requestHealth, HEALTH_MS);
    });
    client.on("connection.closed", () => {
        clearInterval(timer);
        clearInterval(healthTimer);
    });
    client.on("system.gateway_snapshot", (message) => {
        // The schema table types the lists' entries only as objects; gateway_snapshot() writes these.
        const snapshot = message.data;
        const previous = snapshots.get(snapshot.process)?.snapshot ?? null;
        snapshots.set(snapshot.process, { snapshot, previous, receivedAt: Date.now() });
        render();
    });
    client.connect().catch(() => undefined); // the status badge shows the state
}
// Event inspector
/** The event types chosen on the last visit, or null on a first visit (or unreadable storage). */
function rememberedSelection() {
    try {
        const value = JSON.parse(localStorage.getItem(SELECTION_KEY) ?? "null");
        return Array.isArray(value) ? value.filter((type) => typeof type === "string") : null;
    }
    catch {
        return null;
    }
}
function inspectorPage() {
    const list = required("stream");
    const filter = required("filter-correlation");
    const pauseButton = required("pause");
    const count = required("stream-count");
    const boxes = () => [...document.querySelectorAll("#event-types input")];
    const captured = [];
    const eventTypes = new Set(boxes().map((box) => box.value));
    // First visit: every type but the price ticks, which would drown the rest; later the last choice.
    const remembered = rememberedSelection();
    for (const box of boxes()) {
        box.checked = remembered ? remembered.includes(box.value) : box.value !== "market.price_update";
    }
    // The chosen types are held from the start (and after every reconnect).
    const client = gatewayClient(boxes().filter((box) => box.checked).map((box) => box.value));
    let paused = false;
    let held = 0;
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
        const parts = [
            [seq === undefined || seq === null ? "seq –" : `seq ${seq}`, "seq"],
            [localTime(entry.message.timestamp), ""],
            [entry.message.event, ""],
            [entry.message.correlation_id ?? "", "mono"],
        ];
        for (const [text, className] of parts) {
            const span = document.createElement("span");
            span.textContent = text;
            if (className)
                span.className = className;
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
        count.textContent = paused ? t("stream_count_paused", { count: captured.length, held }) : t("stream_count", { count: captured.length });
    }
    required("event-types").addEventListener("change", (event) => {
        const box = event.target;
        if (box.checked)
            client.subscribe([box.value]);
        else
            client.unsubscribe([box.value]);
        try {
            localStorage.setItem(SELECTION_KEY, JSON.stringify(boxes().filter((b) => b.checked).map((b) => b.value)));
        }
        catch {
            // Storage refused: the choice lasts as long as the page.
        }
    });
    filter.addEventListener("input", redraw);
    pauseButton.addEventListener("click", () => {
        paused = !paused;
        pauseButton.setAttribute("aria-pressed", String(paused));
        pauseButton.textContent = paused ? t("resume") : t("pause");
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
            const { error, code, ...details } = message.data;
            count.textContent = t("stream_error", { reason: code ? errorText(strings, code, details, locale) : error });
            return;
        }
        if (!eventTypes.has(message.event))
            return; // confirmations, pongs, responses
        captured.push({ message, raw });
        if (captured.length > MAX_STREAM)
            captured.splice(0, captured.length - MAX_STREAM);
        if (paused) {
            held += 1;
            updateCount();
        }
        else if (matches({ message })) {
            list.prepend(item({ message }));
            while (list.childElementCount > 300)
                list.lastElementChild?.remove();
            updateCount();
        }
    });
    client.connect().catch(() => undefined); // the status badge shows the state
}
if (root.dataset.page === "connections")
    connectionsPage();
else if (root.dataset.page === "inspector")
    inspectorPage();
