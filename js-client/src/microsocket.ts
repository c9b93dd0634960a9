/**
 * The MicroSocket: a WebSocket that speaks the microsockets protocol (docs/protocol.md), keeps the
 * WebSocket API, and survives lost connections (reconnect, send buffer, heartbeat, requests).
 */
import { Backoff, DEFAULT_RECONNECT_DELAYS, reconnectDelay } from "./backoff.js";
import { MicroSocketCloseEvent } from "./close-event.js";
import { PRESENCE, PRESENCE_STATE, RESERVED_PREFIX, decode, encode, type Frame } from "./codec.js";
import { MicroSocketError } from "./errors.js";
import { Heartbeat } from "./heartbeat.js";
import { PresenceRooms, type PresenceHandler } from "./presence.js";
import type {
  AnyClientEvents,
  AnyServerEvents,
  ClientEventMap,
  EventHandler,
  EventName,
  JsonValue,
  MicroSocketOptions,
  PayloadArgs,
  Reply,
  RequestArgs,
  QueryParams,
  RequestOptions,
  ServerEventMap,
  ServerPayload,
  WebSocketConstructor,
  WebSocketLike,
} from "./types.js";

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** Close code this client reports (and sends) when the heartbeat finds the connection dead. */
export const HEARTBEAT_TIMEOUT_CODE = 4000;

/**
 * Close codes after which reconnecting would not help: protocol and data errors, a policy
 * violation, a message too big, a missing extension. A close with 1000 that the user did not ask
 * for means the application closed the connection on purpose, so it is final too. Every other
 * code (1001 going away, 1006 lost, 1011 server error, 1012 restart, 1013 try later...) retries.
 */
export const NO_RETRY_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1002, 1003, 1007, 1008, 1009, 1010]);

/**
 * A refused handshake reaches a client that sent `ms_v=2` as a close with 4000 + the HTTP status
 * (docs/protocol.md). 4401 and 4403 are retried with fresh `params` from a function, at most
 * `MAX_REFUSALS` times in a row, and are final otherwise; 4429 and 45xx retry with back-off; the
 * other 44xx codes (4409: this session was resumed by another connection) are final.
 */
export const MAX_REFUSALS = 3;

function isRefusal(code: number): boolean {
  return code >= 4400 && code <= 4599;
}

function refusalRetries(code: number): boolean {
  return code === 4429 || code >= 4500;
}

type AckEvent = "ms:ack" | "ms:error";

/** A `request()` waiting for its `ms:ack` or `ms:error`. */
interface PendingRequest {
  readonly event: string;
  readonly resolve: (payload: unknown) => void;
  readonly reject: (error: MicroSocketError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** Whether the frame went out on the current connection (else it waits in the send buffer). */
  sent: boolean;
}

/** A frame waiting in the send buffer, and the request it belongs to, if any. */
interface QueuedFrame {
  readonly text: string;
  readonly id: number | undefined;
}

type Resolved = Required<MicroSocketOptions>;

/** Every option with its default filled in (the defaults documented in types.ts and the README). */
function resolveOptions(options: MicroSocketOptions): Resolved {
  const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (WebSocketImpl === undefined) {
    throw new TypeError("no global WebSocket here: pass one, e.g. MicroSocket(url, { WebSocket }) with `ws` in Node");
  }
  return {
    WebSocket: WebSocketImpl,
    reconnect: options.reconnect ?? true,
    reconnectDelays: options.reconnectDelays ?? DEFAULT_RECONNECT_DELAYS,
    reconnectJitter: options.reconnectJitter ?? 0.5,
    sendBufferSize: options.sendBufferSize ?? 100,
    requestTimeout: options.requestTimeout ?? 10_000,
    heartbeatInterval: options.heartbeatInterval ?? 20_000,
    heartbeatTimeout: options.heartbeatTimeout ?? 10_000,
    connectTimeout: options.connectTimeout ?? 10_000,
    params: options.params ?? {},
  };
}

/**
 * One logical connection to a microsockets server, made of as many WebSocket connections as
 * reconnecting takes. Its `open`, `message`, `error` and `close` events fire for each of them.
 *
 * `S` and `C` type the events (the `ServerEvents` and `ClientEvents` that
 * `python -m microsockets typescript` writes): a wrong name, payload or reply type is then a
 * compile error. Without them every name and JSON payload is accepted, as before.
 */
export class MicroSocket<
  S extends ServerEventMap = AnyServerEvents,
  C extends ClientEventMap = AnyClientEvents,
> extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;

  /** The URL given to the constructor. */
  readonly url: string;
  /** Fires each time a connection opens: the first one and every reconnect. */
  onopen: ((this: MicroSocket<S, C>, event: Event) => unknown) | null = null;
  /** Fires for every frame the server sends, before `on()` handlers run. */
  onmessage: ((this: MicroSocket<S, C>, event: MessageEvent) => unknown) | null = null;
  /** Fires when the underlying WebSocket reports an error (a close event follows). */
  onerror: ((this: MicroSocket<S, C>, event: Event) => unknown) | null = null;
  /** Fires each time a connection closes; `readyState` tells whether a reconnect follows. */
  onclose: ((this: MicroSocket<S, C>, event: MicroSocketCloseEvent) => unknown) | null = null;

  private readonly protocols: string | string[] | undefined;
  private readonly options: Resolved;
  private readonly handlers = new Map<string, Set<EventHandler<never>>>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly queue: QueuedFrame[] = [];
  private readonly presenceRooms = new PresenceRooms();
  private readonly backoff: Backoff;
  private readonly heartbeat: Heartbeat;
  private ws: WebSocketLike | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private state: number = CONNECTING;
  private lastId = 0;
  private sessionId = "";
  private token: string | null = null;
  private offset = "";
  private wasRecovered = false;
  private refusals = 0;

  constructor(url: string | URL, protocols?: string | string[], options: MicroSocketOptions = {}) {
    super();
    this.url = String(url);
    this.protocols = protocols;
    this.options = resolveOptions(options);
    const { reconnectDelays, reconnectJitter, heartbeatInterval, heartbeatTimeout } = this.options;
    this.backoff = new Backoff(
      () => this.connect(),
      (attempt) => reconnectDelay(attempt, reconnectDelays, reconnectJitter),
    );
    this.heartbeat = new Heartbeat(
      heartbeatInterval,
      heartbeatTimeout,
      (count) => this.ws?.send(encode("ms:ping", count)),
      () => this.abandon(HEARTBEAT_TIMEOUT_CODE, "heartbeat timeout"),
    );
    // The on* properties behave like listeners added first, as on a WebSocket.
    this.addEventListener("open", (event) => this.onopen?.call(this, event));
    this.addEventListener("message", (event) => this.onmessage?.call(this, event as MessageEvent));
    this.addEventListener("error", (event) => this.onerror?.call(this, event));
    this.addEventListener("close", (event) => this.onclose?.call(this, event as MicroSocketCloseEvent));
    const { params } = this.options;
    if (typeof params === "function") this.connect();
    else this.ws = this.open(params); // a bad URL throws from here, as for a WebSocket
  }

  /** The session id, the same value the server sees as `ws.id` ("" before the first open). */
  get id(): string {
    return this.sessionId;
  }

  /**
   * Whether the last open resumed the session with nothing missed: same `id`, same rooms, every
   * frame sent to them in between delivered first. When false after a reconnect, the session is
   * new (a new `id`, no rooms): refetch the state.
   */
  get recovered(): boolean {
    return this.wasRecovered;
  }

  /** CONNECTING (also while waiting to reconnect), OPEN, CLOSING (after `close()`) or CLOSED. */
  get readyState(): number {
    return this.state;
  }

  /** The subprotocol the server picked on the current connection, or "". */
  get protocol(): string {
    return this.ws?.protocol ?? "";
  }

  /** Bytes the current connection has queued but not yet sent (the send buffer not counted). */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** Frames waiting in the send buffer for the next open connection. */
  get buffered(): number {
    return this.queue.length;
  }

  /**
   * Who is visible in a room this client joined with presence: id → metadata, kept up to date
   * from the server's diffs (empty until the room's state arrived; docs/presence.md).
   */
  presence(room: string): ReadonlyMap<string, JsonValue> {
    return this.presenceRooms.state(room);
  }

  /** How many are visible in a room (the server's count in a counts-only room). */
  presenceCount(room: string): number {
    return this.presenceRooms.count(room);
  }

  /** Call `handler(state, diff)` each time a room's presence changes; returns the unsubscribe function. */
  onPresence(room: string, handler: PresenceHandler): () => void {
    return this.presenceRooms.subscribe(room, handler);
  }

  /** Call `handler(payload, event, messageEvent)` for each `event` frame; returns the handler for `off`. */
  on<T = unknown, E extends EventName<S> = EventName<S>>(
    event: E,
    handler: EventHandler<ServerPayload<S, E, T>>,
  ): EventHandler<ServerPayload<S, E, T>>;
  on(event: string, handler: EventHandler<never>): EventHandler<never> {
    let set = this.handlers.get(event);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(event, set);
    }
    set.add(handler as EventHandler<never>);
    return handler;
  }

  /** Remove one handler of `event`, or all of them when `handler` is omitted. */
  off<T = unknown, E extends EventName<S> = EventName<S>>(
    event: E,
    handler?: EventHandler<ServerPayload<S, E, T>>,
  ): void;
  off(event: string, handler?: EventHandler<never>): void {
    if (handler === undefined) {
      this.handlers.delete(event);
      return;
    }
    const set = this.handlers.get(event);
    set?.delete(handler as EventHandler<never>);
    if (set?.size === 0) this.handlers.delete(event);
  }

  /**
   * Send `event` with `payload` (any JSON value; a string stays a string). While not connected
   * the frame waits in the send buffer; throws `buffer_full` when that is full and `closed` after
   * the socket closed for good.
   */
  send<E extends EventName<C>>(event: E, ...payload: PayloadArgs<C, E>): void;
  send(event: string, payload: unknown = ""): void {
    checkEventName(event);
    this.transmit(encode(event, payload as JsonValue), undefined);
  }

  /**
   * Send `event` and resolve with the server handler's return value (its `ms:ack`). Rejects with a
   * MicroSocketError: the server's code (`handler_error`, `unknown_event`...), `timeout`,
   * `disconnected` (the connection was lost after sending), `closed` or `buffer_full`.
   */
  request<T = unknown, E extends EventName<C> = EventName<C>>(
    event: E,
    ...args: RequestArgs<C, E>
  ): Promise<Reply<C, E, T>>;
  request(event: string, ...args: unknown[]): Promise<unknown> {
    const [payload = "", options = {}] = args as [JsonValue?, RequestOptions?];
    checkEventName(event);
    const timeout = options.timeout ?? this.options.requestTimeout;
    const id = this.nextId();
    const text = encode(event, payload as JsonValue, id);
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id, new MicroSocketError("timeout", `request "${event}" got no answer within ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { event, resolve, reject, timer, sent: false });
      try {
        this.transmit(text, id);
      } catch (error) {
        this.settle(id, error as MicroSocketError);
      }
    });
  }

  /**
   * Close for good: no reconnect, the send buffer is dropped, pending requests reject with
   * `closed`. `code` is 1000 or 3000-4999, as for a WebSocket.
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) {
      throw new RangeError(`close code must be 1000 or in 3000-4999, not ${code}`);
    }
    if (this.state === CLOSING || this.state === CLOSED) return;
    this.backoff.cancel();
    clearTimeout(this.connectTimer);
    this.heartbeat.stop();
    this.queue.length = 0;
    this.rejectPending(() => true, "closed", "the socket was closed by close()");
    if (this.ws === null) {
      this.state = CLOSED;
      this.dispatchEvent(new MicroSocketCloseEvent(code ?? 1000, reason ?? "", true));
      return;
    }
    this.state = CLOSING;
    this.ws.close(code ?? 1000, reason); // 1000 ends the session on the server: no resume
  }

  /** Create a WebSocket and wire its events to this socket. */
  private open(params: QueryParams): WebSocketLike {
    const ws = new this.options.WebSocket(this.attemptUrl(params), this.protocols);
    ws.onopen = () => this.handleOpen(ws);
    ws.onmessage = (event: { data: unknown }) => this.handleMessage(ws, event.data);
    ws.onerror = () => {
      if (ws === this.ws) this.dispatchEvent(new Event("error"));
    };
    ws.onclose = (event: { code: number; reason: string; wasClean: boolean }) =>
      this.handleClose(ws, event.code, event.reason, event.wasClean);
    if (this.options.connectTimeout > 0) {
      // A handshake can hang (a frozen server, a dropped network): give up on it, and retry.
      this.connectTimer = setTimeout(() => this.abandon(1006, "connect timeout"), this.options.connectTimeout);
    }
    return ws;
  }

  /** The URL of one attempt: the app's parameters, the protocol version, the resume claim. */
  private attemptUrl(params: QueryParams): string {
    const url = new URL(this.url);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, String(value));
    url.searchParams.set("ms_v", "2");
    if (this.token !== null) {
      url.searchParams.set("ms_id", this.sessionId);
      url.searchParams.set("ms_token", this.token);
      url.searchParams.set("ms_offset", this.offset);
    }
    return url.href;
  }

  /** A connection attempt, with fresh params; a failure to get them or to construct counts as lost. */
  private connect(): void {
    const { params } = this.options;
    if (typeof params !== "function") {
      this.openOrRetry(params);
      return;
    }
    Promise.resolve()
      .then(params)
      .then(
        (fresh) => {
          if (this.state === CONNECTING && this.ws === null) this.openOrRetry(fresh);
        },
        () => {
          if (this.state === CONNECTING && this.ws === null) this.backoff.schedule();
        },
      );
  }

  private openOrRetry(params: QueryParams): void {
    try {
      this.ws = this.open(params);
    } catch {
      this.ws = null;
      this.backoff.schedule();
    }
  }

  /** A connection opened: start the heartbeat and wait for the server's `ms:session`. */
  private handleOpen(ws: WebSocketLike): void {
    if (ws !== this.ws) return;
    this.heartbeat.start();
  }

  /** The server said who we are: the session opened (or resumed). Announce it, flush the buffer. */
  private handleSession(payload: JsonValue): void {
    const { id, token, recovered } = (payload ?? {}) as { id?: unknown; token?: unknown; recovered?: unknown };
    this.wasRecovered = recovered === true;
    if (!this.wasRecovered) this.offset = "";
    this.sessionId = typeof id === "string" ? id : "";
    this.token = typeof token === "string" ? token : null;
    this.refusals = 0;
    clearTimeout(this.connectTimer);
    this.state = OPEN;
    this.backoff.reset();
    this.heartbeat.start();
    this.dispatchEvent(new Event("open"));
    // After the open handlers, so what they send (joining rooms again) goes first.
    for (const frame of this.queue.splice(0)) this.transmit(frame.text, frame.id);
  }

  /** A frame arrived: `message` listeners first, then the pending request or the `on()` handlers. */
  private handleMessage(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.ws) return;
    this.heartbeat.alive();
    const messageEvent = new MessageEvent("message", { data });
    this.dispatchEvent(messageEvent);
    let frame: Frame;
    try {
      frame = decode(String(data));
    } catch {
      return; // not a microsockets frame: only `message` listeners see it
    }
    if (frame.offset !== undefined) this.offset = frame.offset;
    if (frame.event === "ms:pong") return;
    if (frame.event === "ms:session") {
      this.handleSession(frame.payload);
      return;
    }
    if (frame.event === PRESENCE || frame.event === PRESENCE_STATE) {
      this.presenceRooms.receive(frame.event, frame.payload);
      return;
    }
    if ((frame.event === "ms:ack" || frame.event === "ms:error") && frame.id !== null) {
      this.answer(frame.event, frame.id, frame.payload);
      return;
    }
    for (const handler of [...(this.handlers.get(frame.event) ?? [])]) {
      try {
        (handler as EventHandler)(frame.payload, frame.event, messageEvent);
      } catch (error) {
        // Report it like an uncaught error without stopping the other handlers.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** A connection ended: fail what it carried, then reconnect or close for good, per the code. */
  private handleClose(ws: WebSocketLike, code: number, reason: string, wasClean: boolean): void {
    if (ws !== this.ws) return;
    this.ws = null;
    detach(ws);
    clearTimeout(this.connectTimer);
    this.heartbeat.stop();
    this.rejectPending((request) => request.sent, "disconnected", `connection lost (close code ${code})`);
    const retry = this.state !== CLOSING && this.options.reconnect && this.retries(code);
    if (retry) {
      this.state = CONNECTING;
    } else {
      const byUser = this.state === CLOSING;
      this.state = CLOSED;
      this.queue.length = 0;
      this.rejectPending(
        () => true,
        "closed",
        byUser ? "the socket was closed by close()" : `connection closed for good (close code ${code})`,
      );
    }
    this.dispatchEvent(new MicroSocketCloseEvent(code, reason, wasClean));
    if (retry && this.state === CONNECTING) this.backoff.schedule();
  }

  /** Whether a close with `code` is worth another attempt (refusals: see `MAX_REFUSALS`). */
  private retries(code: number): boolean {
    if (NO_RETRY_CLOSE_CODES.has(code)) return false;
    if (!isRefusal(code) || refusalRetries(code)) return true;
    if ((code !== 4401 && code !== 4403) || typeof this.options.params !== "function") return false;
    this.refusals += 1;
    return this.refusals <= MAX_REFUSALS;
  }

  /** The connection is dead (heartbeat) or never came (connect timeout): drop it without a closing handshake. */
  private abandon(code: number, reason: string): void {
    const ws = this.ws;
    if (ws === null) return;
    detach(ws);
    try {
      if (code >= 3000) ws.close(code, reason);
      else ws.close(); // codes below 3000, such as 1006, may not be sent
    } catch {
      // closing a broken socket may throw; it is dropped either way
    }
    this.handleClose(ws, code, reason, false);
  }

  /** Send now when connected, else keep the frame in the bounded send buffer. */
  private transmit(text: string, id: number | undefined): void {
    if (this.state === CLOSING || this.state === CLOSED) {
      throw new MicroSocketError("closed", "the socket is closed; create a new MicroSocket");
    }
    if (this.state === OPEN && this.ws !== null && this.ws.readyState === OPEN) {
      this.ws.send(text);
      const request = id === undefined ? undefined : this.pending.get(id);
      if (request !== undefined) request.sent = true;
      return;
    }
    if (this.queue.length >= this.options.sendBufferSize) {
      throw new MicroSocketError(
        "buffer_full",
        `send buffer full (${this.options.sendBufferSize} frames) while not connected; the frame was not queued`,
      );
    }
    this.queue.push({ text, id });
  }

  /** Settle request `id` with the server's `ms:ack` or `ms:error`. */
  private answer(event: AckEvent, id: number, payload: JsonValue): void {
    const request = this.pending.get(id);
    if (request === undefined) return; // timed out already
    if (event === "ms:ack") {
      this.pending.delete(id);
      clearTimeout(request.timer);
      request.resolve(payload);
      return;
    }
    const { code, message } = (payload ?? {}) as { code?: unknown; message?: unknown };
    this.settle(
      id,
      new MicroSocketError(
        typeof code === "string" ? code : "server_error",
        `server refused "${request.event}": ${typeof message === "string" ? message : JSON.stringify(payload)}`,
      ),
    );
  }

  /** Reject request `id` (if still pending) and forget it; drops its frame from the buffer. */
  private settle(id: number, error: MicroSocketError): void {
    const request = this.pending.get(id);
    if (request === undefined) return;
    this.pending.delete(id);
    clearTimeout(request.timer);
    const index = this.queue.findIndex((frame) => frame.id === id);
    if (index !== -1) this.queue.splice(index, 1);
    request.reject(error);
  }

  /** Reject every pending request that `which` selects. */
  private rejectPending(which: (request: PendingRequest) => boolean, code: string, message: string): void {
    for (const [id, request] of [...this.pending]) {
      if (which(request)) this.settle(id, new MicroSocketError(code, `request "${request.event}" failed: ${message}`));
    }
  }

  /** The next request id, from 1 up to the largest the protocol allows, then round again. */
  private nextId(): number {
    this.lastId = this.lastId >= Number.MAX_SAFE_INTEGER ? 1 : this.lastId + 1;
    return this.lastId;
  }
}

/** Refuse event names the server would refuse: empty ones and the library's `ms:` names. */
function checkEventName(event: string): void {
  if (typeof event !== "string" || event === "") {
    throw new TypeError(`an event name is a non-empty string, not ${JSON.stringify(event)}`);
  }
  if (event.startsWith(RESERVED_PREFIX)) {
    throw new TypeError(`event names starting with "${RESERVED_PREFIX}" are reserved for microsockets`);
  }
}

/** Stop listening to a WebSocket this client no longer uses. */
function detach(ws: WebSocketLike): void {
  // No-ops rather than null: `ws` in Node throws on an "error" event nobody listens to.
  ws.onopen = ignore;
  ws.onmessage = ignore;
  ws.onerror = ignore;
  ws.onclose = ignore;
}

function ignore(): void {}
