/**
 * The wire format of docs/protocol.md: frames to text and back, with the same acceptance rules as
 * the server so neither end drifts (both read tests/wire_vectors.json in their tests).
 */
import { MicroSocketError } from "./errors.js";
import type { JsonValue } from "./types.js";

/** Event names starting with this belong to the library. */
export const RESERVED_PREFIX = "ms:";
/** The server's presence diff of a room (docs/presence.md). */
export const PRESENCE = "ms:presence";
/** The full presence state of a room, sent to a watcher before any diff. */
export const PRESENCE_STATE = "ms:presence_state";
/** The largest acknowledgement id: the largest integer a JavaScript number holds exactly. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;
/** The protocol's default `max_event_length`, in code points. */
export const MAX_EVENT_LENGTH = 256;
/** Nesting deeper than this is refused, like the server's codecs refuse it. */
export const MAX_DEPTH = 1024;

/**
 * One decoded frame; `id` is `null` when the frame carries none. `offset` is the frame's place in
 * the server's log (its `"o"` field), present on frames sent to rooms while recovery is on.
 */
export interface Frame {
  readonly event: string;
  readonly payload: JsonValue;
  readonly id: number | null;
  readonly offset?: string;
}

/**
 * Encode one frame with keys in the order `event`, `payload`, `id` and no white space.
 *
 * Throws a TypeError for values JSON cannot hold (BigInt, cycles).
 */
export function encode(event: string, payload: JsonValue, id?: number): string {
  return JSON.stringify(id === undefined ? { event, payload } : { event, payload, id });
}

/** Decode one text frame; throws MicroSocketError `invalid_json` or `invalid_frame`. */
export function decode(text: string): Frame {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new MicroSocketError("invalid_json", "frame is not valid JSON");
  }
  checkValue(data, 0, /\\u[dD][89a-fA-F]/.test(text));
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new MicroSocketError("invalid_frame", 'a frame is a JSON object: {"event": ..., "payload": ...}');
  }
  const frame = data as { event?: unknown; payload?: JsonValue; id?: unknown; o?: unknown };
  const { event, id, o } = frame;
  if (typeof event !== "string" || event === "") {
    throw new MicroSocketError("invalid_frame", '"event" must be a non-empty string');
  }
  if (event.length > MAX_EVENT_LENGTH && [...event].length > MAX_EVENT_LENGTH) {
    throw new MicroSocketError("invalid_frame", `"event" is longer than ${MAX_EVENT_LENGTH} characters`);
  }
  if (id !== undefined && id !== null && !isValidId(id)) {
    throw new MicroSocketError("invalid_frame", `"id" must be an integer from 1 to ${MAX_ID}`);
  }
  if (o !== undefined && typeof o !== "string") {
    throw new MicroSocketError("invalid_frame", '"o" (the log offset) must be a string');
  }
  const decoded = { event, payload: frame.payload === undefined ? "" : frame.payload, id: id ?? null };
  return o === undefined ? decoded : { ...decoded, offset: o };
}

/** Whether `id` is usable as an acknowledgement id. */
export function isValidId(id: unknown): id is number {
  return typeof id === "number" && Number.isInteger(id) && id >= 1 && id <= MAX_ID;
}

/** Refuse what JSON.parse lets through but the protocol does not: huge numbers, deep nesting, lone surrogates. */
function checkValue(value: unknown, depth: number, checkStrings: boolean): void {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new MicroSocketError("invalid_json", "number too large for a double");
  } else if (typeof value === "string") {
    if (checkStrings && LONE_SURROGATE.test(value)) {
      throw new MicroSocketError("invalid_json", "lone UTF-16 surrogate in a string");
    }
  } else if (typeof value === "object" && value !== null) {
    if (depth >= MAX_DEPTH) throw new MicroSocketError("invalid_json", "JSON nested too deeply");
    const entries = Array.isArray(value) ? value : Object.entries(value).flat();
    for (const item of entries) checkValue(item, depth + 1, checkStrings);
  }
}

// A high surrogate not followed by a low one, or a low one not preceded by a high one (no
// lookbehind: older Safari cannot parse it).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
