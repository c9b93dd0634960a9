/**
 * Recovery and credentials in a real Chromium tab: the chat example on Redis across a server
 * restart shows every message once and in order with "reconnected, nothing missed"; a refusal
 * reaches the page as 4401 (no retry for a static ticket), and a params function reconnects
 * with a fresh single-use ticket through a cut connection.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Page } from "playwright-core";
import WebSocket from "ws";
import MicroSocket from "../../src/index.js";
import { launchChromium } from "../chromium.js";
import { CutProxy, PythonServer, REPO, RedisProcess, freePort } from "../python-server.js";

const WAIT = { timeout: 20_000 };
let browser: Browser;
let redis: RedisProcess;
let chat: PythonServer;
let otherChat: PythonServer;
let tickets: PythonServer;

before(async () => {
  redis = await RedisProcess.start();
  chat = new PythonServer("example.py", await freePort(), { REDIS_URL: redis.url });
  otherChat = new PythonServer("example.py", await freePort(), { REDIS_URL: redis.url });
  tickets = new PythonServer("js-client/test/integration/recovery_app.py", await freePort());
  await Promise.all([chat.start(), otherChat.start(), tickets.start()]);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await Promise.all([chat.stop(), otherChat.stop(), tickets.stop()]);
  await redis.stop();
});

test(
  "the chat on Redis across a server restart: no gap, no duplicate, nothing missed",
  { timeout: 120_000 },
  async () => {
    const page = await browser.newPage();
    await page.goto(chat.httpUrl);
    await page.locator('#status[data-state="open"]').waitFor(WAIT);
    await page.fill("#name", "ann");
    await page.fill("#room", "lobby");
    await page.click("#join");
    await page.locator("#messages li", { hasText: "you joined #lobby" }).waitFor(WAIT);

    // The publisher is on another process of the same Redis, which keeps running: what the page
    // must not miss is what that process sends while the page's own process restarts.
    const publisher = MicroSocket(otherChat.url, { WebSocket, reconnectDelays: [10, 50, 100, 200] });
    await new Promise((resolve) => publisher.addEventListener("open", resolve, { once: true }));
    await publisher.request("join", { user: "pub", room: "lobby" });
    const count = 120;
    const sending = (async () => {
      for (let n = 0; n < count; n += 1) {
        publisher.send("message", { text: `#${n}` }); // buffered while the server is away
        await sleep(25);
      }
    })();
    await page.locator("#messages li", { hasText: "#10" }).waitFor(WAIT);
    await chat.stop("SIGTERM");
    await chat.start();
    await sending;
    await page.locator("#messages li", { hasText: `#${count - 1}` }).waitFor(WAIT);
    await page.locator("#messages li", { hasText: "reconnected, nothing missed" }).waitFor(WAIT);
    const numbers = await page.$$eval("#messages li", (items) =>
      items.map((li) => li.textContent ?? "").filter((text) => /^pub#\d+$/.test(text)),
    );
    assert.deepEqual(
      numbers,
      [...Array(count).keys()].map((n) => `pub#${n}`),
    );
    assert.equal(await page.locator("#messages li", { hasText: "history lost" }).count(), 0);
    publisher.close();
    await page.close();
  },
);

/** A page of the origin `url` (the tickets server's 404 page) with the client's browser build. */
async function clientPage(url = tickets.httpUrl): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(url);
  await page.addScriptTag({ content: readFileSync(`${REPO}js-client/dist/microsockets.global.js`, "utf8") });
  return page;
}

interface Handshake {
  ticket: string | null;
  resumed: boolean;
}

async function handshakes(which: (ticket: string) => boolean): Promise<Handshake[]> {
  const admin = MicroSocket(tickets.url, { WebSocket });
  await new Promise((resolve) => admin.addEventListener("open", resolve, { once: true }));
  const stats = await admin.request<{ handshakes: Handshake[] }>("stats");
  admin.close();
  return stats.handshakes.filter((h) => h.ticket !== null && which(h.ticket));
}

// Scripts run in the page as strings: the test's own functions carry build helpers with them.
test("in Chromium a static bad ticket is refused once with 4401, and nothing loops", { timeout: 60_000 }, async () => {
  const page = await clientPage();
  const before = (await handshakes((t) => t === "bad")).length;
  const closes = await page.evaluate(`new Promise((resolve) => {
    const codes = [];
    const socket = MicroSocket(${JSON.stringify(tickets.url)}, { params: { ticket: "bad" }, reconnectDelays: [10] });
    socket.onclose = (event) => codes.push([event.code, event.reason, socket.readyState]);
    setTimeout(() => resolve(codes), 1500);
  })`);
  assert.deepEqual(closes, [[4401, "ticket spent or invalid: get a new one", 3]]);
  assert.equal((await handshakes((t) => t === "bad")).length - before, 1);
  await page.close();
});

test(
  "in Chromium a params function reconnects through a cut with a fresh ticket, same session",
  { timeout: 60_000 },
  async () => {
    const proxy = await CutProxy.start(tickets.port);
    const page = await clientPage(`http://127.0.0.1:${proxy.port}/`);
    const prefix = `chromium-${Date.now()}-`;
    await page.evaluate(`new Promise((resolve) => {
    let issued = 0;
    const socket = MicroSocket(${JSON.stringify(proxy.url)}, {
      params: async () => ({ ticket: ${JSON.stringify(prefix)} + ++issued }),
      reconnectDelays: [10, 50, 100],
    });
    globalThis.opens = [];
    socket.onopen = () => {
      globalThis.opens.push([socket.id, socket.recovered]);
      resolve();
    };
  })`);
    await proxy.cut();
    await sleep(300);
    await proxy.restore();
    await page.waitForFunction("globalThis.opens.length === 2", null, WAIT);
    const opens = (await page.evaluate("globalThis.opens")) as Array<[string, boolean]>;
    assert.equal(opens[1]?.[0], opens[0]?.[0]);
    assert.deepEqual(
      opens.map(([, recovered]) => recovered),
      [false, true],
    );
    const seen = await handshakes((t) => t.startsWith(prefix));
    assert.equal(new Set(seen.map((h) => h.ticket)).size, seen.length);
    assert.deepEqual(
      seen.map((h) => h.resumed),
      [false, true],
    );
    await page.close();
    await proxy.stop();
  },
);
