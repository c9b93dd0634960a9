/**
 * The microsockets client. `MicroSocket(url, protocols?, options?)` works with and without `new`
 * and returns a MicroSocket: the WebSocket API plus events, requests and reconnects.
 */
import { MicroSocket as MicroSocketClass } from "./microsocket.js";
import type { AnyClientEvents, AnyServerEvents, ClientEventMap, MicroSocketOptions, ServerEventMap } from "./types.js";

/**
 * `MicroSocket` is callable with or without `new`, and carries the readyState constants.
 * `MicroSocket<ServerEvents, ClientEvents>(url)` types the events (docs/typing.md).
 */
export interface MicroSocketConstructor {
  new <S extends ServerEventMap = AnyServerEvents, C extends ClientEventMap = AnyClientEvents>(
    url: string | URL,
    protocols?: string | string[],
    options?: MicroSocketOptions,
  ): MicroSocketClass<S, C>;
  new <S extends ServerEventMap = AnyServerEvents, C extends ClientEventMap = AnyClientEvents>(
    url: string | URL,
    options?: MicroSocketOptions,
  ): MicroSocketClass<S, C>;
  <S extends ServerEventMap = AnyServerEvents, C extends ClientEventMap = AnyClientEvents>(
    url: string | URL,
    protocols?: string | string[],
    options?: MicroSocketOptions,
  ): MicroSocketClass<S, C>;
  <S extends ServerEventMap = AnyServerEvents, C extends ClientEventMap = AnyClientEvents>(
    url: string | URL,
    options?: MicroSocketOptions,
  ): MicroSocketClass<S, C>;
  readonly prototype: MicroSocketClass;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
}

/** Open a microsockets connection; the second argument may be the options when there are no protocols. */
const MicroSocket = function MicroSocket(
  url: string | URL,
  protocols?: string | string[] | MicroSocketOptions,
  options?: MicroSocketOptions,
): MicroSocketClass {
  if (protocols !== undefined && typeof protocols !== "string" && !Array.isArray(protocols)) {
    return new MicroSocketClass(url, undefined, protocols);
  }
  return new MicroSocketClass(url, protocols, options);
} as unknown as MicroSocketConstructor;

// `socket instanceof MicroSocket` holds, and MicroSocket.OPEN etc. read like WebSocket.OPEN.
Object.defineProperties(MicroSocket, {
  prototype: { value: MicroSocketClass.prototype },
  CONNECTING: { value: MicroSocketClass.CONNECTING, enumerable: true },
  OPEN: { value: MicroSocketClass.OPEN, enumerable: true },
  CLOSING: { value: MicroSocketClass.CLOSING, enumerable: true },
  CLOSED: { value: MicroSocketClass.CLOSED, enumerable: true },
});

/** The socket object `MicroSocket(...)` returns. */
type MicroSocket<
  S extends ServerEventMap = AnyServerEvents,
  C extends ClientEventMap = AnyClientEvents,
> = MicroSocketClass<S, C>;

export default MicroSocket;
export { MicroSocket };
export { DEFAULT_RECONNECT_DELAYS, reconnectDelay } from "./backoff.js";
export { MicroSocketCloseEvent } from "./close-event.js";
export { MicroSocketError, type MicroSocketErrorCode } from "./errors.js";
export { HEARTBEAT_TIMEOUT_CODE, MAX_REFUSALS, NO_RETRY_CLOSE_CODES } from "./microsocket.js";
export { PRESENCE, PRESENCE_STATE } from "./codec.js";
export type { PresenceDiff, PresenceHandler } from "./presence.js";
export type {
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
