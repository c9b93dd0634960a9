/**
 * Presence across two processes of example.py on one real redis-server: three JS clients in Node
 * spread over both see each other with the right metadata, a clean close reaches the others as
 * a leave diff, kill -9 of a process reaches them within node_ttl; then the example in three
 * Chromium tabs on the two processes lists every name, and a closed tab's name goes.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import WebSocket from "ws";
import { MicroSocket } from "../../src/index.js";
import type { PresenceDiff } from "../../src/presence.js";
import { launchChromium } from "../chromium.js";
import { PythonServer, freePort } from "../python-server.js";
import { RedisServer } from "../redis-server.js";

const NODE_TTL = 1.5;
const WAIT = { timeout: 15_000 };
const redis = new RedisServer();
let workers: PythonServer[] = [];
let browser: Browser;

before(async () => {
  await redis.start();
  const env = { REDIS_URL: redis.url, NODE_TTL: String(NODE_TTL) };
  workers = [
    new PythonServer("example.py", await freePort(), env),
    new PythonServer("example.py", await freePort(), env),
  ];
  await Promise.all(workers.map((worker) => worker.start()));
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  for (const worker of workers) await worker.stop();
  await redis.stop();
});

type Client = { socket: MicroSocket; diffs: { at: number; diff: PresenceDiff }[] };

async function client(url: string, user: string, room: string): Promise<Client> {
  const socket = MicroSocket(url, { WebSocket: WebSocket as never, reconnect: false });
  await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));
  const diffs: Client["diffs"] = [];
  socket.onPresence(room, (_state, diff) => diffs.push({ at: Date.now(), diff }));
  const answer = (await socket.request("join", { user, room })) as { ok: boolean };
  assert.ok(answer.ok);
  return { socket, diffs };
}

async function until(check: () => boolean, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function users(socket: MicroSocket, room: string): string[] {
  return [...socket.presence(room).values()].map((meta) => (meta as { user: string }).user).sort();
}

test("three Node clients on two processes: presence, a clean leave, then kill -9", { timeout: 60_000 }, async () => {
  const [one, two] = workers as [PythonServer, PythonServer];
  const ann = await client(one.url, "ann", "lobby");
  const bob = await client(two.url, "bob", "lobby");
  const cat = await client(two.url, "cat", "lobby");
  for (const c of [ann, bob, cat]) await until(() => users(c.socket, "lobby").join() === "ann,bob,cat");

  const closed = Date.now();
  bob.socket.close();
  for (const c of [ann, cat]) await until(() => users(c.socket, "lobby").join() === "ann,cat");
  const cleanLeave = Math.max(
    ...[ann, cat].map((c) => c.diffs.find((d) => Object.keys(d.diff.leaves).length > 0)!.at - closed),
  );

  const killed = Date.now();
  await two.stop("SIGKILL"); // cat's process
  await until(() => users(ann.socket, "lobby").join() === "ann");
  const killLeave = Date.now() - killed;
  console.log(
    `presence: clean leave seen after ${cleanLeave} ms, kill -9 after ${killLeave} ms (node_ttl ${NODE_TTL} s)`,
  );
  ann.socket.close();
  await two.start();
});

async function joinIn(page: Page, url: string, name: string): Promise<void> {
  await page.goto(url);
  await page.locator('#status[data-state="open"]').waitFor(WAIT);
  await page.fill("#name", name);
  await page.fill("#room", "tabs");
  await page.click("#join");
  await page.locator("#messages li", { hasText: "you joined #tabs" }).waitFor(WAIT);
}

async function members(page: Page, expected: string[]): Promise<void> {
  await page.waitForFunction(
    (names) => [...document.querySelectorAll("#members li")].map((li) => li.textContent).join() === names.join(),
    expected,
    WAIT,
  );
}

test("the example in three tabs on two processes with Redis lists every name", { timeout: 60_000 }, async () => {
  const [one, two] = workers as [PythonServer, PythonServer];
  const context = await browser.newContext();
  const pages = await Promise.all([context.newPage(), context.newPage(), context.newPage()]);
  const [ann, bob, cat] = pages as [Page, Page, Page];
  const errors: string[] = [];
  for (const page of pages) page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await joinIn(ann, one.httpUrl, "ann");
  await joinIn(bob, two.httpUrl, "bob");
  await joinIn(cat, one.httpUrl, "cat");
  for (const page of pages) await members(page, ["ann", "bob", "cat"]);
  await bob.close();
  for (const page of [ann, cat]) await members(page, ["ann", "cat"]);
  await ann.locator("#messages li", { hasText: "bob left" }).waitFor(WAIT);
  assert.deepEqual(errors, []); // no favicon 404 either
  await context.close();
});
