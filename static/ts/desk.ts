/**
 * The staff desk: the spec's PortfolioWebSocketClient (section 1.2), wired to the page's
 * elements with the spec's ids and classes, plus the portfolio revalued on every tick, the
 * order ticket with its preview, the blotter (open orders, executions, history), alerts,
 * analysis and a live chart. The logic lives in modules of its own (portfolio-state, blotter,
 * order-ticket, i18n, connection-state); this file binds it to the page.
 */

import { PriceChart } from "./chart.js";
import { CommandError, LocalErrorCode, WebSocketEventClient, newRequestId } from "./event-client.js";
import type {
  AnalysisCompleteData,
  CancelOrderCommand,
  ModifyOrderCommand,
  MarketAlertData,
  OrderCancelledData,
  OrderFailedData,
  OrderFilledData,
  PlaceOrderCommand,
  PlaceOrderResult,
  PortfolioUpdateData,
  PortfolioValueChangedData,
  PriceUpdateData,
  WebSocketMessage,
} from "./events.js";
import {
  type BlotterOrder,
  type Execution,
  type Page,
  cancelAllTargets,
  isOpen,
  isPartlyFilled,
  listQuery,
  openOrdersQuery,
  orderReason,
  pageCount,
  remainingOf,
  restingPrice,
} from "./blotter.js";
import { Coalescer, ProbeGate, ResyncPolicy, secondsLeft } from "./connection-state.js";
import {
  fill,
  formatDate,
  formatDecimalInput,
  formatEuro,
  formatNumber,
  formatPercent,
  formatSigned,
  formatTime,
  pageLocale,
  parseDecimalInput,
} from "./format.js";
import { type AnalysisReason, alertRuleText, alertText, analysisReasonText, errorText, messageText, reasonText } from "./i18n.js";
import { type Account, PortfolioState, type PositionRow } from "./portfolio-state.js";
import { ConfirmPolicy, type KeyValueStore, isFarFromMarket, keyAction, previewOrder } from "./order-ticket.js";
import { Watchlist } from "./watchlist.js";

interface InstrumentInfo {
  symbol: string;
  name: string;
  isin: string;
  last_price: number | null;
}

interface DeskConfig {
  ws_path: string;
  history_url: string;
  fills_url: string;
  account_url: string;
  order_url: string;
  health_url: string;
  bars_url: string;
  event_types: string[];
  instruments: InstrumentInfo[];
  portfolio: PortfolioUpdateData | null;
  account: Account | null;
  strings: Record<string, string>;
}

type HistoryOrder = BlotterOrder;

interface AlertRule {
  alert_id?: string | number;
  id?: string | number;
  symbol: string;
  condition: string;
  threshold: number | string;
  reference_price?: number | string | null;
}

/** A browser storage, or a stand-in that forgets when the browser refuses storage. */
function storage(kind: "localStorage" | "sessionStorage"): KeyValueStore {
  try {
    const store = window[kind];
    store.getItem("probe");
    return store;
  } catch {
    const memory = new Map<string, string>();
    return { getItem: (key) => memory.get(key) ?? null, setItem: (key, value) => void memory.set(key, value) };
  }
}

const FINAL_STATUSES = new Set(["filled", "cancelled", "rejected", "failed"]);
const PAGE_SIZE = 25; // the REST lists' page size (REST_FRAMEWORK PAGE_SIZE)
const PROBE_INTERVAL_MS = 1000;

function byId<T extends HTMLElement = HTMLElement>(id: string): T | null {
  return document.getElementById(id) as T | null;
}

function toNumber(value: unknown): number | null {
  if (value === null || value === undefined || value === "") {
    return null;
  }
  const number = typeof value === "number" ? value : Number(value);
  return Number.isFinite(number) ? number : null;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
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
function emptyRow(columns: number, text: string): HTMLTableRowElement {
  const row = element("tr", { class: "empty" });
  row.append(element("td", { colspan: String(columns) }, text));
  return row;
}

export class PortfolioWebSocketClient {
  private readonly wsClient: WebSocketEventClient;
  private readonly config: DeskConfig;
  private readonly t: Record<string, string>;
  private readonly chart: PriceChart | null;
  private readonly watchlist: Watchlist;
  /** The symbols price events are narrowed to now (sorted, joined), "" for all of them. */
  private priceSubscription: string | null = null;
  private selectedSymbol: string | null = null;
  private established = false;
  private historyPage = 1;
  private executionsPage = 1;
  private pendingAnalyses = new Set<string>();
  /** The order the ticket last sent, followed through its events until it is final. */
  private ticketOrder: { clientOrderId: string; orderId: string | null } | null = null;
  /** The order the confirmation step shows, sent when it is confirmed. */
  private previewed: PlaceOrderCommand | null = null;
  private readonly portfolio = new PortfolioState();
  private readonly lastPrices = new Map<string, number>();
  private readonly locale = pageLocale();
  private readonly confirmPolicy = new ConfirmPolicy(storage("localStorage"), storage("sessionStorage"));
  private readonly resync = new ResyncPolicy();
  private readonly probeGate = new ProbeGate();
  private readonly portfolioRefresh = new Coalescer(() => this.requestPortfolioUpdate());
  private readonly accountLoad = new Coalescer(() => this.loadAccount());
  /** The user's alert rules as last listed: they tell which way a price alert was crossed. */
  private alertRules: AlertRule[] = [];
  private readonly historyLoad = new Coalescer(() => this.refreshOrderHistory(this.historyPage));
  private readonly openOrdersLoad = new Coalescer(() => this.refreshOpenOrders());
  private readonly executionsLoad = new Coalescer(() => this.refreshExecutions(this.executionsPage));
  private openOrders: HistoryOrder[] = [];
  /** Whether the user has a portfolio (the page's snapshot, or a portfolio.update since). */
  private hasPortfolio = false;
  /** When the client will try to reconnect (ms since the epoch), while it waits. */
  private reconnectAt: number | null = null;
  private connectionTimer: ReturnType<typeof setInterval> | null = null;

  constructor(config: DeskConfig) {
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
  get client(): WebSocketEventClient {
    return this.wsClient;
  }

  async connect(): Promise<void> {
    await this.wsClient.connect();
  }

  start(): void {
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

  private setupEventHandlers(): void {
    const on = this.wsClient.on.bind(this.wsClient) as (event: string, handler: (message: any) => void) => void;
    on("portfolio.update", (message: WebSocketMessage<PortfolioUpdateData>) => this.updatePortfolioDisplay(message.data));
    // The desk works the value out itself on every tick (PortfolioState), from the same figures;
    // the server's value stands in only until the account has given the cash.
    on("portfolio.value_changed", (message: WebSocketMessage<PortfolioValueChangedData>) => {
      const value = byId("portfolio-value");
      if (value && this.portfolio.totals().cash === null) value.textContent = formatEuro(message.data.current_value);
    });
    // A fill or correction sends portfolio.update itself; cash and realised P&L come with the account.
    on("portfolio.position_changed", () => this.accountLoad.request());
    // A new resting buy reserves part of the buying power: the account is reloaded with the orders.
    on("trading.order_created", () => {
      this.reloadOrders();
      this.accountLoad.request();
    });
    on("trading.order_filled", (message: WebSocketMessage<OrderFilledData>) => {
      const data = message.data;
      const title = data.status === "partially_filled" ? this.t.order_partially_filled : this.t.order_filled;
      this.showNotification("success", title, this.fillDetail(data.symbol, data.filled_quantity, data.fill_price));
      this.showTicketState(String(data.order_id), data.status);
      this.reloadBlotter();
      this.accountLoad.request();
    });
    on("trading.order_cancelled", (message: WebSocketMessage<OrderCancelledData>) => {
      const data = message.data;
      this.showTicketState(String(data.order_id), "cancelled");
      void this.notifyWithReason("info", this.t.order_cancelled, data.symbol, String(data.order_id));
      this.reloadOrders();
      this.accountLoad.request();
    });
    on("trading.order_failed", (message: WebSocketMessage<OrderFailedData>) => {
      const data = message.data;
      this.showTicketState(String(data.order_id), "failed");
      void this.notifyWithReason("error", this.t.order_failed, data.symbol, String(data.order_id), data.error_code);
      this.reloadOrders();
      this.accountLoad.request();
    });
    on("market.price_update", (message: WebSocketMessage<PriceUpdateData>) => this.updatePriceDisplay(message.data));
    on("market.alert", (message: WebSocketMessage<MarketAlertData>) => this.showAlert(message.data));
    on("analysis.complete", (message: WebSocketMessage<AnalysisCompleteData>) => this.showAnalysis(message.data));
    // An operator's announcement reaches every desk, subscribed or not (docs/operations.md).
    on("announcement", (message: WebSocketMessage<{ message: string; level: string }>) => {
      const kind = message.data.level === "critical" ? "error" : message.data.level === "warning" ? "warning" : "info";
      this.showNotification(kind, this.t.announcement, message.data.message);
    });
    on("connection.established", () => {
      this.resync.established();
      this.reloadAll();
      this.established = true;
      void this.loadAlerts();
    });
    on("subscription.recovery_failed", ({ reason }: { reason: string }) => {
      // Events were lost: reload the state, unless the reload of this connection covers it.
      if (this.resync.needsReload(reason)) this.reloadAll();
    });
    on("connection.status", ({ status }: { status: string }) => this.showConnection(status));
    on("connection.reconnecting", ({ delay }: { delay: number }) => {
      this.reconnectAt = Date.now() + delay;
      this.showConnection(this.wsClient.getConnectionStatus());
    });
    on("connection.closed", () => this.resync.lost());
  }

  /** Reload everything a lost event may have left stale: one of each, however many ask. */
  private reloadAll(): void {
    // The chart loads its bars when the page starts; after that, a lost tick needs them again.
    if (this.established) void this.chart?.reload();
    this.portfolioRefresh.request();
    this.accountLoad.request();
    this.reloadBlotter();
  }

  private reloadOrders(): void {
    this.openOrdersLoad.request();
    this.historyLoad.request();
  }

  private reloadBlotter(): void {
    this.reloadOrders();
    this.executionsLoad.request();
  }

  // User actions

  /**
   * Place an order under a client_order_id (a new one unless given), so a re-send after a lost
   * answer places it once; refused at once while disconnected.
   */
  placeOrder(order: PlaceOrderCommand): Promise<PlaceOrderResult> {
    const data = { ...order, client_order_id: order.client_order_id ?? newRequestId() };
    return this.wsClient.sendUserCommand<PlaceOrderResult>("place_order", data, { idempotent: true });
  }

  /** Cancel an order under a new request id (re-sent unchanged after a lost answer). */
  cancelOrder(orderId: string): Promise<PlaceOrderResult> {
    const data: CancelOrderCommand = { order_id: orderId, request_id: newRequestId() };
    return this.wsClient.sendUserCommand<PlaceOrderResult>("cancel_order", { ...data }, { idempotent: true });
  }

  /** Modify an order under a new request id (re-sent unchanged after a lost answer). */
  modifyOrder(change: ModifyOrderCommand): Promise<PlaceOrderResult> {
    const data: ModifyOrderCommand = { ...change, request_id: change.request_id ?? newRequestId() };
    return this.wsClient.sendUserCommand<PlaceOrderResult>("modify_order", { ...data }, { idempotent: true });
  }

  /** Return the text for a failed order command: the server's reason, or what the failure means for the order. */
  private commandFailure(error: unknown): string {
    const code = error instanceof CommandError ? error.code : "";
    if (code === LocalErrorCode.NOT_CONNECTED) return this.t.not_sent_no_connection;
    if (code === LocalErrorCode.OUTCOME_UNKNOWN || code === LocalErrorCode.CLIENT_CLOSED) {
      this.reloadOrders();
      return this.t.outcome_unknown;
    }
    if (code === LocalErrorCode.TIMEOUT || code === LocalErrorCode.CONNECTION_LOST) return this.t.no_answer;
    return this.errorMessage(error);
  }

  /** Word a refusal in the page's language from its code and details. */
  private errorMessage(error: unknown): string {
    if (error instanceof CommandError) return errorText(this.t, error.code, error.details, this.locale);
    return this.t.error_unknown ? fill(this.t.error_unknown, { code: "?" }) : String(error);
  }

  /** Ask the server for the portfolio (it answers with portfolio.update); settle when it answered. */
  async requestPortfolioUpdate(): Promise<void> {
    try {
      await this.wsClient.sendUserCommand("refresh_portfolio", {});
    } catch (error) {
      const code = (error as CommandError).code;
      if (code === "no_portfolio" || code === "not_found") {
        const value = byId("portfolio-value");
        if (value) value.textContent = this.t.no_portfolio;
      }
    }
  }

  private async loadAccount(): Promise<void> {
    // Without a portfolio there is no account to read (the page says so already).
    if (!this.hasPortfolio) return;
    const account = await this.getJson<Account>(this.config.account_url);
    if (account === null) return;
    this.portfolio.applyAccount(account);
    this.renderPortfolio();
  }

  /** GET a JSON document of the REST API; null when it fails (the caller keeps what it shows). */
  private async getJson<T>(url: string): Promise<T | null> {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return null;
      return (await response.json()) as T;
    } catch {
      return null;
    }
  }

  // Portfolio

  private updatePortfolioDisplay(data: PortfolioUpdateData): void {
    if (!this.hasPortfolio) {
      this.hasPortfolio = true;
      this.accountLoad.request();
    }
    this.portfolio.applySnapshot(data);
    this.renderPortfolio();
    // A new position needs its ticks for its revaluation, watchlist or not.
    if (this.watchlist.only) this.subscribePrices();
  }

  /** Show the portfolio's figures and positions as they are now (after a snapshot, the account or a tick). */
  private renderPortfolio(): void {
    const totals = this.portfolio.totals();
    const value = byId("portfolio-value");
    if (value && totals.totalValue !== null) value.textContent = formatEuro(totals.totalValue);
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

  private setFigure(id: string, amount: number | null, signed = false): void {
    const target = byId(id);
    if (!target) return;
    target.textContent = amount === null ? "–" : signed ? formatSigned(amount, formatEuro(amount)) : formatEuro(amount);
    if (signed && amount !== null) target.className = `value ${this.signClass(amount)}`;
  }

  private signClass(amount: number): string {
    return Math.abs(amount) < 0.005 ? "" : amount > 0 ? "positive" : "negative";
  }

  private animateValueChange(elementId: string, change: number, changePercent: number): void {
    const target = byId(elementId);
    if (!target) return;
    target.textContent = `${formatSigned(change, formatEuro(change))} (${formatPercent(changePercent)})`;
    target.className = `change ${this.signClass(change) || "flat"}`;
  }

  /**
   * Draw the positions. A tick only rewrites the cells of the rows already there, so the symbol
   * button a trader is about to click, or has focused with the keyboard, stays the same element;
   * rows are replaced only when the held instruments change.
   */
  private renderPositions(): void {
    const body = document.querySelector("#positions tbody");
    if (!body) return;
    const rows = this.portfolio.rows();
    if (rows.length === 0) {
      body.replaceChildren(emptyRow(8, this.t.no_positions));
      return;
    }
    const drawn = new Map(
      Array.from(body.querySelectorAll<HTMLTableRowElement>("tr[data-position]")).map((row) => [row.dataset.position ?? "", row]),
    );
    const ordered = rows.map((position) => {
      const row = drawn.get(position.symbol) ?? this.positionRow(position.symbol);
      this.fillPositionRow(row, position);
      return row;
    });
    const unchanged = ordered.length === body.children.length && ordered.every((row, index) => body.children[index] === row);
    if (!unchanged) body.replaceChildren(...ordered);
  }

  /** An empty row of a held instrument: its symbol button and the cells `fillPositionRow` writes. */
  private positionRow(symbol: string): HTMLTableRowElement {
    const row = element("tr", { "data-position": symbol, "data-symbol-row": symbol }) as HTMLTableRowElement;
    row.append(
      this.symbolCell("th", symbol, { scope: "row" }),
      ...["quantity", "avg-cost", "price", "market-value", "pnl", "pnl-percent", "day-change"].map((name) =>
        element("td", { class: `num ${name}`, "data-cell": name }),
      ),
    );
    return row;
  }

  private fillPositionRow(row: HTMLTableRowElement, position: PositionRow): void {
    const pnlSign = this.signClass(position.unrealized);
    const daySign = position.dayChange === null ? "" : this.signClass(position.dayChange);
    const cells: Record<string, [string, string]> = {
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
    for (const cell of Array.from(row.querySelectorAll<HTMLTableCellElement>("td[data-cell]"))) {
      const [text, className] = cells[cell.dataset.cell ?? ""] ?? ["", cell.className];
      if (cell.textContent !== text) cell.textContent = text;
      if (cell.className !== className) cell.className = className;
    }
  }

  // Prices and chart

  private updatePriceDisplay(data: PriceUpdateData): void {
    this.lastPrices.set(data.symbol, data.price);
    if (this.portfolio.applyTick(data.symbol, data.price, data.timestamp)) this.renderPortfolio();
    this.setPrice(data.symbol, data.price, data.change, data.change_percent);
    const priceElement = document.querySelector(`[data-symbol="${CSS.escape(data.symbol)}"] .price`);
    if (priceElement) {
      const changeClass = data.change >= 0 ? "price-up" : "price-down";
      priceElement.classList.remove("price-up", "price-down");
      void (priceElement as HTMLElement).offsetWidth; // restart the flash animation
      priceElement.classList.add(changeClass);
      setTimeout(() => priceElement.classList.remove(changeClass), 1000);
    }
    this.chart?.tick(data.symbol, Date.parse(data.timestamp) / 1000, data.price, data.volume);
  }

  private setPrice(symbol: string, price: number, change: number | null, changePercent: number | null): void {
    const row = document.querySelector(`tr[data-symbol="${CSS.escape(symbol)}"]`);
    if (!row) return;
    const priceCell = row.querySelector(".price");
    if (priceCell) priceCell.textContent = formatEuro(price);
    const changeCell = row.querySelector(".change");
    if (changeCell && change !== null && changePercent !== null) {
      changeCell.textContent = formatPercent(changePercent);
      changeCell.className = `change num ${change >= 0 ? "positive" : "negative"}`;
    }
  }

  /** Show a symbol everywhere: the board, the chart, the ticket, the alert and analysis forms. */
  selectSymbol(symbol: string | null): void {
    if (symbol !== null && !this.config.instruments.some((instrument) => instrument.symbol === symbol)) return;
    const changed = symbol !== this.selectedSymbol;
    this.selectedSymbol = symbol;
    document.querySelectorAll<HTMLButtonElement>("#price-board .select-symbol").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.symbol === symbol));
    });
    document.querySelectorAll<HTMLElement>("#price-board tr[data-symbol], tr[data-symbol-row]").forEach((row) => {
      row.classList.toggle("selected", (row.dataset.symbolRow ?? row.dataset.symbol) === symbol);
    });
    for (const id of ["order-symbol", "alert-symbol", "analysis-symbol"]) {
      const select = byId<HTMLSelectElement>(id);
      if (select && symbol !== null && select.value !== symbol) select.value = symbol;
    }
    const label = byId("chart-symbol");
    if (label) label.textContent = symbol ?? "";
    if (changed) {
      void this.chart?.show(symbol);
      if (this.watchlist.only) this.applyWatchlist();
    }
  }

  /**
   * Narrow the price events to the watchlist, the chart's symbol and the held positions (revalued
   * on every tick), or widen them to all; subscribe only when that set changes.
   */
  private subscribePrices(): void {
    const held = this.portfolio.rows().map((position) => position.symbol);
    const symbols = this.watchlist.subscriptionSymbols(this.selectedSymbol, held);
    const key = symbols ? symbols.join(",") : "";
    if (key === this.priceSubscription) return;
    this.priceSubscription = key;
    if (symbols) this.wsClient.subscribe(["market.price_update"], { symbols });
    else this.wsClient.subscribe(["market.price_update"]);
  }

  /** Show the board's watchlist marks and rows, and narrow or widen the price events to match. */
  private applyWatchlist(): void {
    this.subscribePrices();
    const only = byId<HTMLInputElement>("watchlist-only");
    if (only) only.checked = this.watchlist.only;
    document.querySelectorAll<HTMLTableRowElement>("#price-board tbody tr[data-symbol]").forEach((row) => {
      const symbol = row.dataset.symbol ?? "";
      const watched = this.watchlist.has(symbol);
      row.hidden = this.watchlist.only && this.watchlist.size > 0 && !watched;
      const toggle = row.querySelector<HTMLButtonElement>("button.watch");
      if (toggle) {
        toggle.setAttribute("aria-pressed", String(watched));
        toggle.textContent = watched ? "★" : "☆";
      }
    });
  }

  private setRange(range: string): void {
    document.querySelectorAll<HTMLButtonElement>("#chart-ranges button[data-range]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    });
    void this.chart?.show(this.selectedSymbol, range);
  }

  // Notifications

  private showNotification(kind: "success" | "info" | "warning" | "error", title: string, detail: string): void {
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

  private fillDetail(symbol: string, quantity: number, price: number): string {
    return fill(this.t.fill_detail, { symbol, quantity: formatNumber(quantity), price: formatEuro(price) });
  }

  /**
   * Notify about a cancelled or failed order with its reason in the page's language: the
   * order's reason code and figures from the REST detail, else the event's code alone.
   */
  private async notifyWithReason(
    kind: "info" | "error",
    title: string,
    symbol: string,
    orderId: string,
    code = "",
  ): Promise<void> {
    const order = await this.getJson<HistoryOrder>(`${this.config.order_url}${encodeURIComponent(orderId)}`);
    const reason = order ? orderReason(this.t, order, this.locale) : reasonText(this.t, code, { symbol }, this.locale);
    this.showNotification(kind, title, reason ? `${symbol} – ${reason}` : symbol);
  }

  // Connection

  /** Controls that need the server: off while disconnected, with the reason as their title. */
  private static readonly SERVER_CONTROLS = [
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

  /** Enable the controls that need the server only while connected; otherwise say why they are off. */
  private setTradingEnabled(connected: boolean): void {
    const reason = connected ? "" : this.t.no_connection;
    document.querySelectorAll<HTMLButtonElement>(PortfolioWebSocketClient.SERVER_CONTROLS).forEach((button) => {
      if (button.dataset.busy === "true") return;
      if (button.id === "cancel-all" && connected) {
        button.disabled = cancelAllTargets(this.openOrders).length === 0;
        button.removeAttribute("title");
        return;
      }
      button.disabled = !connected;
      if (connected) button.removeAttribute("title");
      else button.title = reason;
    });
    const note = byId("ticket-connection");
    if (note) {
      note.textContent = reason;
      note.hidden = connected;
    }
  }

  private isConnected(): boolean {
    return this.wsClient.getConnectionStatus() === "connected";
  }

  private showConnectionStatus(message: string, type: string): void {
    const statusElement = byId("connection-status");
    if (statusElement) {
      statusElement.textContent = message;
      statusElement.className = `status ${type}`;
    }
  }

  /** Show the connection's state: the status, stale figures greyed, the countdown to the next attempt. */
  private showConnection(status: string): void {
    const connected = status === "connected";
    if (connected) {
      this.reconnectAt = null;
      this.showConnectionStatus(this.t.connected, "success");
    } else {
      this.showConnectionStatus(this.t.disconnected, "warning");
    }
    const desk = byId("desk");
    if (desk) desk.dataset.connection = connected ? "connected" : "stale";
    const stale = byId("stale-note");
    if (stale) stale.hidden = connected;
    this.setTradingEnabled(connected);
    this.showReconnectInfo(status);
    if (connected || status === "disconnected") {
      if (this.connectionTimer !== null) clearInterval(this.connectionTimer);
      this.connectionTimer = null;
    } else if (this.connectionTimer === null) {
      this.connectionTimer = setInterval(() => this.connectionTick(), PROBE_INTERVAL_MS);
    }
  }

  private showReconnectInfo(status: string): void {
    const info = byId("reconnect-info");
    const countdown = byId("reconnect-countdown");
    const wanted = status !== "connected" && status !== "disconnected";
    if (info) info.hidden = !wanted;
    if (!countdown || !wanted) return;
    if (status === "offline") countdown.textContent = this.t.offline;
    else if (status === "connecting" || this.reconnectAt === null) countdown.textContent = this.t.connecting;
    else countdown.textContent = fill(this.t.reconnecting_in, { seconds: secondsLeft(this.reconnectAt, Date.now()) });
  }

  /** Each second while disconnected: the countdown, and a probe of the server while the page is seen. */
  private connectionTick(): void {
    const status = this.wsClient.getConnectionStatus();
    this.showReconnectInfo(status);
    if (status === "reconnecting" && document.visibilityState === "visible") void this.probeServer();
  }

  /**
   * Ask `/healthz` whether the server answers again; if it does, reconnect now instead of
   * waiting out the backoff (at most every 2 s, see ProbeGate).
   */
  private async probeServer(): Promise<void> {
    try {
      const response = await fetch(this.config.health_url, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) return;
    } catch {
      return;
    }
    const waiting = this.wsClient.getConnectionStatus() === "reconnecting";
    if (this.probeGate.mayReconnect(Date.now(), document.visibilityState === "visible", waiting)) {
      this.wsClient.reconnectNow();
    }
  }

  private bindConnectionControls(): void {
    byId("connect-now")?.addEventListener("click", () => this.wsClient.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.wsClient.getConnectionStatus() === "reconnecting") {
        void this.probeServer();
      }
    });
  }

  // Order ticket

  private bindForms(): void {
    const orderForm = byId<HTMLFormElement>("order-form");
    const orderType = byId<HTMLSelectElement>("order-type");
    orderType?.addEventListener("change", () => this.showPriceField());
    this.showPriceField();
    orderForm?.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submitOrder(orderForm);
    });
    byId("order-confirm")?.addEventListener("click", () => void this.confirmPreview());
    byId("order-preview-cancel")?.addEventListener("click", () => this.closePreview(true));
    const confirmSetting = byId<HTMLInputElement>("confirm-setting");
    if (confirmSetting) {
      confirmSetting.checked = this.confirmPolicy.enabled;
      confirmSetting.addEventListener("change", () => (this.confirmPolicy.enabled = confirmSetting.checked));
    }
    byId<HTMLFormElement>("logout-form")?.addEventListener("submit", () => this.wsClient.disconnect());
    // A symbol chosen anywhere (board, positions, blotter) is chosen everywhere.
    document.addEventListener("click", (event) => {
      const button = (event.target as Element | null)?.closest?.<HTMLElement>(".select-symbol");
      if (button?.dataset.symbol) this.selectSymbol(button.dataset.symbol);
    });
    for (const id of ["order-symbol", "alert-symbol", "analysis-symbol"]) {
      byId<HTMLSelectElement>(id)?.addEventListener("change", (event) =>
        this.selectSymbol((event.target as HTMLSelectElement).value),
      );
    }
    document.querySelectorAll<HTMLButtonElement>("#chart-ranges button[data-range]").forEach((button) => {
      button.addEventListener("click", () => this.setRange(button.dataset.range ?? ""));
    });
    document.querySelectorAll<HTMLButtonElement>("#price-board button.watch").forEach((button) => {
      button.addEventListener("click", () => {
        this.watchlist.toggle(button.dataset.symbol ?? "");
        this.applyWatchlist();
      });
    });
    byId<HTMLInputElement>("watchlist-only")?.addEventListener("change", (event) => {
      this.watchlist.only = (event.target as HTMLInputElement).checked;
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
    const modifyForm = byId<HTMLFormElement>("modify-form");
    modifyForm?.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submitModify(modifyForm);
    });
    byId("modify-cancel")?.addEventListener("click", () => {
      if (modifyForm) modifyForm.hidden = true;
    });
    const alertForm = byId<HTMLFormElement>("alert-form");
    alertForm?.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submitAlert(alertForm);
    });
    const analysisForm = byId<HTMLFormElement>("analysis-form");
    analysisForm?.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submitAnalysis(analysisForm);
    });
  }

  /** B/S start a buy or sell, Enter confirms, Escape cancels; Enter in a ticket field sends nothing. */
  private bindKeys(): void {
    document.addEventListener("keydown", (event) => {
      const target = event.target as HTMLElement | null;
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
      if (action === null) return;
      event.preventDefault();
      if (action === "start-buy" || action === "start-sell") this.startTicket(action === "start-buy" ? "buy" : "sell");
      else if (action === "confirm") void this.confirmPreview();
      else if (action === "cancel") {
        if (confirming) this.closePreview(true);
        else if (modify) modify.hidden = true;
      }
    });
  }

  private startTicket(side: "buy" | "sell"): void {
    const select = byId<HTMLSelectElement>("order-side");
    if (select) select.value = side;
    const symbol = byId<HTMLSelectElement>("order-symbol");
    if (symbol && this.selectedSymbol) symbol.value = this.selectedSymbol;
    byId<HTMLInputElement>("order-quantity")?.focus();
  }

  private showPriceField(): void {
    const type = byId<HTMLSelectElement>("order-type")?.value ?? "market";
    const field = byId("price-field");
    const label = byId("order-price-label");
    if (field) field.hidden = type === "market";
    if (label) label.textContent = type === "stop" ? this.t.stop_price : this.t.limit_price;
  }

  private clearErrors(form: HTMLFormElement): void {
    form.querySelectorAll(".field-error, .form-error, .form-result, .form-warning").forEach((node) => (node.textContent = ""));
    form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
  }

  private fieldError(field: string, message: string): void {
    const target = byId(`${field}-error`);
    const input = document.querySelector(`#order-form [name="${field}"]`);
    if (target) {
      target.textContent = message;
      input?.setAttribute("aria-invalid", "true");
      (input as HTMLElement | null)?.focus();
    } else {
      const general = byId("order-form-error");
      if (general) general.textContent = message;
    }
  }

  private readDecimal(form: HTMLFormElement, name: string, reportTo: (message: string) => void): number | null {
    const input = form.elements.namedItem(name) as HTMLInputElement | null;
    const parsed = parseDecimalInput(input?.value ?? "", this.locale);
    if (!parsed.ok) {
      reportTo(this.t[parsed.reason]);
      return null;
    }
    return parsed.value;
  }

  /** Read the ticket; while connected show the preview (unless confirmation is off), else refuse at once. */
  private async submitOrder(form: HTMLFormElement): Promise<void> {
    this.clearErrors(form);
    this.closePreview(false);
    const values = new FormData(form);
    const orderType = String(values.get("order_type")) as PlaceOrderCommand["order_type"];
    const quantity = this.readDecimal(form, "quantity", (message) => this.fieldError("quantity", message));
    if (quantity === null) return;
    const order: PlaceOrderCommand = {
      symbol: String(values.get("symbol") ?? ""),
      side: String(values.get("side")) as PlaceOrderCommand["side"],
      quantity,
      order_type: orderType,
    };
    if (orderType !== "market") {
      const price = this.readDecimal(form, "price", (message) => this.fieldError("price", message));
      if (price === null) return;
      if (orderType === "stop") order.stop_price = price;
      else order.price = price;
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

  private orderWarnings(order: PlaceOrderCommand): string[] {
    const warnings: string[] = [];
    const last = this.lastPrices.get(order.symbol);
    const price = order.price ?? order.stop_price;
    if (price !== undefined && price !== null && last !== undefined && isFarFromMarket(price, last)) {
      warnings.push(fill(this.t.warning_far_price, { price: formatEuro(price), last: formatEuro(last) }));
    }
    const preview = this.preview(order);
    if (preview.exceeds) warnings.push(order.side === "buy" ? this.t.warning_buying_power : this.t.warning_position);
    return warnings;
  }

  private preview(order: PlaceOrderCommand) {
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

  private showPreview(order: PlaceOrderCommand, warnings: string[]): void {
    const panel = byId("order-preview");
    if (!panel) return;
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
    const amount = (value: number | null) => (value === null ? "–" : formatEuro(value));
    const totalLabel = byId("preview-total-label");
    if (totalLabel) totalLabel.textContent = order.side === "buy" ? this.t.estimated_cost : this.t.estimated_proceeds;
    const set = (id: string, text: string) => {
      const node = byId(id);
      if (node) node.textContent = text;
    };
    set("preview-total", amount(preview.total));
    set("preview-fees", amount(preview.fees));
    set("preview-cash-after", amount(preview.cashAfter));
    const list = byId("order-preview-warnings");
    if (list) list.replaceChildren(...warnings.map((warning) => element("li", {}, warning)));
    const skip = byId<HTMLInputElement>("confirm-skip-session");
    if (skip) skip.checked = false;
    panel.hidden = false;
    this.setTradingEnabled(this.isConnected());
    byId<HTMLButtonElement>("order-confirm")?.focus();
  }

  private closePreview(refocus: boolean): void {
    const panel = byId("order-preview");
    if (panel && !panel.hidden) {
      panel.hidden = true;
      if (refocus) byId<HTMLInputElement>("order-quantity")?.focus();
    }
    this.previewed = null;
  }

  private async confirmPreview(): Promise<void> {
    const order = this.previewed;
    if (!order) return;
    if (byId<HTMLInputElement>("confirm-skip-session")?.checked) this.confirmPolicy.skipForSession();
    this.closePreview(false);
    await this.sendOrder(order);
  }

  private async sendOrder(order: PlaceOrderCommand): Promise<void> {
    const form = byId<HTMLFormElement>("order-form");
    const button = form?.querySelector<HTMLButtonElement>('button[type="submit"]') ?? null;
    order = { ...order, client_order_id: newRequestId() };
    this.ticketOrder = { clientOrderId: order.client_order_id!, orderId: null };
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
      if (this.ticketOrder?.clientOrderId === order.client_order_id) this.ticketOrder.orderId = String(result.order_id);
      if (output) {
        const message =
          messageText(this.t, result.message_code, result.message_params, this.locale) ??
          fill(this.t.order_state, { order_id: result.order_id, status: this.t[`status_${result.status}`] ?? result.status });
        output.textContent = fill(this.t.order_accepted, { order_id: result.order_id, message });
        // The answer carries the state as of its commit; events after it move it on.
        output.dataset.state = FINAL_STATUSES.has(result.status) ? result.status : "confirmed";
        output.dataset.orderId = String(result.order_id);
        output.dataset.orderStatus = result.status;
      }
      const quantity = form?.elements.namedItem("quantity") as HTMLInputElement | null;
      if (quantity) quantity.value = "";
      this.reloadOrders();
    } catch (error) {
      if (output) {
        output.textContent = "";
        output.dataset.state = "failed";
      }
      const failure = error as CommandError;
      const field = typeof failure.details?.field === "string" ? failure.details.field : null;
      const mapped = field === "stop_price" ? "price" : field;
      if (mapped && byId(`${mapped}-error`)) this.fieldError(mapped, this.errorMessage(failure));
      else this.fieldError("", this.commandFailure(failure));
    } finally {
      if (button) {
        delete button.dataset.busy;
        button.disabled = !this.isConnected();
      }
    }
  }

  /** Show a later state of the ticket's order (filled, cancelled, failed) from its events. */
  private showTicketState(orderId: string, status: string): void {
    const output = byId("order-result");
    if (!output || this.ticketOrder?.orderId !== orderId) return;
    output.textContent = fill(this.t.order_state, { order_id: orderId, status: this.t[`status_${status}`] ?? status });
    output.dataset.state = status;
    output.dataset.orderStatus = status;
  }

  // Blotter: open orders, executions, order history

  private filterValue(id: string): string {
    return byId<HTMLSelectElement>(id)?.value ?? "";
  }

  private async refreshOpenOrders(): Promise<void> {
    const table = byId("open-orders");
    if (!table) return;
    const data = await this.getJson<Page<HistoryOrder>>(
      `${this.config.history_url}?${openOrdersQuery(this.filterValue("blotter-symbol") || undefined)}`,
    );
    if (data === null) return;
    this.openOrders = data.results;
    const body = table.querySelector("tbody");
    if (!body) return;
    body.replaceChildren();
    if (data.results.length === 0) {
      body.append(emptyRow(10, this.t.no_open_orders));
    }
    for (const order of data.results) {
      const id = String(order.id);
      const price = restingPrice(order);
      const row = element("tr", { "data-order-id": id, "data-status": order.status ?? "", "data-symbol-row": order.symbol ?? "" });
      row.append(
        element("td", {}, id),
        element("td", {}, order.created_at ? formatTime(order.created_at) : ""),
        this.symbolCell("td", order.symbol ?? ""),
        element("td", {}, this.t[`side_${order.side}`] ?? order.side ?? ""),
        element("td", {}, this.t[`type_${order.order_type}`] ?? order.order_type ?? ""),
        element("td", { class: "num" }, formatNumber(toNumber(order.quantity) ?? 0)),
        element("td", { class: `num filled${isPartlyFilled(order) ? " partial" : ""}` }, formatNumber(toNumber(order.filled_quantity) ?? 0)),
        element("td", { class: "num remaining" }, formatNumber(remainingOf(order))),
        element("td", { class: "num" }, price === null ? "–" : formatEuro(price)),
        this.orderActions(id, order),
      );
      body.append(row);
    }
    this.setTradingEnabled(this.isConnected());
  }

  private orderActions(id: string, order: HistoryOrder): HTMLElement {
    const actions = element("td", { class: "actions" });
    if (!isOpen(order.status)) return actions;
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

  private async refreshExecutions(page = this.executionsPage): Promise<void> {
    const table = byId("executions");
    if (!table) return;
    page = Math.max(1, page);
    const query = listQuery({ page, symbol: this.filterValue("blotter-symbol") || undefined });
    const data = await this.getJson<Page<Execution>>(`${this.config.fills_url}?${query}`);
    if (data === null) {
      if (page > 1) await this.refreshExecutions(page - 1);
      return;
    }
    this.executionsPage = page;
    const body = table.querySelector("tbody");
    if (!body) return;
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
      row.append(
        element("td", {}, formatTime(execution.executed_at)),
        element("td", {}, String(execution.order_id)),
        this.symbolCell("td", execution.symbol),
        element("td", {}, this.t[`side_${execution.side}`] ?? execution.side),
        element("td", { class: "num" }, formatNumber(toNumber(execution.quantity) ?? 0)),
        element("td", { class: "num" }, this.euroOrDash(execution.price)),
        element("td", { class: "num" }, this.euroOrDash(execution.value)),
        element("td", { class: "num fees" }, this.euroOrDash(execution.fees)),
      );
      body.append(row);
    }
    this.showPager("executions", page, data);
  }

  private showPager(prefix: string, page: number, data: Page<unknown>): void {
    const label = byId(`${prefix}-page`);
    if (label) label.textContent = fill(this.t.page, { page, pages: pageCount(data.count, PAGE_SIZE) });
    const prev = byId<HTMLButtonElement>(`${prefix}-prev`);
    const next = byId<HTMLButtonElement>(`${prefix}-next`);
    if (prev) prev.disabled = !data.previous;
    if (next) next.disabled = !data.next;
  }

  private async refreshOrderHistory(page = this.historyPage): Promise<void> {
    const table = byId("order-history");
    const error = byId("order-history-error");
    if (!table) return;
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
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = (await response.json()) as Page<HistoryOrder>;
      this.historyPage = page;
      this.renderHistory(data);
      if (error) error.textContent = "";
    } catch {
      if (error) error.textContent = this.t.history_failed;
    } finally {
      table.setAttribute("aria-busy", "false");
    }
  }

  private renderHistory(data: Page<HistoryOrder>): void {
    const body = document.querySelector("#order-history tbody");
    if (!body) return;
    body.replaceChildren();
    if (data.results.length === 0) {
      body.append(emptyRow(10, this.t.history_empty));
    }
    for (const order of data.results) {
      const id = String(order.id);
      const status = order.status ?? "";
      const price = toNumber(order.average_fill_price) ?? restingPrice(order);
      const row = element("tr", { "data-order-id": id, "data-status": status, "data-symbol-row": order.symbol ?? "" });
      row.append(
        element("td", {}, id),
        element("td", {}, order.created_at ? formatTime(order.created_at) : ""),
        this.symbolCell("td", order.symbol ?? ""),
        element("td", {}, this.t[`side_${order.side}`] ?? order.side ?? ""),
        element("td", {}, this.t[`type_${order.order_type}`] ?? order.order_type ?? ""),
        element("td", { class: "num" }, formatNumber(toNumber(order.quantity) ?? 0)),
        element("td", { class: "num" }, price === null ? "–" : formatEuro(price)),
        element("td", { class: `order-status ${status}` }, this.t[`status_${status}`] ?? status),
        element("td", { class: "reason" }, orderReason(this.t, order, this.locale)),
        this.orderActions(id, order),
      );
      body.append(row);
    }
    this.showPager("history", this.historyPage, data);
  }

  private async cancelFromHistory(orderId: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    button.dataset.busy = "true";
    try {
      await this.cancelOrder(orderId);
      this.reloadOrders();
    } catch (error) {
      this.showNotification("error", this.t.order_failed, this.commandFailure(error));
    } finally {
      delete button.dataset.busy;
      button.disabled = !this.isConnected();
    }
  }

  /** Cancel every open order the list shows, each under its own request id; report what failed. */
  private async cancelAll(): Promise<void> {
    const targets = cancelAllTargets(this.openOrders);
    if (targets.length === 0) return;
    if (!window.confirm(fill(this.t.cancel_all_confirm, { count: targets.length }))) return;
    const button = byId<HTMLButtonElement>("cancel-all");
    if (button) {
      button.disabled = true;
      button.dataset.busy = "true";
    }
    const outcomes = await Promise.allSettled(targets.map((id) => this.cancelOrder(id)));
    const failed = outcomes.filter((outcome) => outcome.status === "rejected") as PromiseRejectedResult[];
    if (failed.length > 0) {
      this.showNotification("error", fill(this.t.cancel_all_failed, { count: failed.length }), this.commandFailure(failed[0].reason));
    }
    if (button) delete button.dataset.busy;
    this.reloadOrders();
  }

  private openModify(orderId: string, order: HistoryOrder): void {
    const form = byId<HTMLFormElement>("modify-form");
    if (!form) return;
    form.hidden = false;
    this.clearErrors(form);
    (form.elements.namedItem("order_id") as HTMLInputElement).value = orderId;
    (form.elements.namedItem("quantity") as HTMLInputElement).value = formatDecimalInput(order.quantity, this.locale);
    (form.elements.namedItem("price") as HTMLInputElement).value = formatDecimalInput(restingPrice(order), this.locale);
    const label = byId("modify-order-id");
    if (label) label.textContent = orderId;
    (form.elements.namedItem("quantity") as HTMLInputElement).focus();
  }

  private async submitModify(form: HTMLFormElement): Promise<void> {
    this.clearErrors(form);
    const error = byId("modify-error");
    const report = (message: string) => {
      if (error) error.textContent = message;
    };
    const data: ModifyOrderCommand = { order_id: (form.elements.namedItem("order_id") as HTMLInputElement).value };
    for (const name of ["quantity", "price"] as const) {
      const raw = (form.elements.namedItem(name) as HTMLInputElement).value;
      if (raw.trim() === "") continue;
      const value = this.readDecimal(form, name, report);
      if (value === null) return;
      data[name] = value;
    }
    try {
      await this.modifyOrder(data);
      form.hidden = true;
      this.showNotification("info", fill(this.t.order_modified, { order_id: String(data.order_id) }), "");
      this.reloadOrders();
      // A changed quantity or price changes what the order reserves of the buying power.
      this.accountLoad.request();
    } catch (failure) {
      report(this.commandFailure(failure));
    }
  }

  // Alerts

  private async loadAlerts(): Promise<void> {
    try {
      const result = await this.wsClient.sendUserCommand<{ alerts?: AlertRule[] } | AlertRule[]>("list_alerts", {});
      this.renderAlertRules(Array.isArray(result) ? result : result.alerts ?? []);
    } catch {
      // Alerts are optional on a gateway without market data; the panel stays empty.
    }
  }

  private renderAlertRules(rules: AlertRule[]): void {
    this.alertRules = rules;
    const list = byId("alert-rules");
    if (!list) return;
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
        } catch (error) {
          this.showNotification("error", this.t.alert, this.commandFailure(error));
        }
      });
      item.append(remove);
      list.append(item);
    }
  }

  private async submitAlert(form: HTMLFormElement): Promise<void> {
    this.clearErrors(form);
    const error = byId("alert-error");
    const report = (message: string) => {
      if (error) error.textContent = message;
    };
    const threshold = this.readDecimal(form, "threshold", report);
    if (threshold === null) return;
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
      if (warning) warning.textContent = fill(this.t.warning_far_threshold, { threshold: formatEuro(threshold), last: formatEuro(last) });
      return;
    }
    delete form.dataset.warned;
    if (warning) warning.textContent = "";
    try {
      await this.wsClient.sendUserCommand("subscribe_alerts", { symbol, condition, threshold });
      this.showNotification("info", fill(this.t.alert_created, { symbol }), "");
      (form.elements.namedItem("threshold") as HTMLInputElement).value = "";
      void this.loadAlerts();
    } catch (failure) {
      report(this.commandFailure(failure));
    }
  }

  /** The condition of the one price rule (above/below) of this symbol and threshold, if the page knows exactly one. */
  private priceRuleCondition(data: MarketAlertData): string | null {
    if (data.alert_type !== "price_threshold") return null;
    const conditions = new Set(
      this.alertRules
        .filter((rule) => rule.symbol === data.symbol && toNumber(rule.threshold) === toNumber(data.threshold))
        .map((rule) => rule.condition)
        .filter((condition) => condition === "above" || condition === "below"),
    );
    return conditions.size === 1 ? [...conditions][0] : null;
  }

  private showAlert(data: MarketAlertData): void {
    const kind = data.severity === "critical" ? "error" : data.severity === "warning" ? "warning" : "info";
    const message = alertText(this.t, { ...data, condition: this.priceRuleCondition(data) }, this.locale);
    this.showNotification(kind, `${this.t.alert}: ${data.symbol}`, message);
    const list = byId("alerts-incoming");
    if (list) {
      const item = element("li", { class: `alert ${data.severity}` }, `${formatTime(data.timestamp)} ${message}`);
      list.prepend(item);
      while (list.children.length > 20) list.lastElementChild?.remove();
    }
  }

  // Analysis

  private async submitAnalysis(form: HTMLFormElement): Promise<void> {
    this.clearErrors(form);
    const values = new FormData(form);
    const symbol = String(values.get("symbol"));
    const error = byId("analysis-error");
    const output = byId("analysis-result");
    try {
      const result = await this.wsClient.sendUserCommand<{ analysis_id: string }>("start_analysis", {
        symbol,
        analysis_type: String(values.get("analysis_type")),
        parameters: {},
      });
      this.pendingAnalyses.add(String(result.analysis_id));
      if (output) output.textContent = fill(this.t.analysis_running, { symbol });
    } catch (failure) {
      if (error) error.textContent = this.commandFailure(failure);
    }
  }

  private showAnalysis(data: AnalysisCompleteData): void {
    const output = byId("analysis-result");
    if (!output) return;
    if (this.pendingAnalyses.size > 0 && !this.pendingAnalyses.has(String(data.analysis_id))) return;
    this.pendingAnalyses.delete(String(data.analysis_id));
    output.replaceChildren();
    const recommendation = this.t[data.recommendation] ?? data.recommendation;
    const heading = element("p", { class: `recommendation ${data.recommendation}` });
    heading.append(
      element("strong", {}, `${data.symbol}: ${recommendation}`),
      document.createTextNode(
        ` · ${this.t[`analysis_${data.analysis_type}`] ?? data.analysis_type}` +
          ` · ${this.t.confidence} ${formatNumber(data.confidence_score * (data.confidence_score <= 1 ? 100 : 1), undefined, 1)} %`,
      ),
    );
    output.append(heading);
    const result = data.result;
    if (data.analysis_type === "fundamental") {
      output.append(...this.fundamentalExplained(result));
    } else if (data.analysis_type === "sentiment") {
      output.append(...this.sentimentExplained(result));
    } else {
      output.append(...this.technicalExplained(result));
    }
    output.append(...this.reasonsExplained(result.reasons));
    this.showNotification("info", fill(this.t.analysis_done, { symbol: data.symbol, recommendation }), "");
  }

  /**
   * The findings behind the recommendation, each worded from its code and figures
   * (market/reasons.py) and marked by its vote; nothing for a result without them.
   */
  private reasonsExplained(reasons: unknown): HTMLElement[] {
    if (!Array.isArray(reasons) || reasons.length === 0) return [];
    const list = element("ul", { class: "plain reasons" });
    for (const reason of reasons as AnalysisReason[]) {
      if (!reason || typeof reason.code !== "string") continue;
      const vote = typeof reason.vote === "number" ? reason.vote : null;
      const mood = vote === null ? "decision" : vote > 0 ? "positive" : vote < 0 ? "negative" : "neutral";
      list.append(element("li", { class: `reason ${mood}`, "data-code": reason.code }, analysisReasonText(this.t, reason, this.locale)));
    }
    const heading = element("h3", { class: "reasons-heading" }, this.t.reasons ?? "");
    return [heading, list];
  }

  /** The indicator values and the signal each one gives. */
  private technicalExplained(result: Record<string, unknown>): HTMLElement[] {
    const table = element("table", { class: "data indicators" });
    const body = element("tbody");
    const indicators = (result.indicators as Record<string, unknown> | undefined) ?? result;
    for (const [name, value] of Object.entries(indicators)) {
      if (value !== null && typeof value === "object") continue;
      const row = element("tr");
      const number = toNumber(value);
      const shown = number !== null ? formatNumber(number) : value === null || value === undefined ? "–" : String(value);
      row.append(element("th", { scope: "row" }, this.t[`indicator_${name}`] ?? name), element("td", { class: "num" }, shown));
      body.append(row);
    }
    table.append(body);
    const signals = element("ul", { class: "plain signals" });
    for (const [name, value] of Object.entries((result.signals as Record<string, unknown> | undefined) ?? {})) {
      const shown = typeof value === "boolean" ? (value ? this.t.yes : this.t.no) : (this.t[`signal_${String(value)}`] ?? String(value));
      signals.append(element("li", {}, `${this.t[`signal_name_${name}`] ?? name}: ${shown}`));
    }
    return [table, signals];
  }

  /** The metrics table: each figure, its thresholds, its verdict and the peer comparison. */
  private fundamentalExplained(result: Record<string, unknown>): HTMLElement[] {
    const table = element("table", { class: "data metrics" });
    const head = element("tr");
    for (const label of [this.t.metric, this.t.value, this.t.threshold_good, this.t.threshold_bad, this.t.verdict, this.t.peers]) {
      head.append(element("th", { scope: "col" }, label));
    }
    const body = element("tbody");
    for (const row of (result.metrics as Array<Record<string, unknown>> | undefined) ?? []) {
      const better = row.better === "lower" ? "≤" : "≥";
      const worse = row.better === "lower" ? "≥" : "≤";
      const peers = row.peers as { median: number; count: number; verdict: string } | null;
      const line = element("tr", { class: `verdict-${String(row.verdict)}` });
      line.append(
        element("th", { scope: "row" }, this.t[`metric_${String(row.metric)}`] ?? String(row.metric)),
        element("td", { class: "num" }, this.numberOrDash(row.value)),
        element("td", { class: "num" }, `${better} ${this.numberOrDash(row.good)}`),
        element("td", { class: "num" }, `${worse} ${this.numberOrDash(row.bad)}`),
        element("td", {}, this.t[`verdict_${String(row.verdict)}`] ?? String(row.verdict)),
        element(
          "td",
          {},
          peers
            ? fill(this.t.peers_median, { median: this.numberOrDash(peers.median), count: peers.count }) +
                ` – ${this.t[`verdict_${peers.verdict}`] ?? peers.verdict}`
            : "–",
        ),
      );
      body.append(line);
    }
    const thead = element("thead");
    thead.append(head);
    table.append(thead, body);
    const source = String(result.source ?? "");
    const footer = element(
      "p",
      { class: "analysis-basis" },
      fill(this.t.fundamentals_basis, {
        as_of: typeof result.as_of === "string" ? formatDate(result.as_of, this.locale) : "–",
        source,
        days: String(result.data_age_days ?? "–"),
        agreeing: String(result.agreeing ?? "–"),
        checks: String(result.checks ?? "–"),
      }),
    );
    return [...this.demoNotice(source === "demo"), table, footer];
  }

  /** The aggregate score, the strongest headlines and every scored headline with its score. */
  private sentimentExplained(result: Record<string, unknown>): HTMLElement[] {
    const headlines = (result.headlines as Array<Record<string, unknown>> | undefined) ?? [];
    const summary = element(
      "p",
      { class: "analysis-basis" },
      fill(this.t.sentiment_basis, { score: this.numberOrDash(result.score), items: String(result.items ?? headlines.length) }),
    );
    const parts: HTMLElement[] = [...this.demoNotice(headlines.some((h) => h.source === "demo")), summary];
    for (const [key, label] of [["strongest_positive", this.t.strongest_positive], ["strongest_negative", this.t.strongest_negative]] as const) {
      const item = result[key] as Record<string, unknown> | null | undefined;
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
      entry.append(
        element("span", { class: "num score" }, formatSigned(score, this.numberOrDash(item.score))),
        document.createTextNode(" "),
        title,
        element(
          "small",
          {},
          ` · ${formatTime(String(item.published_at))} · ${String(item.source)} · ${this.t[`language_${String(item.language)}`] ?? String(item.language)}`,
        ),
      );
      list.append(entry);
    }
    parts.push(list);
    return parts;
  }

  private demoNotice(isDemo: boolean): HTMLElement[] {
    return isDemo ? [element("p", { class: "demo-notice" }, this.t.demo_data)] : [];
  }

  /** A table cell whose symbol, clicked, selects it everywhere. */
  private symbolCell(tag: "th" | "td", symbol: string, attributes: Record<string, string> = {}): HTMLElement {
    const cell = element(tag, attributes);
    if (!symbol) return cell;
    const button = element("button", { type: "button", class: "link select-symbol", "data-symbol": symbol }, symbol);
    button.setAttribute("aria-label", fill(this.t.show_symbol ?? "{symbol}", { symbol }));
    cell.append(button);
    return cell;
  }

  private numberOrDash(value: unknown): string {
    const number = toNumber(value);
    return number === null ? "–" : formatNumber(number);
  }

  private euroOrDash(value: unknown): string {
    const number = toNumber(value);
    return number === null ? "–" : formatEuro(number);
  }
}

function boot(): void {
  const source = document.getElementById("desk-config");
  if (!source?.textContent) return;
  const desk = new PortfolioWebSocketClient(JSON.parse(source.textContent) as DeskConfig);
  (window as unknown as { portfolioWS: PortfolioWebSocketClient }).portfolioWS = desk;
  desk.start();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", boot);
} else {
  boot();
}
