/**
 * WebSocketEventClient: the spec's client (section 1.2) with what a desk open all day needs:
 * reconnect with exponential backoff and full jitter for as long as the page is open (paused
 * while the browser is offline), the same client id and every held subscription after a
 * reconnect, commands answered through promises keyed by correlation id, an explicit outbox for
 * commands sent while disconnected, and a heartbeat that notices a dead connection.
 */

import type {
  ClientMessage,
  CommandResponseData,
  ConnectionEstablishedData,
  ErrorData,
  EventDataMap,
  WebSocketMessage,
} from "./events.js";

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
  /** Event types per subscribe message (the gateway's MAX_EVENT_TYPES_PER_MESSAGE). */
  max_event_types_per_message?: number;
  createSocket?: SocketFactory;
  network?: NetworkMonitor;
  /** Source of randomness in [0, 1) for the jitter. */
  random?: () => number;
  logger?: Pick<Console, "debug" | "warn" | "error">;
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

/** Local error codes (the server's codes come from realtime.protocol.ErrorCode). */
export const LocalErrorCode = {
  TIMEOUT: "timeout",
  NOT_CONNECTED: "not_connected",
  QUEUE_FULL: "queue_full",
  CONNECTION_LOST: "connection_lost",
  CLIENT_CLOSED: "client_closed",
} as const;

// Error codes after which re-sending the same subscription can never succeed.
const FINAL_SUBSCRIPTION_ERRORS = new Set(["permission_denied", "unknown_event_type", "invalid_event_type"]);
// Close codes after which reconnecting is pointless: the server revoked this session's access.
const TERMINAL_CLOSE_CODES = new Set([4003]);
// "Service restart": the server process drains; another one takes the connection at once.
const SERVICE_RESTART = 1012;
const OPEN = 1;

type Handler = (message: any) => void;

interface PendingCommand {
  command: string;
  correlationId: string;
  frame: ClientMessage;
  resolve: (result: unknown) => void;
  reject: (error: CommandError) => void;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
}

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
  /** Last seen position (seq, epoch) per held event type, sent as `since` when resubscribing. */
  private readonly positions = new Map<string, { seq: number; epoch: string }>();
  private readonly eventHandlers = new Map<string, Handler[]>();
  private readonly pending = new Map<string, PendingCommand>();
  private readonly outbox: PendingCommand[] = [];
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

  /** Hold these event types; sent now when connected, and again after every reconnect. */
  subscribe(eventTypes: string[]): void {
    const added = eventTypes.filter((type) => !this.subscriptions.has(type));
    for (const type of added) {
      this.subscriptions.add(type);
    }
    if (this.established && added.length > 0) {
      this.sendSubscription("subscribe", added);
    }
  }

  /** Stop holding these event types. */
  unsubscribe(eventTypes: string[]): void {
    const removed = eventTypes.filter((type) => this.subscriptions.delete(type));
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
   */
  sendUserCommand<R = unknown>(
    command: string,
    data: Record<string, unknown> = {},
    options: { timeout?: number } = {},
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
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
        timer: setTimeout(() => {
          this.forget(entry);
          reject(new CommandError(command, LocalErrorCode.TIMEOUT, `No response to ${command} within ${timeout} ms.`));
        }, timeout),
      };
      if (this.established) {
        this.transmit(entry);
      } else {
        this.outbox.push(entry);
      }
    });
  }

  on<K extends keyof EventDataMap>(eventType: K, handler: (message: WebSocketMessage<EventDataMap[K]>) => void): void;
  on(eventType: string, handler: Handler): void;
  on(eventType: string, handler: Handler): void {
    const handlers = this.eventHandlers.get(eventType) ?? [];
    handlers.push(handler);
    this.eventHandlers.set(eventType, handlers);
  }

  off(eventType: string, handler?: Handler): void {
    if (!handler) {
      this.eventHandlers.delete(eventType);
      return;
    }
    const handlers = this.eventHandlers.get(eventType);
    const index = handlers ? handlers.indexOf(handler) : -1;
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
    socket.onerror = null;
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

  private received(raw: unknown): void {
    this.clearHeartbeatDeadline();
    let message: WebSocketMessage;
    try {
      message = JSON.parse(typeof raw === "string" ? raw : String(raw)) as WebSocketMessage;
    } catch (error) {
      this.options.logger.error("Invalid WebSocket message:", error);
      return;
    }
    if (!message || typeof message !== "object" || typeof message.event !== "string") {
      this.options.logger.error("WebSocket message without an event:", message);
      return;
    }
    if (message.type === "system" && message.event === "connection.established") {
      this.onEstablished(message as WebSocketMessage<ConnectionEstablishedData>);
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
    this.emit(message.event, message);
    this.emit("*", message);
  }

  private onEstablished(message: WebSocketMessage<ConnectionEstablishedData>): void {
    this.clientId = message.data.client_id;
    this.established = true;
    this.reconnectAttempts = 0;
    this.setStatus("connected");
    const held = this.getSubscriptions();
    if (held.length > 0) {
      this.sendSubscription("subscribe", held);
    }
    for (const entry of this.outbox.splice(0)) {
      this.transmit(entry);
    }
    this.startHeartbeat();
    this.settleConnectWaiters();
    this.emit("connection.established", message);
    this.emit("*", message);
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
   * missed; when the server says it cannot replay (`recovered: false`), tell the page to reload.
   */
  private track(message: WebSocketMessage): void {
    if (typeof message.seq === "number" && typeof message.epoch === "string" && this.subscriptions.has(message.event)) {
      this.positions.set(message.event, { seq: message.seq, epoch: message.epoch });
      return;
    }
    if (message.type !== "system" || message.event !== "subscription.confirmed") return;
    const data = message.data as { event_type?: string; seq?: number; epoch?: string; recovered?: boolean };
    if (typeof data.event_type !== "string" || typeof data.seq !== "number" || typeof data.epoch !== "string") return;
    this.positions.set(data.event_type, { seq: data.seq, epoch: data.epoch });
    if (data.recovered === false) {
      this.emit("subscription.recovery_failed", { event_type: data.event_type });
    }
  }

  private subscriptionRefused(message: WebSocketMessage<ErrorData>): void {
    const eventType = message.data?.event_type;
    if (typeof eventType === "string" && FINAL_SUBSCRIPTION_ERRORS.has(message.data.code)) {
      this.subscriptions.delete(eventType);
      this.options.logger.warn(`Subscription to ${eventType} refused: ${message.data.error}`);
    }
  }

  // Outgoing

  private sendSubscription(event: "subscribe" | "unsubscribe", eventTypes: string[]): void {
    const size = this.options.max_event_types_per_message;
    for (let start = 0; start < eventTypes.length; start += size) {
      const chunk = eventTypes.slice(start, start + size);
      const data: { event_types: string[]; since?: Record<string, { seq: number; epoch: string }> } = { event_types: chunk };
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
    this.pending.set(entry.correlationId, entry);
    entry.sent = true;
    if (!this.sendFrame(entry.frame)) {
      this.forget(entry);
      entry.reject(new CommandError(entry.command, LocalErrorCode.CONNECTION_LOST, "The command could not be sent."));
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
    clearTimeout(entry.timer);
    this.pending.delete(entry.correlationId);
    const index = this.outbox.indexOf(entry);
    if (index > -1) {
      this.outbox.splice(index, 1);
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
      clearTimeout(entry.timer);
      entry.reject(new CommandError(entry.command, code, message));
    }
  }

  private emit(eventType: string, payload: unknown): void {
    const handlers = this.eventHandlers.get(eventType);
    if (!handlers) {
      return;
    }
    for (const handler of handlers.slice()) {
      try {
        handler(payload);
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
