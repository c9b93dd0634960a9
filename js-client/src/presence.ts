/**
 * Presence (docs/presence.md): who is visible in the rooms this client watches, rebuilt from the
 * server's `ms:presence_state` (the full state) and `ms:presence` (batched diffs) frames.
 */
import { PRESENCE_STATE } from "./codec.js";
import type { JsonValue } from "./types.js";

/** What changed in a room: entries that came (or changed) and entries that went, id → meta. */
export interface PresenceDiff {
  readonly joins: Readonly<Record<string, JsonValue>>;
  readonly leaves: Readonly<Record<string, JsonValue>>;
  /** In a counts-only room: the number of entries, and `joins`/`leaves` are empty. */
  readonly count?: number;
}

/** Called with the room's current entries and what just changed. */
export type PresenceHandler = (state: ReadonlyMap<string, JsonValue>, diff: PresenceDiff) => void;

interface Room {
  entries: Map<string, JsonValue>;
  count: number | undefined;
}

type Entries = Record<string, JsonValue>;

function isEntries(value: unknown): value is Entries {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The presence of every room this client got a state for, and the handlers watching them. */
export class PresenceRooms {
  private readonly rooms = new Map<string, Room>();
  private readonly handlers = new Map<string, Set<PresenceHandler>>();

  /** The current entries of a room (empty until its state arrived). */
  state(room: string): ReadonlyMap<string, JsonValue> {
    return this.rooms.get(room)?.entries ?? new Map();
  }

  /** How many entries a room has: the server's count in a counts-only room. */
  count(room: string): number {
    const found = this.rooms.get(room);
    return found?.count ?? found?.entries.size ?? 0;
  }

  /** Watch a room; returns the function that stops it. */
  subscribe(room: string, handler: PresenceHandler): () => void {
    let set = this.handlers.get(room);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(room, set);
    }
    set.add(handler);
    return () => {
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(room) === set) this.handlers.delete(room);
    };
  }

  /**
   * Apply a presence frame. A state replaces the room's entries and reports only what differs
   * from what this client knew (a reconnect shows no spurious leave and join); a diff applies
   * its leaves, then its joins. Frames for rooms with no state yet, or malformed, are ignored.
   */
  receive(event: string, payload: JsonValue): void {
    if (!isEntries(payload) || typeof payload.room !== "string") return;
    const name = payload.room;
    let room = this.rooms.get(name);
    const isState = event === PRESENCE_STATE;
    if (room === undefined) {
      if (!isState) return;
      room = { entries: new Map(), count: undefined };
      this.rooms.set(name, room);
    }
    if (typeof payload.count === "number") {
      room.count = payload.count;
      this.notify(name, room, { joins: {}, leaves: {}, count: payload.count });
      return;
    }
    const joins = isEntries(payload.joins) ? payload.joins : {};
    const leaves: Entries = {};
    if (isState) {
      for (const [id, meta] of room.entries) if (!(id in joins)) leaves[id] = meta;
    } else if (isEntries(payload.leaves)) {
      Object.assign(leaves, payload.leaves);
    }
    const changed: Entries = {};
    const gone: Entries = {};
    for (const [id, meta] of Object.entries(leaves)) {
      if (room.entries.delete(id) && !(id in joins)) gone[id] = meta;
    }
    for (const [id, meta] of Object.entries(joins)) {
      const before = room.entries.get(id);
      room.entries.set(id, meta);
      if (before === undefined || JSON.stringify(before) !== JSON.stringify(meta)) changed[id] = meta;
    }
    room.count = undefined;
    if (Object.keys(changed).length > 0 || Object.keys(gone).length > 0 || isState) {
      this.notify(name, room, { joins: changed, leaves: gone });
    }
  }

  private notify(name: string, room: Room, diff: PresenceDiff): void {
    for (const handler of [...(this.handlers.get(name) ?? [])]) {
      try {
        handler(room.entries, diff);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
