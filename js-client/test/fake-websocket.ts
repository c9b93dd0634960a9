/**
 * A fake WebSocket for unit tests: records what the client sends, and lets the test play the
 * server (open, frames, close) synchronously. `fakeWebSocket()` gives a fresh class per test.
 */
import type { WebSocketConstructor } from "../src/types.js";

type Handler<E> = ((event: E) => void) | null;

export class FakeWebSocket {
  readyState = 0;
  protocol = "";
  bufferedAmount = 0;
  readonly sent: string[] = [];
  readonly closeCalls: Array<[number | undefined, string | undefined]> = [];
  onopen: Handler<object> = null;
  onmessage: Handler<{ data: string }> = null;
  onerror: Handler<object> = null;
  onclose: Handler<{ code: number; reason: string; wasClean: boolean }> = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("fake: send() while not open");
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push([code, reason]);
    this.readyState = 2;
  }

  /** The frames sent so far, decoded. */
  get frames(): Array<{ event: string; payload: unknown; id?: number }> {
    return this.sent.map((text) => JSON.parse(text) as { event: string; payload: unknown; id?: number });
  }

  /**
   * Play the server: accept the connection and, as the server does for a client that sent
   * `ms_v=2`, announce the session (`session: null` leaves that to the test).
   */
  accept(protocol = "", session: object | null = { id: "fake-id", token: null, recovered: false }): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
    if (session !== null && this.readyState === 1) this.receive({ event: "ms:session", payload: session });
  }

  /** Play the server: send a frame (an object is JSON-encoded, a string goes as is). */
  receive(frame: object | string): void {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  /** Play the network or the server: the connection ends with `code`. */
  drop(code = 1006, reason = "", wasClean = code !== 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean });
  }

  /** Play the network: an error event (browsers fire one before a failed connection's close). */
  fail(): void {
    this.onerror?.({});
  }
}

/**
 * A fresh fake WebSocket class, the list of instances the client created with it, and
 * `refuse(n)`: the next n constructions throw, as a WebSocket constructor may.
 */
export function fakeWebSocket(): {
  WebSocket: WebSocketConstructor;
  sockets: FakeWebSocket[];
  refuse: (times: number) => void;
} {
  const sockets: FakeWebSocket[] = [];
  let refusals = 0;
  class Fake extends FakeWebSocket {
    constructor(url: string, protocols?: string | string[]) {
      if (refusals > 0) {
        refusals -= 1;
        throw new SyntaxError("fake: refused");
      }
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: Fake, sockets, refuse: (times) => (refusals = times) };
}
