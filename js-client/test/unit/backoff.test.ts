/** The reconnect schedule and its timer, driven by fake timers. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff, DEFAULT_RECONNECT_DELAYS, reconnectDelay } from "../../src/backoff.js";

test("without jitter the delays follow the Phoenix-like schedule, the last one repeating", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => reconnectDelay(n, DEFAULT_RECONNECT_DELAYS, 0));
  assert.deepEqual(delays, [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000, 5000]);
});

test("jitter shortens a delay by up to its fraction, never lengthens it", () => {
  assert.equal(
    reconnectDelay(10, DEFAULT_RECONNECT_DELAYS, 0.5, () => 0),
    5000,
  );
  assert.equal(
    reconnectDelay(10, DEFAULT_RECONNECT_DELAYS, 0.5, () => 0.5),
    3750,
  );
  assert.equal(
    reconnectDelay(10, DEFAULT_RECONNECT_DELAYS, 0.5, () => 0.999999),
    2500,
  );
  assert.equal(
    reconnectDelay(3, [100, 200, 300], 1, () => 0.25),
    225,
  );
});

test("Backoff calls back after each attempt's delay and counts attempts until reset", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let calls = 0;
  const backoff = new Backoff(
    () => (calls += 1),
    (attempt) => attempt * 100,
  );
  assert.equal(backoff.schedule(), 100);
  assert.equal(backoff.pending, true);
  t.mock.timers.tick(99);
  assert.equal(calls, 0);
  t.mock.timers.tick(1);
  assert.equal(calls, 1);
  assert.equal(backoff.pending, false);
  assert.equal(backoff.schedule(), 200);
  t.mock.timers.tick(200);
  assert.equal(calls, 2);
  backoff.reset();
  assert.equal(backoff.attempts, 0);
  assert.equal(backoff.schedule(), 100);
});

test("cancel drops the pending attempt; schedule replaces one", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let calls = 0;
  const backoff = new Backoff(
    () => (calls += 1),
    () => 50,
  );
  backoff.schedule();
  backoff.cancel();
  t.mock.timers.tick(1000);
  assert.equal(calls, 0);
  backoff.schedule();
  backoff.schedule();
  t.mock.timers.tick(1000);
  assert.equal(calls, 1);
});
