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
