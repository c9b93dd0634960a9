/**
 * Client-side failure codes. Server error codes (`unknown_event`, `handler_error`, ... as listed
 * in docs/protocol.md) come through unchanged, so `code` is typed as an open string.
 */
export type MicroSocketErrorCode =
  "timeout" | "disconnected" | "closed" | "buffer_full" | "invalid_json" | "invalid_frame" | (string & {});

/**
 * The one error type of the client: `code` says what happened, `message` says it in words.
 *
 * - `timeout`: `request()` got no answer in time.
 * - `disconnected`: the connection carrying a request was lost before the answer came.
 * - `closed`: the socket was closed for good (by `close()` or a no-retry close code).
 * - `buffer_full`: `send()` while not connected and the send buffer is full.
 * - `invalid_json` / `invalid_frame`: a frame that breaks docs/protocol.md.
 * - anything else: the server's `ms:error` code for a `request()`, e.g. `handler_error`.
 */
export class MicroSocketError extends Error {
  /** What went wrong, as a stable code to compare against. */
  readonly code: MicroSocketErrorCode;

  constructor(code: MicroSocketErrorCode, message: string) {
    super(message);
    this.name = "MicroSocketError";
    this.code = code;
  }
}
