/** The presence maps a client rebuilds from `ms:presence_state` and `ms:presence` frames. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PRESENCE, PRESENCE_STATE } from "../../src/codec.js";
import { PresenceRooms, type PresenceDiff } from "../../src/presence.js";
import type { JsonValue } from "../../src/types.js";

function watched(rooms: PresenceRooms, room: string): PresenceDiff[] {
  const seen: PresenceDiff[] = [];
  rooms.subscribe(room, (_state, diff) => seen.push(diff));
  return seen;
}

test("a state then diffs: leaves first, then joins; updates are joins", () => {
  const rooms = new PresenceRooms();
  const diffs = watched(rooms, "r");
  rooms.receive(PRESENCE, { room: "r", joins: { x: 1 }, leaves: {} }); // before the state: ignored
  assert.equal(rooms.state("r").size, 0);
  rooms.receive(PRESENCE_STATE, { room: "r", joins: { a: { u: "ann" } }, leaves: {} });
  rooms.receive(PRESENCE, { room: "r", joins: { b: { u: "bob" } }, leaves: {} });
  rooms.receive(PRESENCE, { room: "r", joins: { b: { u: "bobby" } }, leaves: { a: { u: "ann" } } });
  assert.deepEqual(Object.fromEntries(rooms.state("r")), { b: { u: "bobby" } });
  assert.deepEqual(
    diffs.map((d) => [d.joins, d.leaves]),
    [
      [{ a: { u: "ann" } }, {}],
      [{ b: { u: "bob" } }, {}],
      [{ b: { u: "bobby" } }, { a: { u: "ann" } }],
    ],
  );
  assert.equal(rooms.count("r"), 1);
});

test("a state again (a reconnect) reports only what changed: no spurious leave and join", () => {
  const rooms = new PresenceRooms();
  rooms.receive(PRESENCE_STATE, { room: "r", joins: { a: 1, b: 2 }, leaves: {} });
  const diffs = watched(rooms, "r");
  rooms.receive(PRESENCE_STATE, { room: "r", joins: { a: 1, c: 3 }, leaves: {} });
  assert.deepEqual(diffs, [{ joins: { c: 3 }, leaves: { b: 2 } }]);
  assert.deepEqual([...rooms.state("r").keys()], ["a", "c"]);
});

test("unsubscribe stops the handler; counts-only rooms report counts", () => {
  const rooms = new PresenceRooms();
  const seen: JsonValue[] = [];
  const stop = rooms.subscribe("big", (_state, diff) => seen.push(diff.count ?? null));
  rooms.receive(PRESENCE_STATE, { room: "big", count: 5 });
  rooms.receive(PRESENCE, { room: "big", count: 7 });
  assert.equal(rooms.count("big"), 7);
  stop();
  rooms.receive(PRESENCE, { room: "big", count: 9 });
  assert.deepEqual(seen, [5, 7]);
  rooms.receive(PRESENCE, "junk");
  rooms.receive(PRESENCE, { room: 3 });
  assert.equal(rooms.count("big"), 9);
});
