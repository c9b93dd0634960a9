/**
 * The chat example in real browser tabs: example.py on a free port, example.html in three tabs of
 * headless Chromium (plus one opened from disk, Origin null). Messages cross tabs, a closed tab
 * shows as "left", and every tab recovers when the server is killed and started again.
 * Saves artifacts/chat-two-tabs.png: two tabs side by side.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import WebSocket from "ws";
import { launchChromium } from "../chromium.js";
import { PythonServer, REPO, freePort } from "../python-server.js";

const WAIT = { timeout: 15_000 };
const server = new PythonServer("example.py", await freePort());
let browser: Browser;

before(async () => {
  await server.start();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server.stop();
});

/** A tab of the chat that has joined `room` as `name`. */
async function joinIn(page: Page, url: string, name: string, room = "lobby"): Promise<Page> {
  await page.goto(url);
  await page.locator('#status[data-state="open"]').waitFor(WAIT);
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join");
  await page.locator("#messages li", { hasText: `you joined #${room}` }).waitFor(WAIT);
  return page;
}

async function says(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function sees(page: Page, text: string): Promise<void> {
  await page.locator("#messages li", { hasText: text }).last().waitFor(WAIT);
}

async function members(page: Page, expected: string[]): Promise<void> {
  await page.waitForFunction(
    (names) => [...document.querySelectorAll("#members li")].map((li) => li.textContent).join() === names.join(),
    expected,
    WAIT,
  );
}

/** Two screenshots side by side in one PNG, rendered by the browser itself. */
async function sideBySide(left: Buffer, right: Buffer): Promise<Buffer> {
  const page = await browser.newPage({ viewport: { width: 1344, height: 544 } });
  const img = (png: Buffer) =>
    `<img src="data:image/png;base64,${png.toString("base64")}" style="width:640px;border-radius:8px;box-shadow:0 2px 10px #0003">`;
  await page.setContent(
    `<body style="margin:0;padding:16px;display:flex;gap:32px;background:#dfe3ee">${img(left)}${img(right)}</body>`,
  );
  const png = await page.screenshot();
  await page.close();
  return png;
}

test("three tabs chat, see who left, and come back after the server restarts", { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
  const [ann, bob, cat] = await Promise.all([context.newPage(), context.newPage(), context.newPage()]);
  assert.ok(ann && bob && cat);
  await joinIn(ann, server.httpUrl, "ann");
  await joinIn(bob, server.httpUrl, "bob");
  await joinIn(cat, server.httpUrl, "cat");
  await sees(ann, "cat joined");
  await members(ann, ["ann", "bob", "cat"]);

  await says(ann, "hello from ann");
  await sees(bob, "hello from ann");
  await sees(cat, "hello from ann");
  await says(bob, "hi ann, bob here");
  await sees(ann, "hi ann, bob here");
  await sees(cat, "hi ann, bob here");

  await cat.close();
  await sees(ann, "cat left");
  await sees(bob, "cat left");
  await members(bob, ["ann", "bob"]);

  mkdirSync(`${REPO}artifacts`, { recursive: true });
  writeFileSync(`${REPO}artifacts/chat-two-tabs.png`, await sideBySide(await ann.screenshot(), await bob.screenshot()));

  await server.stop("SIGKILL");
  await ann.locator('#status[data-state="connecting"]', { hasText: "reconnecting" }).waitFor(WAIT);
  await server.start();
  for (const page of [ann, bob]) await page.locator('#status[data-state="open"]').waitFor(WAIT);
  await members(ann, ["ann", "bob"]);
  await members(bob, ["ann", "bob"]);
  await says(bob, "still here after the restart");
  await sees(ann, "still here after the restart");
  await context.close();
});

test("example.html opened from disk talks to the server (Origin null)", { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  const other = await joinIn(await browser.newPage(), server.httpUrl, "eve", "disk");
  const fileUrl = `${pathToFileURL(`${REPO}example.html`).href}?server=${encodeURIComponent(server.url)}`;
  await joinIn(page, fileUrl, "dora", "disk");
  await sees(other, "dora joined");
  await says(page, "sent from a file:// page");
  await sees(other, "sent from a file:// page");
  await page.close();
  await other.close();
});

test("example.py serves its three files only, and refuses pages of other sites", { timeout: 30_000 }, async () => {
  const page = await fetch(server.httpUrl);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  const client = await fetch(`${server.httpUrl}js-client/dist/microsockets.global.js`, { method: "HEAD" });
  assert.equal(client.status, 200);
  assert.match(client.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.equal((await fetch(`${server.httpUrl}example.py`)).status, 404);
  assert.equal((await fetch(server.httpUrl, { method: "POST" })).status, 405);

  const status = (origin: string) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(server.url, { origin });
      ws.on("open", () => (ws.close(), resolve(101)));
      ws.on("unexpected-response", (_request, response) => (ws.terminate(), resolve(response.statusCode ?? 0)));
      ws.on("error", reject);
    });
  assert.equal(await status("https://evil.example"), 403);
  assert.equal(await status(`http://localhost:${server.port}`), 101);
  assert.equal(await status("null"), 101);
});
