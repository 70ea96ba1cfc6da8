/**
 * WebSocketEventClient: the spec's client (section 1.2) with what a desk open all day needs:
 * reconnect with exponential backoff and full jitter for as long as the page is open (paused
 * while the browser is offline), the same client id and every held subscription after a
 * reconnect, commands answered through promises keyed by correlation id, an explicit outbox for
 * commands sent while disconnected, idempotent commands that are refused at once while
 * disconnected and re-sent after a reconnect until their answer arrives, a resync signal when
 * live events show a gap or a new epoch, and a heartbeat that notices a dead connection.
 */

import type {
  ClientMessage,
  CommandResponseData,
  ConnectionEstablishedData,
  ErrorData,
  EventDataMap,
  WebSocketMessage,
} from "./events.js";

// The wire types, so that one import gives the client and the types of what it receives.
export type * from "./events.js";

export type ConnectionStatus =
  | "disconnected"
  | "connecting"
  | "connected"
  | "reconnecting"
  | "offline"
  | "closing";

/** The part of the WHATWG WebSocket the client uses (browsers and the `ws` package have it). */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => SocketLike;

/** Where the client reports what goes wrong (the `console` has these methods). */
export interface Logger {
  debug(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
}

/** Tells whether the network is up and when that changes (the browser's online/offline). */
export interface NetworkMonitor {
  isOnline(): boolean;
  onChange(listener: (online: boolean) => void): () => void;
}

export interface SubscriptionConfig {
  /** Event types to hold from the start. */
  event_types: string[];
  auto_reconnect: boolean;
  /** Milliseconds between pings; 0 turns the heartbeat off. */
  heartbeat_interval: number;
}

export interface ClientOptions extends Partial<SubscriptionConfig> {
  /** Milliseconds without any message after a ping before the connection counts as dead. */
  heartbeat_timeout?: number;
  /** Milliseconds a command waits for its response. */
  command_timeout?: number;
  /** First reconnect delay ceiling in ms; doubled per failed attempt. */
  reconnect_base_delay?: number;
  /** Largest reconnect delay ceiling in ms. */
  reconnect_max_delay?: number;
  /** Queue commands sent while disconnected (true) or refuse them at once (false). */
  queue_while_disconnected?: boolean;
  /** Most commands waiting for a connection; more are refused. */
  max_queued_commands?: number;
  /**
   * Milliseconds after its first send during which an idempotent command whose answer a lost
   * connection swallowed is re-sent after a reconnect; past it the command fails as
   * `outcome_unknown`.
   */
  idempotent_window?: number;
  /** Event types per subscribe message (the gateway's MAX_EVENT_TYPES_PER_MESSAGE). */
  max_event_types_per_message?: number;
  createSocket?: SocketFactory;
  network?: NetworkMonitor;
  /** Source of randomness in [0, 1) for the jitter. */
  random?: () => number;
  logger?: Logger;
}

/** Why a command did not succeed: the server's error code and message, or a local reason. */
export class CommandError extends Error {
  readonly code: string;
  readonly command: string;
  readonly details: Record<string, unknown>;

  constructor(command: string, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "CommandError";
    this.command = command;
    this.code = code;
    this.details = details;
  }
}

/** Local error codes (the server's codes come from realtime.wire.protocol.ErrorCode). */
export const LocalErrorCode = {
  TIMEOUT: "timeout",
  NOT_CONNECTED: "not_connected",
  QUEUE_FULL: "queue_full",
  CONNECTION_LOST: "connection_lost",
  CLIENT_CLOSED: "client_closed",
  /** An idempotent command was sent but no answer came within its window: it may have been applied. */
  OUTCOME_UNKNOWN: "outcome_unknown",
} as const;

/** Why the client asks the page to reload its state (`subscription.recovery_failed`). */
export type ResyncReason = "not_recovered" | "gap" | "epoch_changed";

export interface RecoveryFailedData {
  event_type: string;
  reason: ResyncReason;
  /** The position the client holds now. */
  seq?: number;
  epoch?: string;
  /** For a gap: the seq that was due. */
  expected?: number;
}

export interface CommandOptions {
  /** Milliseconds to wait for the answer after each send (default `command_timeout`). */
  timeout?: number;
  /**
   * The server applies this command once however often it arrives (it carries its own
   * client_order_id or request_id): refuse it at once while disconnected, and re-send it
   * unchanged after a reconnect when the connection dropped before its answer.
   */
  idempotent?: boolean;
}

// Error codes after which re-sending the same subscription can never succeed.
const FINAL_SUBSCRIPTION_ERRORS = new Set(["permission_denied", "unknown_event_type", "invalid_event_type"]);
// Close codes after which reconnecting is pointless: the server revoked this session's access.
const TERMINAL_CLOSE_CODES = new Set([4003]);
// "Service restart": the server process drains; another one takes the connection at once.
const SERVICE_RESTART = 1012;
const OPEN = 1;

/** A handler of a server message also gets the frame's text as received (exact decimals); client-side events pass no text. */
type Handler = (message: any, raw?: string) => void;

interface PendingCommand {
  command: string;
  correlationId: string;
  frame: ClientMessage;
  resolve: (result: unknown) => void;
  reject: (error: CommandError) => void;
  timer: ReturnType<typeof setTimeout> | null;
  sent: boolean;
  idempotent: boolean;
  /** Milliseconds to wait for the answer after a send. */
  timeout: number;
  /** Time (ms since the epoch) after which an idempotent command is no longer re-sent. */
  resendUntil: number;
}

/** The error listener of a socket the client has given up (see `detach`). */
function ignoreError(): void {}

function browserSocketFactory(url: string): SocketLike {
  const Impl = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
  if (!Impl) {
    throw new Error("No WebSocket implementation: pass options.createSocket");
  }
  return new Impl(url);
}

/** The browser's navigator.onLine and online/offline events; always online elsewhere. */
export function browserNetwork(): NetworkMonitor {
  const target = globalThis as unknown as {
    navigator?: { onLine?: boolean };
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
  };
  return {
    isOnline: () => target.navigator?.onLine !== false,
    onChange(listener) {
      if (!target.addEventListener || !target.removeEventListener) {
        return () => undefined;
      }
      const online = () => listener(true);
      const offline = () => listener(false);
      target.addEventListener("online", online);
      target.addEventListener("offline", offline);
      return () => {
        target.removeEventListener?.("online", online);
        target.removeEventListener?.("offline", offline);
      };
    },
  };
}

/** Return a fresh id for a client_order_id or request_id (letters, digits and "-": the server's pattern). */
export function newRequestId(): string {
  return newCorrelationId();
}

function newCorrelationId(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) {
    return crypto.randomUUID();
  }
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/** Return the reconnect delay for `attempt` (0-based): full jitter under a doubling ceiling. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export class WebSocketEventClient {
  private ws: SocketLike | null = null;
  private clientId: string | null = null;
  private status: ConnectionStatus = "disconnected";
  private readonly subscriptions = new Set<string>();
  /** The symbols an event type is narrowed to (`data.symbols`); absent: all symbols. */
  private readonly symbolFilters = new Map<string, string[]>();
  /**
   * Whether the server confirmed that this connection receives every numbered event of a type
   * (`complete: true`); only then is a skipped seq a loss. A type narrowed to some symbols, or a
   * personal one (a portfolio's order events, one user's alerts), skips the numbers of events
   * meant for other symbols or users.
   */
  private readonly complete = new Map<string, boolean>();
  /** Last seen position (seq, epoch) per held event type, sent as `since` when resubscribing. */
  private readonly positions = new Map<string, { seq: number; epoch: string }>();
  private readonly eventHandlers = new Map<string, Handler[]>();
  private readonly pending = new Map<string, PendingCommand>();
  private readonly outbox: PendingCommand[] = [];
  /** Idempotent commands sent on a connection that dropped before their answer. */
  private readonly unanswered: PendingCommand[] = [];
  private reconnectAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private heartbeatDeadline: ReturnType<typeof setTimeout> | null = null;
  private wanted = false;
  private established = false;
  private stopNetworkWatch: (() => void) | null = null;
  private connectWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly options: Required<Omit<ClientOptions, "event_types" | keyof SubscriptionConfig>> &
    SubscriptionConfig;

  constructor(
    private readonly wsUrl: string = "wss://localhost/ws",
    options: ClientOptions = {},
  ) {
    this.options = {
      event_types: options.event_types ?? [],
      auto_reconnect: options.auto_reconnect ?? true,
      heartbeat_interval: options.heartbeat_interval ?? 30000,
      heartbeat_timeout: options.heartbeat_timeout ?? 10000,
      command_timeout: options.command_timeout ?? 15000,
      reconnect_base_delay: options.reconnect_base_delay ?? 500,
      reconnect_max_delay: options.reconnect_max_delay ?? 30000,
      queue_while_disconnected: options.queue_while_disconnected ?? true,
      max_queued_commands: options.max_queued_commands ?? 50,
      idempotent_window: options.idempotent_window ?? 60000,
      max_event_types_per_message: options.max_event_types_per_message ?? 32,
      createSocket: options.createSocket ?? browserSocketFactory,
      network: options.network ?? browserNetwork(),
      random: options.random ?? Math.random,
      logger: options.logger ?? console,
    };
    for (const type of this.options.event_types) {
      this.subscriptions.add(type);
    }
  }

  /**
   * Open the connection; resolve once the server has established it (retrying per backoff),
   * reject if `disconnect()` is called first or the first attempt fails without auto-reconnect.
   */
  connect(): Promise<void> {
    if (this.status === "connected") {
      return Promise.resolve();
    }
    const waiter = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (!this.wanted) {
      this.wanted = true;
      this.stopNetworkWatch = this.options.network.onChange((online) => this.networkChanged(online));
      this.open();
    }
    return waiter;
  }

  /** Close the connection for good: no reconnect; queued and unanswered commands are rejected. */
  disconnect(): void {
    this.wanted = false;
    this.stopNetworkWatch?.();
    this.stopNetworkWatch = null;
    this.clearReconnectTimer();
    this.stopHeartbeat();
    const socket = this.ws;
    this.ws = null;
    this.established = false;
    if (socket) {
      this.detach(socket);
      this.setStatus("closing");
      try {
        socket.close(1000, "client disconnect");
      } catch {
        // A socket that never opened cannot be closed; it is dropped all the same.
      }
    }
    this.setStatus("disconnected");
    this.failAll(LocalErrorCode.CLIENT_CLOSED, "The connection was closed by the client.");
    this.settleConnectWaiters(new Error("disconnected before the connection was established"));
    if (socket) {
      this.emit("connection.closed", { code: 1000, reason: "client disconnect", will_reconnect: false });
    }
  }

  /**
   * Try to connect now instead of waiting out the backoff (a person's "connect now", or the
   * server answering again); nothing while connected, connecting, or after `disconnect()`.
   */
  reconnectNow(): void {
    if (!this.wanted || this.ws) {
      return;
    }
    this.open();
  }

  /**
   * Hold these event types; sent now when connected, and again after every reconnect.
   * `symbols` narrows the types whose events name an instrument to those instruments; a type
   * held already is re-sent when its symbols change.
   */
  subscribe(eventTypes: string[], options: { symbols?: string[] } = {}): void {
    const symbols = options.symbols ? Array.from(new Set(options.symbols)).sort() : null;
    const key = JSON.stringify(symbols);
    const changed = eventTypes.filter(
      (type) => !this.subscriptions.has(type) || JSON.stringify(this.symbolFilters.get(type) ?? null) !== key,
    );
    for (const type of changed) {
      this.subscriptions.add(type);
      if (symbols) this.symbolFilters.set(type, symbols);
      else this.symbolFilters.delete(type);
    }
    if (this.established && changed.length > 0) {
      this.sendSubscription("subscribe", changed, symbols);
    }
  }

  /** Stop holding these event types. */
  unsubscribe(eventTypes: string[]): void {
    const removed = eventTypes.filter((type) => this.subscriptions.delete(type));
    for (const type of removed) {
      this.symbolFilters.delete(type);
      this.complete.delete(type);
    }
    if (this.established && removed.length > 0) {
      this.sendSubscription("unsubscribe", removed);
    }
  }

  /**
   * Send a user command; resolve with its `result` when the response with the same
   * correlation id says success, reject with a CommandError on an error response, an `error`
   * message, a timeout, or a connection lost before the answer (never re-sent: the server may
   * have acted on it). While disconnected the command waits in a bounded queue, or is refused
   * at once when `queue_while_disconnected` is off.
   *
   * An `idempotent` command is refused at once (`not_connected`) while disconnected, so it is
   * never queued unseen. When the connection drops after it was sent, it is re-sent unchanged
   * (same correlation id and data) after the reconnect and resubscription, for up to
   * `idempotent_window` ms after its first send; then it fails as `outcome_unknown`, as it does
   * when an answer does not come within its timeout.
   */
  sendUserCommand<R = unknown>(command: string, data: Record<string, unknown> = {}, options: CommandOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const idempotent = options.idempotent === true;
      if (idempotent && !this.established) {
        reject(new CommandError(command, LocalErrorCode.NOT_CONNECTED, "Not connected to the server: the command was not sent."));
        return;
      }
      if (!this.established) {
        if (!this.options.queue_while_disconnected || !this.wanted) {
          reject(new CommandError(command, LocalErrorCode.NOT_CONNECTED, "Not connected to the server."));
          return;
        }
        if (this.outbox.length >= this.options.max_queued_commands) {
          reject(
            new CommandError(command, LocalErrorCode.QUEUE_FULL, "Too many commands are waiting for the connection."),
          );
          return;
        }
      }
      const correlationId = newCorrelationId();
      const timeout = options.timeout ?? this.options.command_timeout;
      const entry: PendingCommand = {
        command,
        correlationId,
        frame: { type: "user", event: command, data, timestamp: new Date().toISOString(), correlation_id: correlationId },
        resolve: resolve as (result: unknown) => void,
        reject,
        sent: false,
        idempotent,
        timeout,
        resendUntil: Date.now() + this.options.idempotent_window,
        timer: null,
      };
      if (!idempotent) {
        // A queued command's timeout runs from now, whether it waits for a connection or an answer.
        this.arm(entry, timeout, LocalErrorCode.TIMEOUT, `No response to ${command} within ${timeout} ms.`);
      }
      if (this.established) {
        this.transmit(entry);
      } else {
        this.outbox.push(entry);
      }
    });
  }

  /**
   * Run `handler` for every message of `eventType` (`*`: every server message). A server
   * message's handler also gets the frame's text as received, e.g. to keep its exact decimals.
   */
  on<K extends keyof EventDataMap>(
    eventType: K,
    handler: (message: WebSocketMessage<EventDataMap[K]>, raw: string) => void,
  ): void;
  on(eventType: "*", handler: (message: WebSocketMessage, raw: string) => void): void;
  on(eventType: string, handler: Handler): void;
  on(eventType: string, handler: (message: any, raw: string) => void): void {
    const handlers = this.eventHandlers.get(eventType) ?? [];
    handlers.push(handler as Handler);
    this.eventHandlers.set(eventType, handlers);
  }

  off(eventType: string, handler?: (message: any, raw: string) => void): void {
    if (!handler) {
      this.eventHandlers.delete(eventType);
      return;
    }
    const handlers = this.eventHandlers.get(eventType);
    const index = handlers ? handlers.indexOf(handler as Handler) : -1;
    if (handlers && index > -1) {
      handlers.splice(index, 1);
    }
  }

  getConnectionStatus(): ConnectionStatus {
    return this.status;
  }

  getSubscriptions(): string[] {
    return Array.from(this.subscriptions);
  }

  getClientId(): string | null {
    return this.clientId;
  }

  /** Commands waiting for a connection. */
  getQueuedCommandCount(): number {
    return this.outbox.length;
  }

  /** Idempotent commands whose answer a dropped connection swallowed, waiting to be re-sent. */
  getUnansweredCommandCount(): number {
    return this.unanswered.length;
  }

  // Connection lifecycle

  private open(): void {
    this.clearReconnectTimer();
    if (!this.options.network.isOnline()) {
      this.setStatus("offline");
      return;
    }
    this.setStatus(this.reconnectAttempts > 0 ? "reconnecting" : "connecting");
    const url = `${this.wsUrl.replace(/\/+$/, "")}/${encodeURIComponent(this.clientId ?? "")}`;
    let socket: SocketLike;
    try {
      socket = this.options.createSocket(url);
    } catch (error) {
      this.options.logger.error("WebSocket could not be created:", error);
      this.emit("connection.error", { error });
      this.lost(1006, "socket creation failed");
      return;
    }
    this.ws = socket;
    this.established = false;
    socket.onopen = () => {
      // The connection counts once the server's connection.established arrives.
    };
    socket.onmessage = (event) => this.received(event.data);
    socket.onerror = (error) => {
      this.emit("connection.error", { error });
    };
    socket.onclose = (event) => {
      if (this.ws === socket) {
        this.detach(socket);
        this.ws = null;
        this.lost(event.code, event.reason);
      }
    };
  }

  private lost(code: number, reason: string): void {
    const wasEstablished = this.established;
    this.established = false;
    this.stopHeartbeat();
    this.keepIdempotent();
    this.failSent(LocalErrorCode.CONNECTION_LOST, "The connection was lost before the response arrived.");
    const willReconnect = this.wanted && this.options.auto_reconnect && !TERMINAL_CLOSE_CODES.has(code);
    let delay: number | null = null;
    if (willReconnect) {
      delay = this.scheduleReconnect(code === SERVICE_RESTART);
    } else {
      this.wanted = false;
      this.stopNetworkWatch?.();
      this.stopNetworkWatch = null;
      this.setStatus("disconnected");
      this.failAll(LocalErrorCode.NOT_CONNECTED, "The connection is closed and will not be re-opened.");
      this.settleConnectWaiters(new Error(`connection closed (code ${code})`));
    }
    this.emit("connection.closed", { code, reason, will_reconnect: willReconnect, delay, was_established: wasEstablished });
  }

  /** Reconnect after the backoff delay; at once when `immediate` and no attempt failed since the last connection. */
  private scheduleReconnect(immediate = false): number | null {
    this.clearReconnectTimer();
    if (!this.options.network.isOnline()) {
      this.setStatus("offline");
      this.emit("connection.offline", {});
      return null;
    }
    const delay =
      immediate && this.reconnectAttempts === 0
        ? 0
        : backoffDelay(this.reconnectAttempts, this.options.reconnect_base_delay, this.options.reconnect_max_delay, this.options.random);
    this.reconnectAttempts += 1;
    this.setStatus("reconnecting");
    this.emit("connection.reconnecting", { attempt: this.reconnectAttempts, delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open();
    }, delay);
    return delay;
  }

  private networkChanged(online: boolean): void {
    if (!this.wanted) {
      return;
    }
    if (!online) {
      if (!this.ws) {
        this.clearReconnectTimer();
        this.setStatus("offline");
        this.emit("connection.offline", {});
      }
      // An open socket is kept: the heartbeat tells whether it survives.
      return;
    }
    if (!this.ws) {
      this.open();
    } else if (this.established) {
      this.ping();
    }
  }

  private detach(socket: SocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    // A socket given up while still connecting reports an error once closed. Node's `ws` throws
    // an error nobody listens to (an uncaught exception that ends the process), so a detached
    // socket keeps a listener that ignores it.
    socket.onerror = ignoreError;
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer !== null) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.status !== status) {
      this.status = status;
      this.emit("connection.status", { status });
    }
  }

  private settleConnectWaiters(error?: Error): void {
    const waiters = this.connectWaiters.splice(0);
    for (const waiter of waiters) {
      if (error) {
        waiter.reject(error);
      } else {
        waiter.resolve();
      }
    }
  }

  // Incoming

  private received(frame: unknown): void {
    this.clearHeartbeatDeadline();
    const raw = typeof frame === "string" ? frame : String(frame);
    let message: WebSocketMessage;
    try {
      message = JSON.parse(raw) as WebSocketMessage;
    } catch (error) {
      this.options.logger.error("Invalid WebSocket message:", error);
      return;
    }
    if (!message || typeof message !== "object" || typeof message.event !== "string") {
      this.options.logger.error("WebSocket message without an event:", message);
      return;
    }
    if (message.type === "system" && message.event === "connection.established") {
      this.onEstablished(message as WebSocketMessage<ConnectionEstablishedData>, raw);
      return;
    }
    this.track(message);
    // Events a command causes carry its correlation id too; only its response or error settles it.
    const settles = message.type === "command_response" || message.type === "error";
    if (settles && message.correlation_id && this.pending.has(message.correlation_id)) {
      this.answer(this.pending.get(message.correlation_id)!, message);
    }
    if (message.type === "error") {
      this.subscriptionRefused(message as WebSocketMessage<ErrorData>);
    }
    this.emit(message.event, message, raw);
    this.emit("*", message, raw);
  }

  private onEstablished(message: WebSocketMessage<ConnectionEstablishedData>, raw: string): void {
    this.clientId = message.data.client_id;
    this.established = true;
    this.reconnectAttempts = 0;
    this.setStatus("connected");
    const byFilter = new Map<string, { symbols: string[] | null; types: string[] }>();
    for (const type of this.subscriptions) {
      const symbols = this.symbolFilters.get(type) ?? null;
      const key = JSON.stringify(symbols);
      const group = byFilter.get(key) ?? { symbols, types: [] };
      group.types.push(type);
      byFilter.set(key, group);
    }
    for (const { symbols, types } of byFilter.values()) {
      this.sendSubscription("subscribe", types, symbols);
    }
    // Re-sent after the resubscription, so the events the command causes reach the page.
    for (const entry of this.unanswered.splice(0)) {
      this.transmit(entry);
    }
    for (const entry of this.outbox.splice(0)) {
      this.transmit(entry);
    }
    this.startHeartbeat();
    this.settleConnectWaiters();
    this.emit("connection.established", message, raw);
    this.emit("*", message, raw);
  }

  private answer(entry: PendingCommand, message: WebSocketMessage): void {
    this.forget(entry);
    if (message.type === "command_response") {
      const data = message.data as CommandResponseData;
      if (data.status === "success") {
        entry.resolve(data.result);
        return;
      }
      const result = (data.result ?? {}) as ErrorData;
      const { error, code, ...details } = result;
      entry.reject(new CommandError(entry.command, String(code ?? "error"), String(error ?? "The command failed."), details));
      return;
    }
    const { error, code, ...details } = message.data as ErrorData;
    entry.reject(new CommandError(entry.command, String(code ?? message.event), String(error), details));
  }

  /**
   * Keep the last seq/epoch of each held event type, so a resubscribe can ask for what was
   * missed, and tell the page to reload (`subscription.recovery_failed`) when events were lost:
   * the server cannot replay (`recovered: false`), a live event starts a new epoch, or, for a
   * type the server confirmed as `complete`, its seq is not the last one plus one. Unnumbered
   * events leave the position alone.
   */
  private track(message: WebSocketMessage): void {
    if (typeof message.seq === "number" && typeof message.epoch === "string" && this.subscriptions.has(message.event)) {
      const type = message.event;
      const last = this.positions.get(type);
      this.positions.set(type, { seq: message.seq, epoch: message.epoch });
      if (!last) return;
      if (last.epoch !== message.epoch) {
        this.resync({ event_type: type, reason: "epoch_changed", seq: message.seq, epoch: message.epoch });
      } else if (this.complete.get(type) === true && message.seq !== last.seq + 1) {
        this.resync({ event_type: type, reason: "gap", seq: message.seq, epoch: message.epoch, expected: last.seq + 1 });
      }
      return;
    }
    if (message.type !== "system" || message.event !== "subscription.confirmed") return;
    const data = message.data as { event_type?: string; seq?: number; epoch?: string; recovered?: boolean; complete?: boolean };
    if (typeof data.event_type !== "string") return;
    this.complete.set(data.event_type, data.complete === true);
    if (typeof data.seq !== "number" || typeof data.epoch !== "string") return;
    this.positions.set(data.event_type, { seq: data.seq, epoch: data.epoch });
    if (data.recovered === false) {
      this.resync({ event_type: data.event_type, reason: "not_recovered", seq: data.seq, epoch: data.epoch });
    }
  }

  private resync(data: RecoveryFailedData): void {
    this.options.logger.warn(`Events of ${data.event_type} were lost (${data.reason}); the page should reload its state.`);
    this.emit("subscription.recovery_failed", data);
  }

  private subscriptionRefused(message: WebSocketMessage<ErrorData>): void {
    const eventType = message.data?.event_type;
    if (typeof eventType === "string" && FINAL_SUBSCRIPTION_ERRORS.has(message.data.code)) {
      this.subscriptions.delete(eventType);
      this.options.logger.warn(`Subscription to ${eventType} refused: ${message.data.error}`);
    }
  }

  // Outgoing

  private sendSubscription(event: "subscribe" | "unsubscribe", eventTypes: string[], symbols: string[] | null = null): void {
    const size = this.options.max_event_types_per_message;
    for (let start = 0; start < eventTypes.length; start += size) {
      const chunk = eventTypes.slice(start, start + size);
      const data: {
        event_types: string[];
        since?: Record<string, { seq: number; epoch: string }>;
        symbols?: string[];
      } = { event_types: chunk };
      if (symbols) data.symbols = symbols;
      if (event === "subscribe") {
        const since = Object.fromEntries(chunk.filter((t) => this.positions.has(t)).map((t) => [t, this.positions.get(t)!]));
        if (Object.keys(since).length > 0) data.since = since;
      } else {
        chunk.forEach((t) => this.positions.delete(t));
      }
      this.sendFrame({
        type: "subscription",
        event,
        data,
        timestamp: new Date().toISOString(),
        correlation_id: newCorrelationId(),
      });
    }
  }

  private transmit(entry: PendingCommand): void {
    const resend = entry.sent;
    if (!this.sendFrame(entry.frame)) {
      if (resend) {
        // Sent before on an earlier connection: wait for the next one, as the socket's close follows.
        this.unanswered.push(entry);
        this.armResendWindow(entry);
        return;
      }
      this.forget(entry);
      // Nothing left: for an idempotent command that is the certain "not sent".
      const code = entry.idempotent ? LocalErrorCode.NOT_CONNECTED : LocalErrorCode.CONNECTION_LOST;
      entry.reject(new CommandError(entry.command, code, "The command could not be sent."));
      return;
    }
    this.pending.set(entry.correlationId, entry);
    entry.sent = true;
    if (entry.idempotent) {
      this.arm(
        entry,
        entry.timeout,
        LocalErrorCode.OUTCOME_UNKNOWN,
        `No response to ${entry.command} within ${entry.timeout} ms; it may have been applied.`,
      );
    }
  }

  /** Reject `entry` with `code` unless it is answered within `ms`. */
  private arm(entry: PendingCommand, ms: number, code: string, message: string): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      this.forget(entry);
      entry.reject(new CommandError(entry.command, code, message));
    }, Math.max(0, ms));
  }

  private armResendWindow(entry: PendingCommand): void {
    this.arm(
      entry,
      entry.resendUntil - Date.now(),
      LocalErrorCode.OUTCOME_UNKNOWN,
      `The connection was lost after ${entry.command} was sent and did not return in time; it may have been applied.`,
    );
  }

  /** Move the idempotent commands in flight to the re-send list (they are answered after the reconnect). */
  private keepIdempotent(): void {
    for (const entry of Array.from(this.pending.values())) {
      if (!entry.idempotent) continue;
      this.pending.delete(entry.correlationId);
      this.unanswered.push(entry);
      this.armResendWindow(entry);
    }
  }

  private sendFrame(frame: ClientMessage): boolean {
    const socket = this.ws;
    if (!socket || socket.readyState !== OPEN) {
      return false;
    }
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch (error) {
      this.options.logger.error("WebSocket send failed:", error);
      return false;
    }
  }

  private forget(entry: PendingCommand): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    this.pending.delete(entry.correlationId);
    for (const list of [this.outbox, this.unanswered]) {
      const index = list.indexOf(entry);
      if (index > -1) {
        list.splice(index, 1);
      }
    }
  }

  private failSent(code: string, message: string): void {
    for (const entry of Array.from(this.pending.values())) {
      this.forget(entry);
      entry.reject(new CommandError(entry.command, code, message));
    }
  }

  private failAll(code: string, message: string): void {
    this.failSent(code, message);
    for (const entry of this.outbox.splice(0)) {
      this.forget(entry);
      entry.reject(new CommandError(entry.command, code, message));
    }
    for (const entry of this.unanswered.splice(0)) {
      this.forget(entry);
      entry.reject(
        new CommandError(entry.command, LocalErrorCode.OUTCOME_UNKNOWN, `${message} ${entry.command} was sent and may have been applied.`),
      );
    }
  }

  private emit(eventType: string, payload: unknown, raw?: string): void {
    const handlers = this.eventHandlers.get(eventType);
    if (!handlers) {
      return;
    }
    for (const handler of handlers.slice()) {
      try {
        handler(payload, raw);
      } catch (error) {
        this.options.logger.error(`Error in event handler for ${eventType}:`, error);
      }
    }
  }

  // Heartbeat

  private startHeartbeat(): void {
    this.stopHeartbeat();
    if (this.options.heartbeat_interval <= 0) {
      return;
    }
    this.heartbeatTimer = setInterval(() => this.ping(), this.options.heartbeat_interval);
  }

  private ping(): void {
    if (!this.established || this.heartbeatDeadline !== null) {
      return;
    }
    this.sendFrame({
      type: "ping",
      event: "heartbeat",
      data: {},
      timestamp: new Date().toISOString(),
      correlation_id: newCorrelationId(),
    });
    this.heartbeatDeadline = setTimeout(() => {
      this.heartbeatDeadline = null;
      this.dead();
    }, this.options.heartbeat_timeout);
  }

  private dead(): void {
    const socket = this.ws;
    if (!socket) {
      return;
    }
    this.options.logger.warn("No answer to the heartbeat: the connection is dead, reconnecting.");
    this.detach(socket);
    this.ws = null;
    try {
      socket.close(4000, "heartbeat timeout");
    } catch {
      // Closing a dead socket may throw; it is abandoned either way.
    }
    this.lost(4000, "heartbeat timeout");
  }

  private clearHeartbeatDeadline(): void {
    if (this.heartbeatDeadline !== null) {
      clearTimeout(this.heartbeatDeadline);
      this.heartbeatDeadline = null;
    }
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
    this.clearHeartbeatDeadline();
  }
}
