/** The public types of the client: JSON values, handlers, options, the WebSocket it drives. */

/** Any value JSON can hold; payloads are sent and received as these. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * A handler registered with `socket.on(event, handler)`.
 *
 * It gets the decoded payload (a string stays a string), the event name, and the `message`
 * event that carried the frame.
 */
export type EventHandler<T = unknown> = (payload: T, event: string, messageEvent: MessageEvent) => void;

/** The part of the WebSocket API this client uses; the browser's WebSocket and `ws` fit it. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `never` parameters accept any implementation's event type (DOM events, `ws` events, fakes);
  // this client only reads `data`, `code`, `reason` and `wasClean` from them.
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
}

/** A WebSocket constructor: the browser's `WebSocket`, `ws` in Node, or a test fake. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Query parameters added to the URL of a connection attempt. */
export type QueryParams = Record<string, string | number | boolean>;

/** Options of `MicroSocket(url, protocols?, options?)`; every one is optional. */
export interface MicroSocketOptions {
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (browsers, Node 22+). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect after a connection is lost. Default: `true`. */
  reconnect?: boolean;
  /**
   * Delays in ms before reconnect attempt 1, 2, 3...; the last one repeats.
   * Default: `[10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000]`.
   */
  reconnectDelays?: readonly number[];
  /** Each delay is picked at random between `delay * (1 - jitter)` and `delay`. Default: `0.5`. */
  reconnectJitter?: number;
  /** Frames kept while not connected; `send` throws `buffer_full` past it. Default: `100`. */
  sendBufferSize?: number;
  /** Default timeout of `request()` in ms. Default: `10000`. */
  requestTimeout?: number;
  /** Send `ms:ping` this often (ms) while connected; `0` turns heartbeats off. Default: `20000`. */
  heartbeatInterval?: number;
  /** Reconnect when nothing arrives this long (ms) after a ping. Default: `10000`. */
  heartbeatTimeout?: number;
  /** Give up on a connection attempt not open after this long (ms); `0`: wait forever. Default: `10000`. */
  connectTimeout?: number;
  /**
   * Query parameters for every connection attempt, added to the URL's own: an object, or a
   * function (sync or async) called before each attempt, e.g. to fetch a fresh single-use ticket.
   * After a refusal (close 4401 or 4403) a function is called again and the attempt retried, at
   * most `MAX_REFUSALS` times in a row; without a function a refusal is final. Default: `{}`.
   */
  params?: QueryParams | (() => QueryParams | Promise<QueryParams>);
}

/** Options of `socket.request(event, payload, options)`. */
export interface RequestOptions {
  /** Reject with a `timeout` error after this many ms. Default: the socket's `requestTimeout`. */
  timeout?: number;
}

/**
 * The events a server sends, by name, each with its payload type: the `ServerEvents` that
 * `python -m microsockets typescript` writes. Any object type of that shape fits.
 */
export type ServerEventMap = object;

/** The events a client sends, by name, each with `{ payload, reply }`: the generated `ClientEvents`. */
export type ClientEventMap = object;

/** The server events of a socket made without generics: any name, payloads unchecked. */
export type AnyServerEvents = { [event: string]: unknown };

/** The client events of a socket made without generics: any name, any JSON payload. */
export type AnyClientEvents = { [event: string]: { payload: JsonValue; reply: unknown } };

/** Whether a map is one of the loose defaults (an index signature) rather than generated types. */
type Loose<M> = string extends keyof M ? true : false;

/** The event names of a map. */
export type EventName<M> = keyof M & string;

/** The payload an `on(event)` handler gets: the map's type, or `T` on a loose socket. */
export type ServerPayload<S, E extends keyof S, T> = Loose<S> extends true ? T : S[E];

/** What `send(event, ...)` takes after the name: the payload, optional when "" fits it. */
export type PayloadArgs<C, E extends keyof C> = C[E] extends { payload: infer P }
  ? "" extends P
    ? [payload?: P]
    : [payload: P]
  : [payload?: JsonValue];

/** What `request(event, ...)` takes after the name: the payload, then the options. */
export type RequestArgs<C, E extends keyof C> = [...PayloadArgs<C, E>, options?: RequestOptions];

/** What a `request(event)` resolves with: the map's reply type, or `T` on a loose socket. */
export type Reply<C, E extends keyof C, T> = Loose<C> extends true ? T : C[E] extends { reply: infer R } ? R : unknown;
