/**
 * The `close` event a MicroSocket fires: the WebSocket CloseEvent fields, built here because Node
 * before 23 has no global CloseEvent, and because a heartbeat timeout has no native close event.
 */
export class MicroSocketCloseEvent extends Event {
  /** The close code: the server's, 1006 for a lost connection, 4000 for a heartbeat timeout. */
  readonly code: number;
  /** The close reason the peer gave, or the client's own words. */
  readonly reason: string;
  /** Whether the closing handshake completed. */
  readonly wasClean: boolean;

  constructor(code: number, reason: string, wasClean: boolean) {
    super("close");
    this.code = code;
    this.reason = reason;
    this.wasClean = wasClean;
  }
}
