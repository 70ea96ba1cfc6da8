/**
 * The staff desk: the spec's PortfolioWebSocketClient (section 1.2), wired to the page's
 * elements with the spec's ids and classes, plus the order ticket, order history, alerts,
 * analysis and a live chart.
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
  fill,
  formatEuro,
  formatNumber,
  formatPercent,
  formatSigned,
  formatTime,
  pageLocale,
  parseDecimalInput,
} from "./format.js";
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
  bars_url: string;
  event_types: string[];
  instruments: InstrumentInfo[];
  portfolio: PortfolioUpdateData | null;
  strings: Record<string, string>;
}

interface HistoryOrder {
  id?: number | string;
  order_id?: number | string;
  symbol?: string;
  instrument?: string | { symbol?: string };
  side?: string;
  order_type?: string;
  quantity?: string | number;
  filled_quantity?: string | number;
  price?: string | number | null;
  stop_price?: string | number | null;
  average_fill_price?: string | number | null;
  status?: string;
  created_at?: string;
}

interface HistoryPage {
  count: number;
  next: string | null;
  previous: string | null;
  results: HistoryOrder[];
}

interface AlertRule {
  alert_id?: string | number;
  id?: string | number;
  symbol: string;
  condition: string;
  threshold: number | string;
}

const OPEN_STATUSES = new Set(["pending", "open", "partially_filled"]);
const FINAL_STATUSES = new Set(["filled", "cancelled", "rejected", "failed"]);
const HISTORY_PAGE_SIZE_HINT = 25;

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

export class PortfolioWebSocketClient {
  private readonly wsClient: WebSocketEventClient;
  private readonly config: DeskConfig;
  private readonly t: Record<string, string>;
  private readonly chart: PriceChart | null;
  private readonly watchlist: Watchlist;
  private selectedSymbol: string | null = null;
  private established = false;
  private historyPage = 1;
  private historyTimer: ReturnType<typeof setTimeout> | null = null;
  private portfolioTimer: ReturnType<typeof setTimeout> | null = null;
  private pendingAnalyses = new Set<string>();
  /** The order the ticket last sent, followed through its events until it is final. */
  private ticketOrder: { clientOrderId: string; orderId: string | null } | null = null;

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
      ? new PriceChart({ target, caption: byId("chart-caption"), barsUrl: config.bars_url, locale: pageLocale(), strings: this.t })
      : null;
    this.watchlist = new Watchlist(typeof localStorage === "undefined" ? null : localStorage);
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
        this.setPrice(instrument.symbol, instrument.last_price, null, null);
      }
    }
    if (this.config.portfolio) {
      this.updatePortfolioDisplay(this.config.portfolio);
    }
    this.bindForms();
    this.selectSymbol(this.config.instruments[0]?.symbol ?? null);
    this.applyWatchlist();
    void this.refreshOrderHistory();
    void this.connect().catch(() => undefined);
  }

  // Event handlers

  private setupEventHandlers(): void {
    const on = this.wsClient.on.bind(this.wsClient) as (event: string, handler: (message: any) => void) => void;
    on("portfolio.update", (message: WebSocketMessage<PortfolioUpdateData>) => this.updatePortfolioDisplay(message.data));
    on("portfolio.value_changed", (message: WebSocketMessage<PortfolioValueChangedData>) =>
      this.updatePortfolioValue(message.data),
    );
    on("portfolio.position_changed", () => this.schedulePortfolioRefresh());
    on("trading.order_created", () => this.scheduleHistoryRefresh());
    on("trading.order_filled", (message: WebSocketMessage<OrderFilledData>) => {
      const data = message.data;
      const title = data.status === "partially_filled" ? this.t.order_partially_filled : this.t.order_filled;
      this.showNotification("success", title, this.fillDetail(data.symbol, data.filled_quantity, data.fill_price));
      this.showTicketState(String(data.order_id), data.status);
      this.scheduleHistoryRefresh();
    });
    on("trading.order_cancelled", (message: WebSocketMessage<OrderCancelledData>) => {
      const data = message.data;
      this.showNotification("info", this.t.order_cancelled, `${data.symbol} – ${data.cancel_reason}`);
      this.showTicketState(String(data.order_id), "cancelled");
      this.scheduleHistoryRefresh();
    });
    on("trading.order_failed", (message: WebSocketMessage<OrderFailedData>) => {
      const data = message.data;
      this.showNotification("error", this.t.order_failed, `${data.symbol} – ${data.error_message}`);
      this.showTicketState(String(data.order_id), "failed");
      this.scheduleHistoryRefresh();
    });
    on("market.price_update", (message: WebSocketMessage<PriceUpdateData>) => this.updatePriceDisplay(message.data));
    on("market.alert", (message: WebSocketMessage<MarketAlertData>) => this.showAlert(message.data));
    on("analysis.complete", (message: WebSocketMessage<AnalysisCompleteData>) => this.showAnalysis(message.data));
    on("connection.established", () => {
      // After a reconnect the chart may have missed ticks: its bars are loaded again.
      if (this.established) void this.chart?.reload();
      this.established = true;
      this.showConnectionStatus(this.t.connected, "success");
      this.schedulePortfolioRefresh();
      this.scheduleHistoryRefresh();
      void this.loadAlerts();
    });
    on("subscription.recovery_failed", () => {
      // Events were lost (no replay, a gap, a new epoch): reload the state once, whichever
      // and however many event types report it.
      this.schedulePortfolioRefresh();
      this.scheduleHistoryRefresh();
      void this.chart?.reload();
    });
    on("connection.status", ({ status }: { status: string }) => this.setTradingEnabled(status === "connected"));
    on("connection.closed", () => this.showConnectionStatus(this.t.disconnected, "warning"));
    on("connection.offline", () => this.showConnectionStatus(this.t.disconnected, "warning"));
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
      this.scheduleHistoryRefresh();
      return this.t.outcome_unknown;
    }
    return (error as Error).message;
  }

  requestPortfolioUpdate(): void {
    this.wsClient.sendUserCommand("refresh_portfolio", {}).catch((error: CommandError) => {
      if (error.code === "no_portfolio" || error.code === "not_found") {
        const value = byId("portfolio-value");
        if (value) value.textContent = this.t.no_portfolio;
      }
    });
  }

  // Portfolio

  private updatePortfolioDisplay(data: PortfolioUpdateData): void {
    const value = byId("portfolio-value");
    if (value) {
      value.textContent = formatEuro(data.total_value);
    }
    this.animateValueChange("portfolio-change", data.total_change, data.total_change_percent);
    this.renderPositions(data.positions);
  }

  private updatePortfolioValue(data: PortfolioValueChangedData): void {
    const value = byId("portfolio-value");
    if (value) {
      value.textContent = formatEuro(data.current_value);
    }
    this.animateValueChange("portfolio-change", data.change, data.change_percent);
  }

  private animateValueChange(elementId: string, change: number, changePercent: number): void {
    const target = byId(elementId);
    if (!target) return;
    target.textContent = `${formatSigned(change, formatEuro(change))} (${formatPercent(changePercent)})`;
    target.className = `change ${change >= 0 ? "positive" : "negative"}`;
  }

  private renderPositions(positions: PortfolioUpdateData["positions"]): void {
    const body = document.querySelector("#positions tbody");
    if (!body) return;
    body.replaceChildren();
    if (positions.length === 0) {
      const row = element("tr", { class: "empty" });
      row.append(element("td", { colspan: "6" }, "–"));
      body.append(row);
      return;
    }
    for (const position of positions) {
      const row = element("tr", { "data-position": String(position.symbol ?? ""), "data-symbol-row": String(position.symbol ?? "") });
      const pnl = toNumber(position.unrealized_pnl) ?? 0;
      row.append(
        this.symbolCell("th", String(position.symbol ?? ""), { scope: "row" }),
        element("td", { class: "num" }, formatNumber(toNumber(position.quantity) ?? 0)),
        element("td", { class: "num" }, this.euroOrDash(position.avg_cost)),
        element("td", { class: "num" }, this.euroOrDash(position.last_price)),
        element("td", { class: "num" }, this.euroOrDash(position.market_value)),
        element("td", { class: `num ${pnl >= 0 ? "positive" : "negative"}` }, formatSigned(pnl, formatEuro(pnl))),
      );
      body.append(row);
    }
  }

  private schedulePortfolioRefresh(): void {
    if (this.portfolioTimer !== null) return;
    this.portfolioTimer = setTimeout(() => {
      this.portfolioTimer = null;
      this.requestPortfolioUpdate();
    }, 250);
  }

  // Prices and chart

  private updatePriceDisplay(data: PriceUpdateData): void {
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

  /** Narrow the board's price events to the watchlist (and the chart's symbol), or widen them. */
  private applyWatchlist(): void {
    const symbols = this.watchlist.subscriptionSymbols(this.selectedSymbol);
    if (symbols) this.wsClient.subscribe(["market.price_update"], { symbols });
    else this.wsClient.subscribe(["market.price_update"]);
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

  /** Enable the controls that send orders only while connected; otherwise say why they are off. */
  private setTradingEnabled(connected: boolean): void {
    const reason = connected ? "" : this.t.no_connection;
    const controls = document.querySelectorAll<HTMLButtonElement>(
      '#order-form button[type="submit"], #modify-form button[type="submit"], button.cancel-order, button.modify-order',
    );
    controls.forEach((button) => {
      if (button.dataset.busy === "true") return;
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

  private showPriceField(): void {
    const type = byId<HTMLSelectElement>("order-type")?.value ?? "market";
    const field = byId("price-field");
    const label = byId("order-price-label");
    if (field) field.hidden = type === "market";
    if (label) label.textContent = type === "stop" ? this.t.stop_price : this.t.limit_price;
  }

  private clearErrors(form: HTMLFormElement): void {
    form.querySelectorAll(".field-error, .form-error, .form-result").forEach((node) => (node.textContent = ""));
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
    const parsed = parseDecimalInput(input?.value ?? "");
    if (!parsed.ok) {
      reportTo(this.t[parsed.reason]);
      return null;
    }
    return parsed.value;
  }

  private async submitOrder(form: HTMLFormElement): Promise<void> {
    this.clearErrors(form);
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
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    order.client_order_id = newRequestId();
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
      if (this.ticketOrder?.clientOrderId === order.client_order_id) this.ticketOrder.orderId = String(result.order_id);
      if (output) {
        output.textContent = fill(this.t.order_accepted, { order_id: result.order_id, message: result.message });
        // The answer carries the state as of its commit; events after it move it on.
        output.dataset.state = FINAL_STATUSES.has(result.status) ? result.status : "confirmed";
        output.dataset.orderId = String(result.order_id);
        output.dataset.orderStatus = result.status;
      }
      (form.elements.namedItem("quantity") as HTMLInputElement).value = "";
      this.scheduleHistoryRefresh();
    } catch (error) {
      if (output) {
        output.textContent = "";
        output.dataset.state = "failed";
      }
      const failure = error as CommandError;
      const field = typeof failure.details?.field === "string" ? failure.details.field : null;
      const mapped = field === "stop_price" ? "price" : field;
      if (mapped && byId(`${mapped}-error`)) this.fieldError(mapped, failure.message);
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

  // Order history

  private scheduleHistoryRefresh(): void {
    if (this.historyTimer !== null) return;
    this.historyTimer = setTimeout(() => {
      this.historyTimer = null;
      void this.refreshOrderHistory(this.historyPage);
    }, 200);
  }

  private async refreshOrderHistory(page = this.historyPage): Promise<void> {
    const table = byId("order-history");
    const error = byId("order-history-error");
    if (!table) return;
    page = Math.max(1, page);
    table.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`${this.config.history_url}?page=${page}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 404 && page > 1) {
        await this.refreshOrderHistory(page - 1);
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = (await response.json()) as HistoryPage;
      this.historyPage = page;
      this.renderHistory(data);
      if (error) error.textContent = "";
    } catch {
      if (error) error.textContent = this.t.history_failed;
    } finally {
      table.setAttribute("aria-busy", "false");
    }
  }

  private renderHistory(data: HistoryPage): void {
    const body = document.querySelector("#order-history tbody");
    if (!body) return;
    body.replaceChildren();
    if (data.results.length === 0) {
      const row = element("tr", { class: "empty" });
      row.append(element("td", { colspan: "9" }, this.t.history_empty));
      body.append(row);
    }
    for (const order of data.results) {
      const id = String(order.id ?? order.order_id ?? "");
      const symbol =
        order.symbol ?? (typeof order.instrument === "object" ? order.instrument?.symbol : order.instrument) ?? "";
      const status = order.status ?? "";
      const price = toNumber(order.average_fill_price) ?? toNumber(order.price) ?? toNumber(order.stop_price);
      const row = element("tr", { "data-order-id": id, "data-status": status, "data-symbol-row": symbol });
      row.append(
        element("td", {}, id),
        element("td", {}, order.created_at ? formatTime(order.created_at) : ""),
        this.symbolCell("td", symbol),
        element("td", {}, this.t[`side_${order.side}`] ?? order.side ?? ""),
        element("td", {}, this.t[`type_${order.order_type}`] ?? order.order_type ?? ""),
        element("td", { class: "num" }, formatNumber(toNumber(order.quantity) ?? 0)),
        element("td", { class: "num" }, price === null ? "–" : formatEuro(price)),
        element("td", { class: `order-status ${status}` }, this.t[`status_${status}`] ?? status),
      );
      const actions = element("td", { class: "actions" });
      if (OPEN_STATUSES.has(status)) {
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
      }
      row.append(actions);
      body.append(row);
    }
    const pages = Math.max(1, Math.ceil(data.count / Math.max(HISTORY_PAGE_SIZE_HINT, data.results.length || 1)));
    const label = byId("history-page");
    if (label) label.textContent = fill(this.t.page, { page: this.historyPage, pages });
    const prev = byId<HTMLButtonElement>("history-prev");
    const next = byId<HTMLButtonElement>("history-next");
    if (prev) prev.disabled = !data.previous;
    if (next) next.disabled = !data.next;
  }

  private async cancelFromHistory(orderId: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    button.dataset.busy = "true";
    try {
      await this.cancelOrder(orderId);
      this.scheduleHistoryRefresh();
    } catch (error) {
      this.showNotification("error", this.t.order_failed, this.commandFailure(error));
    } finally {
      delete button.dataset.busy;
      button.disabled = !this.isConnected();
    }
  }

  private openModify(orderId: string, order: HistoryOrder): void {
    const form = byId<HTMLFormElement>("modify-form");
    if (!form) return;
    form.hidden = false;
    this.clearErrors(form);
    (form.elements.namedItem("order_id") as HTMLInputElement).value = orderId;
    (form.elements.namedItem("quantity") as HTMLInputElement).value = String(order.quantity ?? "");
    (form.elements.namedItem("price") as HTMLInputElement).value = String(order.price ?? order.stop_price ?? "");
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
      this.scheduleHistoryRefresh();
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
    const list = byId("alert-rules");
    if (!list) return;
    list.replaceChildren();
    if (rules.length === 0) {
      list.append(element("li", { class: "empty" }, this.t.no_alerts));
    }
    for (const rule of rules) {
      const id = String(rule.alert_id ?? rule.id ?? "");
      const item = element("li", { "data-alert-id": id }, `${rule.symbol} ${rule.condition} ${rule.threshold} `);
      const remove = element("button", { type: "button", class: "remove-alert" }, this.t.remove);
      remove.setAttribute("aria-label", `${this.t.remove}: ${rule.symbol} ${rule.condition} ${rule.threshold}`);
      remove.addEventListener("click", async () => {
        try {
          await this.wsClient.sendUserCommand("remove_alert", { alert_id: rule.alert_id ?? rule.id });
          this.showNotification("info", this.t.alert_removed, `${rule.symbol}`);
          void this.loadAlerts();
        } catch (error) {
          this.showNotification("error", this.t.alert, (error as Error).message);
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
    try {
      await this.wsClient.sendUserCommand("subscribe_alerts", {
        symbol,
        condition: String(values.get("condition")),
        threshold,
      });
      this.showNotification("info", fill(this.t.alert_created, { symbol }), "");
      (form.elements.namedItem("threshold") as HTMLInputElement).value = "";
      void this.loadAlerts();
    } catch (failure) {
      report((failure as Error).message);
    }
  }

  private showAlert(data: MarketAlertData): void {
    const kind = data.severity === "critical" ? "error" : data.severity === "warning" ? "warning" : "info";
    this.showNotification(kind, `${this.t.alert}: ${data.symbol}`, data.message);
    const list = byId("alerts-incoming");
    if (list) {
      const item = element("li", { class: `alert ${data.severity}` }, `${formatTime(data.timestamp)} ${data.symbol}: ${data.message}`);
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
      if (error) error.textContent = (failure as Error).message;
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
    this.showNotification("info", fill(this.t.analysis_done, { symbol: data.symbol, recommendation }), "");
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
        as_of: String(result.as_of ?? "–"),
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
      if (item) parts.push(element("p", { class: `strongest ${key}` }, `${label}: „${String(item.headline)}“ (${this.numberOrDash(item.score)})`));
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
        element("small", {}, ` · ${formatTime(String(item.published_at))} · ${String(item.source)} · ${String(item.language)}`),
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
