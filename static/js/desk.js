/**
 * The staff desk: the spec's PortfolioWebSocketClient (section 1.2), wired to the page's
 * elements with the spec's ids and classes, plus the portfolio revalued on every tick, the
 * order ticket with its preview, the blotter (open orders, executions, history), alerts,
 * analysis and a live chart. The logic lives in modules of its own (portfolio-state, blotter,
 * order-ticket, i18n, connection-state); this file binds it to the page.
 */
import { PriceChart } from "./chart.js";
import { CommandError, LocalErrorCode, WebSocketEventClient, newRequestId } from "./event-client.js";
import { cancelAllTargets, isOpen, isPartlyFilled, listQuery, openOrdersQuery, orderReason, pageCount, remainingOf, restingPrice, } from "./blotter.js";
import { Coalescer, ProbeGate, ResyncPolicy, secondsLeft } from "./connection-state.js";
import { fill, formatDate, formatDecimalInput, formatEuro, formatNumber, formatPercent, formatSigned, formatTime, pageLocale, parseDecimalInput, } from "./format.js";
import { alertRuleText, alertText, analysisReasonText, errorText, messageText, reasonText } from "./i18n.js";
import { PortfolioState } from "./portfolio-state.js";
import { ConfirmPolicy, isFarFromMarket, keyAction, previewOrder } from "./order-ticket.js";
import { Watchlist } from "./watchlist.js";
/** A browser storage, or a stand-in that forgets when the browser refuses storage. */
function storage(kind) {
    try {
        const store = window[kind];
        store.getItem("probe");
        return store;
    }
    catch {
        const memory = new Map();
        return { getItem: (key) => memory.get(key) ?? null, setItem: (key, value) => void memory.set(key, value) };
    }
}
const FINAL_STATUSES = new Set(["filled", "cancelled", "rejected", "failed"]);
const PAGE_SIZE = 25; // the REST lists' page size (REST_FRAMEWORK PAGE_SIZE)
const PROBE_INTERVAL_MS = 1000;
function byId(id) {
    return document.getElementById(id);
}
function toNumber(value) {
    if (value === null || value === undefined || value === "") {
        return null;
    }
    const number = typeof value === "number" ? value : Number(value);
    return Number.isFinite(number) ? number : null;
}
function element(tag, attributes = {}, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
        node.setAttribute(name, value);
    }
    if (text !== undefined) {
        node.textContent = text;
    }
    return node;
}
/** The row a table shows in place of rows when it has none: one cell across its columns. */
function emptyRow(columns, text) {
    const row = element("tr", { class: "empty" });
    row.append(element("td", { colspan: String(columns) }, text));
    return row;
}
export class PortfolioWebSocketClient {
    constructor(config) {
        /** The symbols price events are narrowed to now (sorted, joined), "" for all of them. */
        this.priceSubscription = null;
        this.selectedSymbol = null;
        this.established = false;
        this.historyPage = 1;
        this.executionsPage = 1;
        this.pendingAnalyses = new Set();
        /** The order the ticket last sent, followed through its events until it is final. */
        this.ticketOrder = null;
        /** The order the confirmation step shows, sent when it is confirmed. */
        this.previewed = null;
        this.portfolio = new PortfolioState();
        this.lastPrices = new Map();
        this.locale = pageLocale();
        this.confirmPolicy = new ConfirmPolicy(storage("localStorage"), storage("sessionStorage"));
        this.resync = new ResyncPolicy();
        this.probeGate = new ProbeGate();
        this.portfolioRefresh = new Coalescer(() => this.requestPortfolioUpdate());
        this.accountLoad = new Coalescer(() => this.loadAccount());
        /** The user's alert rules as last listed: they tell which way a price alert was crossed. */
        this.alertRules = [];
        this.historyLoad = new Coalescer(() => this.refreshOrderHistory(this.historyPage));
        this.openOrdersLoad = new Coalescer(() => this.refreshOpenOrders());
        this.executionsLoad = new Coalescer(() => this.refreshExecutions(this.executionsPage));
        this.openOrders = [];
        /** Whether the user has a portfolio (the page's snapshot, or a portfolio.update since). */
        this.hasPortfolio = false;
        /** When the client will try to reconnect (ms since the epoch), while it waits. */
        this.reconnectAt = null;
        this.connectionTimer = null;
        this.config = config;
        this.t = config.strings;
        const scheme = window.location.protocol === "https:" ? "wss" : "ws";
        this.wsClient = new WebSocketEventClient(`${scheme}://${window.location.host}${config.ws_path}`, {
            event_types: config.event_types,
            auto_reconnect: true,
            heartbeat_interval: 20000,
            heartbeat_timeout: 10000,
            reconnect_base_delay: 500,
            reconnect_max_delay: 15000,
        });
        const target = byId("price-chart");
        this.chart = target
            ? new PriceChart({ target, caption: byId("chart-caption"), barsUrl: config.bars_url, locale: this.locale, strings: this.t })
            : null;
        this.watchlist = new Watchlist(storage("localStorage"));
        this.setupEventHandlers();
    }
    /** The underlying client (for the browser tests and the console). */
    get client() {
        return this.wsClient;
    }
    async connect() {
        await this.wsClient.connect();
    }
    start() {
        for (const instrument of this.config.instruments) {
            if (instrument.last_price !== null) {
                this.lastPrices.set(instrument.symbol, instrument.last_price);
                this.setPrice(instrument.symbol, instrument.last_price, null, null);
            }
        }
        this.hasPortfolio = this.config.portfolio !== null;
        if (this.config.account) {
            this.portfolio.applyAccount(this.config.account);
        }
        if (this.config.portfolio) {
            this.updatePortfolioDisplay(this.config.portfolio);
        }
        this.bindForms();
        this.bindKeys();
        this.bindConnectionControls();
        this.selectSymbol(this.config.instruments[0]?.symbol ?? null);
        this.applyWatchlist();
        this.reloadBlotter();
        this.showConnection(this.wsClient.getConnectionStatus());
        void this.connect().catch(() => undefined);
    }
    // Event handlers
    setupEventHandlers() {
        const on = this.wsClient.on.bind(this.wsClient);
        on("portfolio.update", (message) => this.updatePortfolioDisplay(message.data));
        // The desk works the value out itself on every tick (PortfolioState), from the same figures;
        // the server's value stands in only until the account has given the cash.
        on("portfolio.value_changed", (message) => {
            const value = byId("portfolio-value");
            if (value && this.portfolio.totals().cash === null)
                value.textContent = formatEuro(message.data.current_value);
        });
        // A fill or correction sends portfolio.update itself; cash and realised P&L come with the account.
        on("portfolio.position_changed", () => this.accountLoad.request());
        // A new resting buy reserves part of the buying power: the account is reloaded with the orders.
        on("trading.order_created", () => {
            this.reloadOrders();
            this.accountLoad.request();
        });
        on("trading.order_filled", (message) => {
            const data = message.data;
            const title = data.status === "partially_filled" ? this.t.order_partially_filled : this.t.order_filled;
            this.showNotification("success", title, this.fillDetail(data.symbol, data.filled_quantity, data.fill_price));
            this.showTicketState(String(data.order_id), data.status);
            this.reloadBlotter();
            this.accountLoad.request();
        });
        on("trading.order_cancelled", (message) => {
            const data = message.data;
            this.showTicketState(String(data.order_id), "cancelled");
            void this.notifyWithReason("info", this.t.order_cancelled, data.symbol, String(data.order_id));
            this.reloadOrders();
            this.accountLoad.request();
        });
        on("trading.order_failed", (message) => {
            const data = message.data;
            this.showTicketState(String(data.order_id), "failed");
            void this.notifyWithReason("error", this.t.order_failed, data.symbol, String(data.order_id), data.error_code);
            this.reloadOrders();
            this.accountLoad.request();
        });
        on("market.price_update", (message) => this.updatePriceDisplay(message.data));
        on("market.alert", (message) => this.showAlert(message.data));
        on("analysis.complete", (message) => this.showAnalysis(message.data));
        // An operator's announcement reaches every desk, subscribed or not (docs/operations.md).
        on("announcement", (message) => {
            const kind = message.data.level === "critical" ? "error" : message.data.level === "warning" ? "warning" : "info";
            this.showNotification(kind, this.t.announcement, message.data.message);
        });
        on("connection.established", () => {
            this.resync.established();
            this.reloadAll();
            this.established = true;
            void this.loadAlerts();
        });
        on("subscription.recovery_failed", ({ reason }) => {
            // Events were lost: reload the state, unless the reload of this connection covers it.
            if (this.resync.needsReload(reason))
                this.reloadAll();
        });
        on("connection.status", ({ status }) => this.showConnection(status));
        on("connection.reconnecting", ({ delay }) => {
            this.reconnectAt = Date.now() + delay;
            this.showConnection(this.wsClient.getConnectionStatus());
        });
        on("connection.closed", () => this.resync.lost());
    }
    /** Reload everything a lost event may have left stale: one of each, however many ask. */
    reloadAll() {
        // The chart loads its bars when the page starts; after that, a lost tick needs them again.
        if (this.established)
            void this.chart?.reload();
        this.portfolioRefresh.request();
        this.accountLoad.request();
        this.reloadBlotter();
    }
    reloadOrders() {
        this.openOrdersLoad.request();
        this.historyLoad.request();
    }
    reloadBlotter() {
        this.reloadOrders();
        this.executionsLoad.request();
    }
    // User actions
    /**
     * Place an order under a client_order_id (a new one unless given), so a re-send after a lost
     * answer places it once; refused at once while disconnected.
     */
    placeOrder(order) {
        const data = { ...order, client_order_id: order.client_order_id ?? newRequestId() };
        return this.wsClient.sendUserCommand("place_order", data, { idempotent: true });
    }
    /** Cancel an order under a new request id (re-sent unchanged after a lost answer). */
    cancelOrder(orderId) {
        const data = { order_id: orderId, request_id: newRequestId() };
        return this.wsClient.sendUserCommand("cancel_order", { ...data }, { idempotent: true });
    }
    /** Modify an order under a new request id (re-sent unchanged after a lost answer). */
    modifyOrder(change) {
        const data = { ...change, request_id: change.request_id ?? newRequestId() };
        return this.wsClient.sendUserCommand("modify_order", { ...data }, { idempotent: true });
    }
    /** Return the text for a failed order command: the server's reason, or what the failure means for the order. */
    commandFailure(error) {
        const code = error instanceof CommandError ? error.code : "";
        if (code === LocalErrorCode.NOT_CONNECTED)
            return this.t.not_sent_no_connection;
        if (code === LocalErrorCode.OUTCOME_UNKNOWN || code === LocalErrorCode.CLIENT_CLOSED) {
            this.reloadOrders();
            return this.t.outcome_unknown;
        }
        if (code === LocalErrorCode.TIMEOUT || code === LocalErrorCode.CONNECTION_LOST)
            return this.t.no_answer;
        return this.errorMessage(error);
    }
    /** Word a refusal in the page's language from its code and details. */
    errorMessage(error) {
        if (error instanceof CommandError)
            return errorText(this.t, error.code, error.details, this.locale);
        return this.t.error_unknown ? fill(this.t.error_unknown, { code: "?" }) : String(error);
    }
    /** Ask the server for the portfolio (it answers with portfolio.update); settle when it answered. */
    async requestPortfolioUpdate() {
        try {
            await this.wsClient.sendUserCommand("refresh_portfolio", {});
        }
        catch (error) {
            const code = error.code;
            if (code === "no_portfolio" || code === "not_found") {
                const value = byId("portfolio-value");
                if (value)
                    value.textContent = this.t.no_portfolio;
            }
        }
    }
    async loadAccount() {
        // Without a portfolio there is no account to read (the page says so already).
        if (!this.hasPortfolio)
            return;
        const account = await this.getJson(this.config.account_url);
        if (account === null)
            return;
        this.portfolio.applyAccount(account);
        this.renderPortfolio();
    }
    /** GET a JSON document of the REST API; null when it fails (the caller keeps what it shows). */
    async getJson(url) {
        try {
            const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
            if (!response.ok)
                return null;
            return (await response.json());
        }
        catch {
            return null;
        }
    }
    // Portfolio
    updatePortfolioDisplay(data) {
        if (!this.hasPortfolio) {
            this.hasPortfolio = true;
            this.accountLoad.request();
        }
        this.portfolio.applySnapshot(data);
        this.renderPortfolio();
        // A new position needs its ticks for its revaluation, watchlist or not.
        if (this.watchlist.only)
            this.subscribePrices();
    }
    /** Show the portfolio's figures and positions as they are now (after a snapshot, the account or a tick). */
    renderPortfolio() {
        const totals = this.portfolio.totals();
        const value = byId("portfolio-value");
        if (value && totals.totalValue !== null)
            value.textContent = formatEuro(totals.totalValue);
        this.animateValueChange("portfolio-change", totals.unrealized, totals.unrealizedPercent);
        this.setFigure("portfolio-cash", totals.cash);
        this.setFigure("portfolio-buying-power", totals.buyingPower);
        this.setFigure("portfolio-realized", totals.realized, true);
        this.animateValueChange("portfolio-day-change", totals.dayChange, totals.dayChangePercent);
        const basis = byId("portfolio-day-basis");
        if (basis) {
            const kinds = new Set(Object.values(totals.referenceKinds));
            basis.textContent = kinds.size === 0 ? "" : kinds.size === 1 ? this.t[`reference_${[...kinds][0]}`] ?? "" : this.t.reference_mixed;
        }
        this.renderPositions();
    }
    setFigure(id, amount, signed = false) {
        const target = byId(id);
        if (!target)
            return;
        target.textContent = amount === null ? "–" : signed ? formatSigned(amount, formatEuro(amount)) : formatEuro(amount);
        if (signed && amount !== null)
            target.className = `value ${this.signClass(amount)}`;
    }
    signClass(amount) {
        return Math.abs(amount) < 0.005 ? "" : amount > 0 ? "positive" : "negative";
    }
    animateValueChange(elementId, change, changePercent) {
        const target = byId(elementId);
        if (!target)
            return;
        target.textContent = `${formatSigned(change, formatEuro(change))} (${formatPercent(changePercent)})`;
        target.className = `change ${this.signClass(change) || "flat"}`;
    }
    /**
     * Draw the positions. A tick only rewrites the cells of the rows already there, so the symbol
     * button a trader is about to click, or has focused with the keyboard, stays the same element;
     * rows are replaced only when the held instruments change.
     */
    renderPositions() {
        const body = document.querySelector("#positions tbody");
        if (!body)
            return;
        const rows = this.portfolio.rows();
        if (rows.length === 0) {
            body.replaceChildren(emptyRow(8, this.t.no_positions));
            return;
        }
        const drawn = new Map(Array.from(body.querySelectorAll("tr[data-position]")).map((row) => [row.dataset.position ?? "", row]));
        const ordered = rows.map((position) => {
            const row = drawn.get(position.symbol) ?? this.positionRow(position.symbol);
            this.fillPositionRow(row, position);
            return row;
        });
        const unchanged = ordered.length === body.children.length && ordered.every((row, index) => body.children[index] === row);
        if (!unchanged)
            body.replaceChildren(...ordered);
    }
    /** An empty row of a held instrument: its symbol button and the cells `fillPositionRow` writes. */
    positionRow(symbol) {
        const row = element("tr", { "data-position": symbol, "data-symbol-row": symbol });
        row.append(this.symbolCell("th", symbol, { scope: "row" }), ...["quantity", "avg-cost", "price", "market-value", "pnl", "pnl-percent", "day-change"].map((name) => element("td", { class: `num ${name}`, "data-cell": name })));
        return row;
    }
    fillPositionRow(row, position) {
        const pnlSign = this.signClass(position.unrealized);
        const daySign = position.dayChange === null ? "" : this.signClass(position.dayChange);
        const cells = {
            quantity: [formatNumber(position.quantity), "num quantity"],
            "avg-cost": [formatEuro(position.avgCost), "num avg-cost"],
            price: [position.price === null ? "–" : formatEuro(position.price), "num price"],
            "market-value": [formatEuro(position.marketValue), "num market-value"],
            pnl: [formatSigned(position.unrealized, formatEuro(position.unrealized)), `num pnl ${pnlSign}`],
            "pnl-percent": [formatPercent(position.unrealizedPercent), `num pnl ${pnlSign} pnl-percent`],
            "day-change": [
                position.dayChange === null ? "–" : formatSigned(position.dayChange, formatEuro(position.dayChange)),
                `num day-change ${daySign}`,
            ],
        };
        for (const cell of Array.from(row.querySelectorAll("td[data-cell]"))) {
            const [text, className] = cells[cell.dataset.cell ?? ""] ?? ["", cell.className];
            if (cell.textContent !== text)
                cell.textContent = text;
            if (cell.className !== className)
                cell.className = className;
        }
    }
    // Prices and chart
    updatePriceDisplay(data) {
        this.lastPrices.set(data.symbol, data.price);
        if (this.portfolio.applyTick(data.symbol, data.price, data.timestamp))
            this.renderPortfolio();
        this.setPrice(data.symbol, data.price, data.change, data.change_percent);
        const priceElement = document.querySelector(`[data-symbol="${CSS.escape(data.symbol)}"] .price`);
        if (priceElement) {
            const changeClass = data.change >= 0 ? "price-up" : "price-down";
            priceElement.classList.remove("price-up", "price-down");
            void priceElement.offsetWidth; // restart the flash animation
            priceElement.classList.add(changeClass);
            setTimeout(() => priceElement.classList.remove(changeClass), 1000);
        }
        this.chart?.tick(data.symbol, Date.parse(data.timestamp) / 1000, data.price, data.volume);
    }
    setPrice(symbol, price, change, changePercent) {
        const row = document.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
        if (!row)
            return;
        const priceCell = row.querySelector(".price");
        if (priceCell)
            priceCell.textContent = formatEuro(price);
        const changeCell = row.querySelector(".change");
        if (changeCell && change !== null && changePercent !== null) {
            changeCell.textContent = formatPercent(changePercent);
            changeCell.className = `change num ${change >= 0 ? "positive" : "negative"}`;
        }
    }
    /** Show a symbol everywhere: the board, the chart, the ticket, the alert and analysis forms. */
    selectSymbol(symbol) {
        if (symbol !== null && !this.config.instruments.some((instrument) => instrument.symbol === symbol))
            return;
        const changed = symbol !== this.selectedSymbol;
        this.selectedSymbol = symbol;
        document.querySelectorAll("#price-board .select-symbol").forEach((button) => {
            button.setAttribute("aria-pressed", String(button.dataset.symbol === symbol));
        });
        document.querySelectorAll("#price-board tr[data-symbol], tr[data-symbol-row]").forEach((row) => {
            row.classList.toggle("selected", (row.dataset.symbolRow ?? row.dataset.symbol) === symbol);
        });
        for (const id of ["order-symbol", "alert-symbol", "analysis-symbol"]) {
            const select = byId(id);
            if (select && symbol !== null && select.value !== symbol)
                select.value = symbol;
        }
        const label = byId("chart-symbol");
        if (label)
            label.textContent = symbol ?? "";
        if (changed) {
            void this.chart?.show(symbol);
            if (this.watchlist.only)
                this.applyWatchlist();
        }
    }
    /**
     * Narrow the price events to the watchlist, the chart's symbol and the held positions (revalued
     * on every tick), or widen them to all; subscribe only when that set changes.
     */
    subscribePrices() {
        const held = this.portfolio.rows().map((position) => position.symbol);
        const symbols = this.watchlist.subscriptionSymbols(this.selectedSymbol, held);
        const key = symbols ? symbols.join(",") : "";
        if (key === this.priceSubscription)
            return;
        this.priceSubscription = key;
        if (symbols)
            this.wsClient.subscribe(["market.price_update"], { symbols });
        else
            this.wsClient.subscribe(["market.price_update"]);
    }
    /** Show the board's watchlist marks and rows, and narrow or widen the price events to match. */
    applyWatchlist() {
        this.subscribePrices();
        const only = byId("watchlist-only");
        if (only)
            only.checked = this.watchlist.only;
        document.querySelectorAll("#price-board tbody tr[data-symbol]").forEach((row) => {
            const symbol = row.dataset.symbol ?? "";
            const watched = this.watchlist.has(symbol);
            row.hidden = this.watchlist.only && this.watchlist.size > 0 && !watched;
            const toggle = row.querySelector("button.watch");
            if (toggle) {
                toggle.setAttribute("aria-pressed", String(watched));
                toggle.textContent = watched ? "★" : "☆";
            }
        });
    }
    setRange(range) {
        document.querySelectorAll("#chart-ranges button[data-range]").forEach((button) => {
            button.setAttribute("aria-pressed", String(button.dataset.range === range));
        });
        void this.chart?.show(this.selectedSymbol, range);
    }
    // Notifications
    showNotification(kind, title, detail) {
        const container = byId("notifications") ?? document.body;
        const notification = element("div", { class: `notification ${kind}` });
        const content = element("div", { class: "notification-content" });
        content.append(element("strong", {}, title), element("br"), document.createTextNode(detail));
        const close = element("button", { type: "button", class: "close", "aria-label": this.t.close }, "×");
        close.addEventListener("click", () => notification.remove());
        notification.append(content, close);
        container.append(notification);
        setTimeout(() => notification.remove(), kind === "error" ? 10000 : 6000);
    }
    fillDetail(symbol, quantity, price) {
        return fill(this.t.fill_detail, { symbol, quantity: formatNumber(quantity), price: formatEuro(price) });
    }
    /**
     * Notify about a cancelled or failed order with its reason in the page's language: the
     * order's reason code and figures from the REST detail, else the event's code alone.
     */
    async notifyWithReason(kind, title, symbol, orderId, code = "") {
        const order = await this.getJson(`${this.config.order_url}${encodeURIComponent(orderId)}`);
        const reason = order ? orderReason(this.t, order, this.locale) : reasonText(this.t, code, { symbol }, this.locale);
        this.showNotification(kind, title, reason ? `${symbol} – ${reason}` : symbol);
    }
    /** Enable the controls that need the server only while connected; otherwise say why they are off. */
    setTradingEnabled(connected) {
        const reason = connected ? "" : this.t.no_connection;
        document.querySelectorAll(PortfolioWebSocketClient.SERVER_CONTROLS).forEach((button) => {
            if (button.dataset.busy === "true")
                return;
            if (button.id === "cancel-all" && connected) {
                button.disabled = cancelAllTargets(this.openOrders).length === 0;
                button.removeAttribute("title");
                return;
            }
            button.disabled = !connected;
            if (connected)
                button.removeAttribute("title");
            else
                button.title = reason;
        });
        const note = byId("ticket-connection");
        if (note) {
            note.textContent = reason;
            note.hidden = connected;
        }
    }
    isConnected() {
        return this.wsClient.getConnectionStatus() === "connected";
    }
    showConnectionStatus(message, type) {
        const statusElement = byId("connection-status");
        if (statusElement) {
            statusElement.textContent = message;
            statusElement.className = `status ${type}`;
        }
    }
    /** Show the connection's state: the status, stale figures greyed, the countdown to the next attempt. */
    showConnection(status) {
        const connected = status === "connected";
        if (connected) {
            this.reconnectAt = null;
            this.showConnectionStatus(this.t.connected, "success");
        }
        else {
            this.showConnectionStatus(this.t.disconnected, "warning");
        }
        const desk = byId("desk");
        if (desk)
            desk.dataset.connection = connected ? "connected" : "stale";
        const stale = byId("stale-note");
        if (stale)
            stale.hidden = connected;
        this.setTradingEnabled(connected);
        this.showReconnectInfo(status);
        if (connected || status === "disconnected") {
            if (this.connectionTimer !== null)
                clearInterval(this.connectionTimer);
            this.connectionTimer = null;
        }
        else if (this.connectionTimer === null) {
            this.connectionTimer = setInterval(() => this.connectionTick(), PROBE_INTERVAL_MS);
        }
    }
    showReconnectInfo(status) {
        const info = byId("reconnect-info");
        const countdown = byId("reconnect-countdown");
        const wanted = status !== "connected" && status !== "disconnected";
        if (info)
            info.hidden = !wanted;
        if (!countdown || !wanted)
            return;
        if (status === "offline")
            countdown.textContent = this.t.offline;
        else if (status === "connecting" || this.reconnectAt === null)
            countdown.textContent = this.t.connecting;
        else
            countdown.textContent = fill(this.t.reconnecting_in, { seconds: secondsLeft(this.reconnectAt, Date.now()) });
    }
    /** Each second while disconnected: the countdown, and a probe of the server while the page is seen. */
    connectionTick() {
        const status = this.wsClient.getConnectionStatus();
        this.showReconnectInfo(status);
        if (status === "reconnecting" && document.visibilityState === "visible")
            void this.probeServer();
    }
    /**
     * Ask `/healthz` whether the server answers again; if it does, reconnect now instead of
     * waiting out the backoff (at most every 2 s, see ProbeGate).
     */
    async probeServer() {
        try {
            const response = await fetch(this.config.health_url, { cache: "no-store", credentials: "same-origin" });
            if (!response.ok)
                return;
        }
        catch {
            return;
        }
        const waiting = this.wsClient.getConnectionStatus() === "reconnecting";
        if (this.probeGate.mayReconnect(Date.now(), document.visibilityState === "visible", waiting)) {
            this.wsClient.reconnectNow();
        }
    }
    bindConnectionControls() {
        byId("connect-now")?.addEventListener("click", () => this.wsClient.reconnectNow());
        document.addEventListener("visibilitychange", () => {
            if (document.visibilityState === "visible" && this.wsClient.getConnectionStatus() === "reconnecting") {
                void this.probeServer();
            }
        });
    }
    // Order ticket
    bindForms() {
        const orderForm = byId("order-form");
        const orderType = byId("order-type");
        orderType?.addEventListener("change", () => this.showPriceField());
        this.showPriceField();
        orderForm?.addEventListener("submit", (event) => {
            event.preventDefault();
            void this.submitOrder(orderForm);
        });
        byId("order-confirm")?.addEventListener("click", () => void this.confirmPreview());
        byId("order-preview-cancel")?.addEventListener("click", () => this.closePreview(true));
        const confirmSetting = byId("confirm-setting");
        if (confirmSetting) {
            confirmSetting.checked = this.confirmPolicy.enabled;
            confirmSetting.addEventListener("change", () => (this.confirmPolicy.enabled = confirmSetting.checked));
        }
        byId("logout-form")?.addEventListener("submit", () => this.wsClient.disconnect());
        // A symbol chosen anywhere (board, positions, blotter) is chosen everywhere.
        document.addEventListener("click", (event) => {
            const button = event.target?.closest?.(".select-symbol");
            if (button?.dataset.symbol)
                this.selectSymbol(button.dataset.symbol);
        });
        for (const id of ["order-symbol", "alert-symbol", "analysis-symbol"]) {
            byId(id)?.addEventListener("change", (event) => this.selectSymbol(event.target.value));
        }
        document.querySelectorAll("#chart-ranges button[data-range]").forEach((button) => {
            button.addEventListener("click", () => this.setRange(button.dataset.range ?? ""));
        });
        document.querySelectorAll("#price-board button.watch").forEach((button) => {
            button.addEventListener("click", () => {
                this.watchlist.toggle(button.dataset.symbol ?? "");
                this.applyWatchlist();
            });
        });
        byId("watchlist-only")?.addEventListener("change", (event) => {
            this.watchlist.only = event.target.checked;
            this.applyWatchlist();
        });
        document.addEventListener("themechange", () => this.chart?.restyle());
        byId("history-prev")?.addEventListener("click", () => void this.refreshOrderHistory(this.historyPage - 1));
        byId("history-next")?.addEventListener("click", () => void this.refreshOrderHistory(this.historyPage + 1));
        byId("executions-prev")?.addEventListener("click", () => void this.refreshExecutions(this.executionsPage - 1));
        byId("executions-next")?.addEventListener("click", () => void this.refreshExecutions(this.executionsPage + 1));
        for (const id of ["blotter-symbol", "blotter-status"]) {
            byId(id)?.addEventListener("change", () => {
                this.historyPage = 1;
                this.executionsPage = 1;
                this.reloadBlotter();
            });
        }
        byId("cancel-all")?.addEventListener("click", () => void this.cancelAll());
        const modifyForm = byId("modify-form");
        modifyForm?.addEventListener("submit", (event) => {
            event.preventDefault();
            void this.submitModify(modifyForm);
        });
        byId("modify-cancel")?.addEventListener("click", () => {
            if (modifyForm)
                modifyForm.hidden = true;
        });
        const alertForm = byId("alert-form");
        alertForm?.addEventListener("submit", (event) => {
            event.preventDefault();
            void this.submitAlert(alertForm);
        });
        const analysisForm = byId("analysis-form");
        analysisForm?.addEventListener("submit", (event) => {
            event.preventDefault();
            void this.submitAnalysis(analysisForm);
        });
    }
    /** B/S start a buy or sell, Enter confirms, Escape cancels; Enter in a ticket field sends nothing. */
    bindKeys() {
        document.addEventListener("keydown", (event) => {
            const target = event.target;
            const tag = target?.tagName ?? "";
            const preview = byId("order-preview");
            const modify = byId("modify-form");
            const confirming = !!preview && !preview.hidden;
            const action = keyAction({
                key: event.key,
                modified: event.ctrlKey || event.altKey || event.metaKey,
                inField: ["INPUT", "SELECT", "TEXTAREA"].includes(tag) || !!target?.isContentEditable,
                inTicket: !!target?.closest("#order-form"),
                onButton: tag === "BUTTON",
                confirming,
                dialogOpen: confirming || (!!modify && !modify.hidden),
            });
            if (action === null)
                return;
            event.preventDefault();
            if (action === "start-buy" || action === "start-sell")
                this.startTicket(action === "start-buy" ? "buy" : "sell");
            else if (action === "confirm")
                void this.confirmPreview();
            else if (action === "cancel") {
                if (confirming)
                    this.closePreview(true);
                else if (modify)
                    modify.hidden = true;
            }
        });
    }
    startTicket(side) {
        const select = byId("order-side");
        if (select)
            select.value = side;
        const symbol = byId("order-symbol");
        if (symbol && this.selectedSymbol)
            symbol.value = this.selectedSymbol;
        byId("order-quantity")?.focus();
    }
    showPriceField() {
        const type = byId("order-type")?.value ?? "market";
        const field = byId("price-field");
        const label = byId("order-price-label");
        if (field)
            field.hidden = type === "market";
        if (label)
            label.textContent = type === "stop" ? this.t.stop_price : this.t.limit_price;
    }
    clearErrors(form) {
        form.querySelectorAll(".field-error, .form-error, .form-result, .form-warning").forEach((node) => (node.textContent = ""));
        form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    }
    fieldError(field, message) {
        const target = byId(`${field}-error`);
        const input = document.querySelector(`#order-form [name="${field}"]`);
        if (target) {
            target.textContent = message;
            input?.setAttribute("aria-invalid", "true");
            input?.focus();
        }
        else {
            const general = byId("order-form-error");
            if (general)
                general.textContent = message;
        }
    }
    readDecimal(form, name, reportTo) {
        const input = form.elements.namedItem(name);
        const parsed = parseDecimalInput(input?.value ?? "", this.locale);
        if (!parsed.ok) {
            reportTo(this.t[parsed.reason]);
            return null;
        }
        return parsed.value;
    }
    /** Read the ticket; while connected show the preview (unless confirmation is off), else refuse at once. */
    async submitOrder(form) {
        this.clearErrors(form);
        this.closePreview(false);
        const values = new FormData(form);
        const orderType = String(values.get("order_type"));
        const quantity = this.readDecimal(form, "quantity", (message) => this.fieldError("quantity", message));
        if (quantity === null)
            return;
        const order = {
            symbol: String(values.get("symbol") ?? ""),
            side: String(values.get("side")),
            quantity,
            order_type: orderType,
        };
        if (orderType !== "market") {
            const price = this.readDecimal(form, "price", (message) => this.fieldError("price", message));
            if (price === null)
                return;
            if (orderType === "stop")
                order.stop_price = price;
            else
                order.price = price;
        }
        if (!this.isConnected()) {
            await this.sendOrder(order); // refused at once by the client: nothing is sent
            return;
        }
        const warnings = this.orderWarnings(order);
        if (this.confirmPolicy.shouldConfirm(warnings.length > 0)) {
            this.showPreview(order, warnings);
            return;
        }
        await this.sendOrder(order);
    }
    orderWarnings(order) {
        const warnings = [];
        const last = this.lastPrices.get(order.symbol);
        const price = order.price ?? order.stop_price;
        if (price !== undefined && price !== null && last !== undefined && isFarFromMarket(price, last)) {
            warnings.push(fill(this.t.warning_far_price, { price: formatEuro(price), last: formatEuro(last) }));
        }
        const preview = this.preview(order);
        if (preview.exceeds)
            warnings.push(order.side === "buy" ? this.t.warning_buying_power : this.t.warning_position);
        return warnings;
    }
    preview(order) {
        const totals = this.portfolio.totals();
        const fees = this.portfolio.fees();
        return previewOrder({
            side: order.side,
            orderType: order.order_type,
            quantity: order.quantity,
            price: order.price ?? order.stop_price ?? null,
            lastPrice: this.lastPrices.get(order.symbol) ?? null,
            cash: totals.cash,
            buyingPower: totals.buyingPower,
            held: this.portfolio.quantityOf(order.symbol),
            feeRate: fees?.rate ?? null,
            minFee: fees?.minimum ?? null,
        });
    }
    showPreview(order, warnings) {
        const panel = byId("order-preview");
        if (!panel)
            return;
        const preview = this.preview(order);
        this.previewed = order;
        const price = order.order_type === "market" ? this.t.at_market : formatEuro(order.price ?? order.stop_price ?? 0);
        const summary = byId("order-preview-summary");
        if (summary) {
            summary.textContent = fill(this.t.preview_summary, {
                side: this.t[`side_${order.side}`] ?? order.side,
                quantity: formatNumber(order.quantity),
                symbol: order.symbol,
                type: this.t[`type_${order.order_type}`] ?? order.order_type,
                price,
            });
        }
        const amount = (value) => (value === null ? "–" : formatEuro(value));
        const totalLabel = byId("preview-total-label");
        if (totalLabel)
            totalLabel.textContent = order.side === "buy" ? this.t.estimated_cost : this.t.estimated_proceeds;
        const set = (id, text) => {
            const node = byId(id);
            if (node)
                node.textContent = text;
        };
        set("preview-total", amount(preview.total));
        set("preview-fees", amount(preview.fees));
        set("preview-cash-after", amount(preview.cashAfter));
        const list = byId("order-preview-warnings");
        if (list)
            list.replaceChildren(...warnings.map((warning) => element("li", {}, warning)));
        const skip = byId("confirm-skip-session");
        if (skip)
            skip.checked = false;
        panel.hidden = false;
        this.setTradingEnabled(this.isConnected());
        byId("order-confirm")?.focus();
    }
    closePreview(refocus) {
        const panel = byId("order-preview");
        if (panel && !panel.hidden) {
            panel.hidden = true;
            if (refocus)
                byId("order-quantity")?.focus();
        }
        this.previewed = null;
    }
    async confirmPreview() {
        const order = this.previewed;
        if (!order)
            return;
        if (byId("confirm-skip-session")?.checked)
            this.confirmPolicy.skipForSession();
        this.closePreview(false);
        await this.sendOrder(order);
    }
    async sendOrder(order) {
        const form = byId("order-form");
        const button = form?.querySelector('button[type="submit"]') ?? null;
        order = { ...order, client_order_id: newRequestId() };
        this.ticketOrder = { clientOrderId: order.client_order_id, orderId: null };
        const output = byId("order-result");
        const sending = this.placeOrder(order);
        // A refusal for want of a connection is settled already: the ticket never says "sent" for it.
        if (output && this.isConnected()) {
            output.textContent = this.t.order_sent;
            output.dataset.state = "sent";
        }
        if (button) {
            button.disabled = true;
            button.dataset.busy = "true";
        }
        try {
            const result = await sending;
            if (this.ticketOrder?.clientOrderId === order.client_order_id)
                this.ticketOrder.orderId = String(result.order_id);
            if (output) {
                const message = messageText(this.t, result.message_code, result.message_params, this.locale) ??
                    fill(this.t.order_state, { order_id: result.order_id, status: this.t[`status_${result.status}`] ?? result.status });
                output.textContent = fill(this.t.order_accepted, { order_id: result.order_id, message });
                // The answer carries the state as of its commit; events after it move it on.
                output.dataset.state = FINAL_STATUSES.has(result.status) ? result.status : "confirmed";
                output.dataset.orderId = String(result.order_id);
                output.dataset.orderStatus = result.status;
            }
            const quantity = form?.elements.namedItem("quantity");
            if (quantity)
                quantity.value = "";
            this.reloadOrders();
        }
        catch (error) {
            if (output) {
                output.textContent = "";
                output.dataset.state = "failed";
            }
            const failure = error;
            const field = typeof failure.details?.field === "string" ? failure.details.field : null;
            const mapped = field === "stop_price" ? "price" : field;
            if (mapped && byId(`${mapped}-error`))
                this.fieldError(mapped, this.errorMessage(failure));
            else
                this.fieldError("", this.commandFailure(failure));
        }
        finally {
            if (button) {
                delete button.dataset.busy;
                button.disabled = !this.isConnected();
            }
        }
    }
    /** Show a later state of the ticket's order (filled, cancelled, failed) from its events. */
    showTicketState(orderId, status) {
        const output = byId("order-result");
        if (!output || this.ticketOrder?.orderId !== orderId)
            return;
        output.textContent = fill(this.t.order_state, { order_id: orderId, status: this.t[`status_${status}`] ?? status });
        output.dataset.state = status;
        output.dataset.orderStatus = status;
    }
    // Blotter: open orders, executions, order history
    filterValue(id) {
        return byId(id)?.value ?? "";
    }
    async refreshOpenOrders() {
        const table = byId("open-orders");
        if (!table)
            return;
        const data = await this.getJson(`${this.config.history_url}?${openOrdersQuery(this.filterValue("blotter-symbol") || undefined)}`);
        if (data === null)
            return;
        this.openOrders = data.results;
        const body = table.querySelector("tbody");
        if (!body)
            return;
        body.replaceChildren();
        if (data.results.length === 0) {
            body.append(emptyRow(10, this.t.no_open_orders));
        }
        for (const order of data.results) {
            const id = String(order.id);
            const price = restingPrice(order);
            const row = element("tr", { "data-order-id": id, "data-status": order.status ?? "", "data-symbol-row": order.symbol ?? "" });
            row.append(element("td", {}, id), element("td", {}, order.created_at ? formatTime(order.created_at) : ""), this.symbolCell("td", order.symbol ?? ""), element("td", {}, this.t[`side_${order.side}`] ?? order.side ?? ""), element("td", {}, this.t[`type_${order.order_type}`] ?? order.order_type ?? ""), element("td", { class: "num" }, formatNumber(toNumber(order.quantity) ?? 0)), element("td", { class: `num filled${isPartlyFilled(order) ? " partial" : ""}` }, formatNumber(toNumber(order.filled_quantity) ?? 0)), element("td", { class: "num remaining" }, formatNumber(remainingOf(order))), element("td", { class: "num" }, price === null ? "–" : formatEuro(price)), this.orderActions(id, order));
            body.append(row);
        }
        this.setTradingEnabled(this.isConnected());
    }
    orderActions(id, order) {
        const actions = element("td", { class: "actions" });
        if (!isOpen(order.status))
            return actions;
        const cancel = element("button", { type: "button", class: "cancel-order" }, this.t.cancel);
        cancel.setAttribute("aria-label", `${this.t.cancel} ${id}`);
        cancel.addEventListener("click", () => void this.cancelFromHistory(id, cancel));
        const modify = element("button", { type: "button", class: "modify-order" }, this.t.modify);
        modify.setAttribute("aria-label", `${this.t.modify} ${id}`);
        modify.addEventListener("click", () => this.openModify(id, order));
        if (!this.isConnected()) {
            for (const button of [cancel, modify]) {
                button.disabled = true;
                button.title = this.t.no_connection;
            }
        }
        actions.append(cancel, modify);
        return actions;
    }
    async refreshExecutions(page = this.executionsPage) {
        const table = byId("executions");
        if (!table)
            return;
        page = Math.max(1, page);
        const query = listQuery({ page, symbol: this.filterValue("blotter-symbol") || undefined });
        const data = await this.getJson(`${this.config.fills_url}?${query}`);
        if (data === null) {
            if (page > 1)
                await this.refreshExecutions(page - 1);
            return;
        }
        this.executionsPage = page;
        const body = table.querySelector("tbody");
        if (!body)
            return;
        body.replaceChildren();
        if (data.results.length === 0) {
            body.append(emptyRow(8, this.t.no_executions));
        }
        for (const execution of data.results) {
            const row = element("tr", {
                "data-fill-id": String(execution.id),
                "data-order-id": String(execution.order_id),
                "data-symbol-row": execution.symbol,
            });
            row.append(element("td", {}, formatTime(execution.executed_at)), element("td", {}, String(execution.order_id)), this.symbolCell("td", execution.symbol), element("td", {}, this.t[`side_${execution.side}`] ?? execution.side), element("td", { class: "num" }, formatNumber(toNumber(execution.quantity) ?? 0)), element("td", { class: "num" }, this.euroOrDash(execution.price)), element("td", { class: "num" }, this.euroOrDash(execution.value)), element("td", { class: "num fees" }, this.euroOrDash(execution.fees)));
            body.append(row);
        }
        this.showPager("executions", page, data);
    }
    showPager(prefix, page, data) {
        const label = byId(`${prefix}-page`);
        if (label)
            label.textContent = fill(this.t.page, { page, pages: pageCount(data.count, PAGE_SIZE) });
        const prev = byId(`${prefix}-prev`);
        const next = byId(`${prefix}-next`);
        if (prev)
            prev.disabled = !data.previous;
        if (next)
            next.disabled = !data.next;
    }
    async refreshOrderHistory(page = this.historyPage) {
        const table = byId("order-history");
        const error = byId("order-history-error");
        if (!table)
            return;
        page = Math.max(1, page);
        table.setAttribute("aria-busy", "true");
        try {
            const query = listQuery({
                page,
                symbol: this.filterValue("blotter-symbol") || undefined,
                status: this.filterValue("blotter-status") || undefined,
            });
            const response = await fetch(`${this.config.history_url}?${query}`, {
                credentials: "same-origin",
                headers: { Accept: "application/json" },
            });
            if (response.status === 404 && page > 1) {
                await this.refreshOrderHistory(page - 1);
                return;
            }
            if (!response.ok)
                throw new Error(`HTTP ${response.status}`);
            const data = (await response.json());
            this.historyPage = page;
            this.renderHistory(data);
            if (error)
                error.textContent = "";
        }
        catch {
            if (error)
                error.textContent = this.t.history_failed;
        }
        finally {
            table.setAttribute("aria-busy", "false");
        }
    }
    renderHistory(data) {
        const body = document.querySelector("#order-history tbody");
        if (!body)
            return;
        body.replaceChildren();
        if (data.results.length === 0) {
            body.append(emptyRow(10, this.t.history_empty));
        }
        for (const order of data.results) {
            const id = String(order.id);
            const status = order.status ?? "";
            const price = toNumber(order.average_fill_price) ?? restingPrice(order);
            const row = element("tr", { "data-order-id": id, "data-status": status, "data-symbol-row": order.symbol ?? "" });
            row.append(element("td", {}, id), element("td", {}, order.created_at ? formatTime(order.created_at) : ""), this.symbolCell("td", order.symbol ?? ""), element("td", {}, this.t[`side_${order.side}`] ?? order.side ?? ""), element("td", {}, this.t[`type_${order.order_type}`] ?? order.order_type ?? ""), element("td", { class: "num" }, formatNumber(toNumber(order.quantity) ?? 0)), element("td", { class: "num" }, price === null ? "–" : formatEuro(price)), element("td", { class: `order-status ${status}` }, this.t[`status_${status}`] ?? status), element("td", { class: "reason" }, orderReason(this.t, order, this.locale)), this.orderActions(id, order));
            body.append(row);
        }
        this.showPager("history", this.historyPage, data);
    }
    async cancelFromHistory(orderId, button) {
        button.disabled = true;
        button.dataset.busy = "true";
        try {
            await this.cancelOrder(orderId);
            this.reloadOrders();
        }
        catch (error) {
            this.showNotification("error", this.t.order_failed, this.commandFailure(error));
        }
        finally {
            delete button.dataset.busy;
            button.disabled = !this.isConnected();
        }
    }
    /** Cancel every open order the list shows, each under its own request id; report what failed. */
    async cancelAll() {
        const targets = cancelAllTargets(this.openOrders);
        if (targets.length === 0)
            return;
        if (!window.confirm(fill(this.t.cancel_all_confirm, { count: targets.length })))
            return;
        const button = byId("cancel-all");
        if (button) {
            button.disabled = true;
            button.dataset.busy = "true";
        }
        const outcomes = await Promise.allSettled(targets.map((id) => this.cancelOrder(id)));
        const failed = outcomes.filter((outcome) => outcome.status === "rejected");
        if (failed.length > 0) {
            this.showNotification("error", fill(this.t.cancel_all_failed, { count: failed.length }), this.commandFailure(failed[0].reason));
        }
        if (button)
            delete button.dataset.busy;
        this.reloadOrders();
    }
    openModify(orderId, order) {
        const form = byId("modify-form");
        if (!form)
            return;
        form.hidden = false;
        this.clearErrors(form);
        form.elements.namedItem("order_id").value = orderId;
        form.elements.namedItem("quantity").value = formatDecimalInput(order.quantity, this.locale);
        form.elements.namedItem("price").value = formatDecimalInput(restingPrice(order), this.locale);
        const label = byId("modify-order-id");
        if (label)
            label.textContent = orderId;
        form.elements.namedItem("quantity").focus();
    }
    async submitModify(form) {
        this.clearErrors(form);
        const error = byId("modify-error");
        const report = (message) => {
            if (error)
                error.textContent = message;
        };
        const data = { order_id: form.elements.namedItem("order_id").value };
        for (const name of ["quantity", "price"]) {
            const raw = form.elements.namedItem(name).value;
            if (raw.trim() === "")
                continue;
            const value = this.readDecimal(form, name, report);
            if (value === null)
                return;
            data[name] = value;
        }
        try {
            await this.modifyOrder(data);
            form.hidden = true;
            this.showNotification("info", fill(this.t.order_modified, { order_id: String(data.order_id) }), "");
            this.reloadOrders();
            // A changed quantity or price changes what the order reserves of the buying power.
            this.accountLoad.request();
        }
        catch (failure) {
            report(this.commandFailure(failure));
        }
    }
    // Alerts
    async loadAlerts() {
        try {
            const result = await this.wsClient.sendUserCommand("list_alerts", {});
            this.renderAlertRules(Array.isArray(result) ? result : result.alerts ?? []);
        }
        catch {
            // Alerts are optional on a gateway without market data; the panel stays empty.
        }
    }
    renderAlertRules(rules) {
        this.alertRules = rules;
        const list = byId("alert-rules");
        if (!list)
            return;
        list.replaceChildren();
        if (rules.length === 0) {
            list.append(element("li", { class: "empty" }, this.t.no_alerts));
        }
        for (const rule of rules) {
            const id = String(rule.alert_id ?? rule.id ?? "");
            const description = alertRuleText(this.t, rule, this.locale);
            const item = element("li", { "data-alert-id": id }, `${description} `);
            const remove = element("button", { type: "button", class: "remove-alert" }, this.t.remove);
            remove.setAttribute("aria-label", `${this.t.remove}: ${description}`);
            if (!this.isConnected()) {
                remove.disabled = true;
                remove.title = this.t.no_connection;
            }
            remove.addEventListener("click", async () => {
                try {
                    await this.wsClient.sendUserCommand("remove_alert", { alert_id: rule.alert_id ?? rule.id });
                    this.showNotification("info", this.t.alert_removed, `${rule.symbol}`);
                    void this.loadAlerts();
                }
                catch (error) {
                    this.showNotification("error", this.t.alert, this.commandFailure(error));
                }
            });
            item.append(remove);
            list.append(item);
        }
    }
    async submitAlert(form) {
        this.clearErrors(form);
        const error = byId("alert-error");
        const report = (message) => {
            if (error)
                error.textContent = message;
        };
        const threshold = this.readDecimal(form, "threshold", report);
        if (threshold === null)
            return;
        const values = new FormData(form);
        const symbol = String(values.get("symbol"));
        const condition = String(values.get("condition"));
        const last = this.lastPrices.get(symbol);
        const warning = byId("alert-warning");
        // A price threshold far from the market is shown first; the same one submitted again is meant.
        const key = `${symbol}|${condition}|${threshold}`;
        const far = (condition === "above" || condition === "below") && last !== undefined && isFarFromMarket(threshold, last);
        if (far && form.dataset.warned !== key) {
            form.dataset.warned = key;
            if (warning)
                warning.textContent = fill(this.t.warning_far_threshold, { threshold: formatEuro(threshold), last: formatEuro(last) });
            return;
        }
        delete form.dataset.warned;
        if (warning)
            warning.textContent = "";
        try {
            await this.wsClient.sendUserCommand("subscribe_alerts", { symbol, condition, threshold });
            this.showNotification("info", fill(this.t.alert_created, { symbol }), "");
            form.elements.namedItem("threshold").value = "";
            void this.loadAlerts();
        }
        catch (failure) {
            report(this.commandFailure(failure));
        }
    }
    /** The condition of the one price rule (above/below) of this symbol and threshold, if the page knows exactly one. */
    priceRuleCondition(data) {
        if (data.alert_type !== "price_threshold")
            return null;
        const conditions = new Set(this.alertRules
            .filter((rule) => rule.symbol === data.symbol && toNumber(rule.threshold) === toNumber(data.threshold))
            .map((rule) => rule.condition)
            .filter((condition) => condition === "above" || condition === "below"));
        return conditions.size === 1 ? [...conditions][0] : null;
    }
    showAlert(data) {
        const kind = data.severity === "critical" ? "error" : data.severity === "warning" ? "warning" : "info";
        const message = alertText(this.t, { ...data, condition: this.priceRuleCondition(data) }, this.locale);
        this.showNotification(kind, `${this.t.alert}: ${data.symbol}`, message);
        const list = byId("alerts-incoming");
        if (list) {
            const item = element("li", { class: `alert ${data.severity}` }, `${formatTime(data.timestamp)} ${message}`);
            list.prepend(item);
            while (list.children.length > 20)
                list.lastElementChild?.remove();
        }
    }
    // Analysis
    async submitAnalysis(form) {
        this.clearErrors(form);
        const values = new FormData(form);
        const symbol = String(values.get("symbol"));
        const error = byId("analysis-error");
        const output = byId("analysis-result");
        try {
            const result = await this.wsClient.sendUserCommand("start_analysis", {
                symbol,
                analysis_type: String(values.get("analysis_type")),
                parameters: {},
            });
            this.pendingAnalyses.add(String(result.analysis_id));
            if (output)
                output.textContent = fill(this.t.analysis_running, { symbol });
        }
        catch (failure) {
            if (error)
                error.textContent = this.commandFailure(failure);
        }
    }
    showAnalysis(data) {
        const output = byId("analysis-result");
        if (!output)
            return;
        if (this.pendingAnalyses.size > 0 && !this.pendingAnalyses.has(String(data.analysis_id)))
            return;
        this.pendingAnalyses.delete(String(data.analysis_id));
        output.replaceChildren();
        const recommendation = this.t[data.recommendation] ?? data.recommendation;
        const heading = element("p", { class: `recommendation ${data.recommendation}` });
        heading.append(element("strong", {}, `${data.symbol}: ${recommendation}`), document.createTextNode(` · ${this.t[`analysis_${data.analysis_type}`] ?? data.analysis_type}` +
            ` · ${this.t.confidence} ${formatNumber(data.confidence_score * (data.confidence_score <= 1 ? 100 : 1), undefined, 1)} %`));
        output.append(heading);
        const result = data.result;
        if (data.analysis_type === "fundamental") {
            output.append(...this.fundamentalExplained(result));
        }
        else if (data.analysis_type === "sentiment") {
            output.append(...this.sentimentExplained(result));
        }
        else {
            output.append(...this.technicalExplained(result));
        }
        output.append(...this.reasonsExplained(result.reasons));
        this.showNotification("info", fill(this.t.analysis_done, { symbol: data.symbol, recommendation }), "");
    }
    /**
     * The findings behind the recommendation, each worded from its code and figures
     * (market/reasons.py) and marked by its vote; nothing for a result without them.
     */
    reasonsExplained(reasons) {
        if (!Array.isArray(reasons) || reasons.length === 0)
            return [];
        const list = element("ul", { class: "plain reasons" });
        for (const reason of reasons) {
            if (!reason || typeof reason.code !== "string")
                continue;
            const vote = typeof reason.vote === "number" ? reason.vote : null;
            const mood = vote === null ? "decision" : vote > 0 ? "positive" : vote < 0 ? "negative" : "neutral";
            list.append(element("li", { class: `reason ${mood}`, "data-code": reason.code }, analysisReasonText(this.t, reason, this.locale)));
        }
        const heading = element("h3", { class: "reasons-heading" }, this.t.reasons ?? "");
        return [heading, list];
    }
    /** The indicator values and the signal each one gives. */
    technicalExplained(result) {
        const table = element("table", { class: "data indicators" });
        const body = element("tbody");
        const indicators = result.indicators ?? result;
        for (const [name, value] of Object.entries(indicators)) {
            if (value !== null && typeof value === "object")
                continue;
            const row = element("tr");
            const number = toNumber(value);
            const shown = number !== null ? formatNumber(number) : value === null || value === undefined ? "–" : String(value);
            row.append(element("th", { scope: "row" }, this.t[`indicator_${name}`] ?? name), element("td", { class: "num" }, shown));
            body.append(row);
        }
        table.append(body);
        const signals = element("ul", { class: "plain signals" });
        for (const [name, value] of Object.entries(result.signals ?? {})) {
            const shown = typeof value === "boolean" ? (value ? this.t.yes : this.t.no) : (this.t[`signal_${String(value)}`] ?? String(value));
            signals.append(element("li", {}, `${this.t[`signal_name_${name}`] ?? name}: ${shown}`));
        }
        return [table, signals];
    }
    /** The metrics table: each figure, its thresholds, its verdict and the peer comparison. */
    fundamentalExplained(result) {
        const table = element("table", { class: "data metrics" });
        const head = element("tr");
        for (const label of [this.t.metric, this.t.value, this.t.threshold_good, this.t.threshold_bad, this.t.verdict, this.t.peers]) {
            head.append(element("th", { scope: "col" }, label));
        }
        const body = element("tbody");
        for (const row of result.metrics ?? []) {
            const better = row.better === "lower" ? "≤" : "≥";
            const worse = row.better === "lower" ? "≥" : "≤";
            const peers = row.peers;
            const line = element("tr", { class: `verdict-${String(row.verdict)}` });
            line.append(element("th", { scope: "row" }, this.t[`metric_${String(row.metric)}`] ?? String(row.metric)), element("td", { class: "num" }, this.numberOrDash(row.value)), element("td", { class: "num" }, `${better} ${this.numberOrDash(row.good)}`), element("td", { class: "num" }, `${worse} ${this.numberOrDash(row.bad)}`), element("td", {}, this.t[`verdict_${String(row.verdict)}`] ?? String(row.verdict)), element("td", {}, peers
                ? fill(this.t.peers_median, { median: this.numberOrDash(peers.median), count: peers.count }) +
                    ` – ${this.t[`verdict_${peers.verdict}`] ?? peers.verdict}`
                : "–"));
            body.append(line);
        }
        const thead = element("thead");
        thead.append(head);
        table.append(thead, body);
        const source = String(result.source ?? "");
        const footer = element("p", { class: "analysis-basis" }, fill(this.t.fundamentals_basis, {
            as_of: typeof result.as_of === "string" ? formatDate(result.as_of, this.locale) : "–",
            source,
            days: String(result.data_age_days ?? "–"),
            agreeing: String(result.agreeing ?? "–"),
            checks: String(result.checks ?? "–"),
        }));
        return [...this.demoNotice(source === "demo"), table, footer];
    }
    /** The aggregate score, the strongest headlines and every scored headline with its score. */
    sentimentExplained(result) {
        const headlines = result.headlines ?? [];
        const summary = element("p", { class: "analysis-basis" }, fill(this.t.sentiment_basis, { score: this.numberOrDash(result.score), items: String(result.items ?? headlines.length) }));
        const parts = [...this.demoNotice(headlines.some((h) => h.source === "demo")), summary];
        for (const [key, label] of [["strongest_positive", this.t.strongest_positive], ["strongest_negative", this.t.strongest_negative]]) {
            const item = result[key];
            if (item) {
                const quoted = fill(this.t.quoted ?? "“{text}”", { text: String(item.headline) });
                parts.push(element("p", { class: `strongest ${key}` }, `${label}: ${quoted} (${this.numberOrDash(item.score)})`));
            }
        }
        const list = element("ol", { class: "plain headlines" });
        for (const item of headlines) {
            const score = toNumber(item.score) ?? 0;
            // The server's polarity cut-off: scores within ±0.05 are neutral.
            const entry = element("li", { class: score >= 0.05 ? "positive" : score <= -0.05 ? "negative" : "neutral" });
            const url = String(item.url ?? "");
            const title = /^https?:\/\//.test(url)
                ? element("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, String(item.headline))
                : element("span", {}, String(item.headline));
            entry.append(element("span", { class: "num score" }, formatSigned(score, this.numberOrDash(item.score))), document.createTextNode(" "), title, element("small", {}, ` · ${formatTime(String(item.published_at))} · ${String(item.source)} · ${this.t[`language_${String(item.language)}`] ?? String(item.language)}`));
            list.append(entry);
        }
        parts.push(list);
        return parts;
    }
    demoNotice(isDemo) {
        return isDemo ? [element("p", { class: "demo-notice" }, this.t.demo_data)] : [];
    }
    /** A table cell whose symbol, clicked, selects it everywhere. */
    symbolCell(tag, symbol, attributes = {}) {
        const cell = element(tag, attributes);
        if (!symbol)
            return cell;
        const button = element("button", { type: "button", class: "link select-symbol", "data-symbol": symbol }, symbol);
        button.setAttribute("aria-label", fill(this.t.show_symbol ?? "{symbol}", { symbol }));
        cell.append(button);
        return cell;
    }
    numberOrDash(value) {
        const number = toNumber(value);
        return number === null ? "–" : formatNumber(number);
    }
    euroOrDash(value) {
        const number = toNumber(value);
        return number === null ? "–" : formatEuro(number);
    }
}
// Connection
/** Controls that need the server: off while disconnected, with the reason as their title. */
PortfolioWebSocketClient.SERVER_CONTROLS = [
    '#order-form button[type="submit"]',
    "#order-confirm",
    '#modify-form button[type="submit"]',
    "button.cancel-order",
    "button.modify-order",
    "#cancel-all",
    '#alert-form button[type="submit"]',
    "button.remove-alert",
    '#analysis-form button[type="submit"]',
].join(", ");
function boot() {
    const source = document.getElementById("desk-config");
    if (!source?.textContent)
        return;
    const desk = new PortfolioWebSocketClient(JSON.parse(source.textContent));
    window.portfolioWS = desk;
    desk.start();
}
if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", boot);
}
else {
    boot();
}
