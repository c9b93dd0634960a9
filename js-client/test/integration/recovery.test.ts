/**
 * Session recovery through a TCP proxy that the test cuts (tests/proxy.py), with the client in
 * Node against real uvicorn processes: every number exactly once and in order across a 2 s cut;
 * past the window or the history bound a new session; single-use tickets with `params`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import MicroSocket, { type MicroSocketCloseEvent, type MicroSocketOptions } from "../../src/index.js";
import { CutProxy, PythonServer, RedisProcess, freePort } from "../python-server.js";

const TIMEOUT = { timeout: 60_000 };
const APP = "js-client/test/integration/recovery_app.py";
const roomy = new PythonServer(APP, await freePort());
const tight = new PythonServer(APP, await freePort(), { RECOVERY_WINDOW: "1", RECOVERY_MAX_MESSAGES: "10" });
const sockets: MicroSocket[] = [];
const proxies: CutProxy[] = [];

before(() => Promise.all([roomy.start(), tight.start()]));
after(async () => {
  for (const socket of sockets) socket.close();
  for (const proxy of proxies) await proxy.stop();
  await Promise.all([roomy.stop(), tight.stop()]);
});

function client(url: string, options: MicroSocketOptions = {}): MicroSocket {
  const socket = MicroSocket(url, { WebSocket, reconnectDelays: [10, 50, 100, 200], ...options });
  sockets.push(socket);
  return socket;
}

async function proxyTo(server: PythonServer): Promise<CutProxy> {
  const proxy = await CutProxy.start(server.port);
  proxies.push(proxy);
  return proxy;
}

function nextOpen(socket: MicroSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no open within 15 s")), 15_000);
    socket.addEventListener("open", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

function nextClose(socket: MicroSocket): Promise<MicroSocketCloseEvent> {
  return new Promise((resolve) => {
    socket.addEventListener("close", (event) => resolve(event as MicroSocketCloseEvent), { once: true });
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !check(); i += 1) await sleep(50);
  assert.ok(check(), `timed out waiting for ${what}`);
}

interface Stats {
  handshakes: Array<{ ticket: string | null; resumed: boolean }>;
  ended: string[];
}

async function stats(server: PythonServer): Promise<Stats> {
  const admin = client(server.url);
  await nextOpen(admin);
  const result = await admin.request<Stats>("stats");
  admin.close();
  return result;
}

/** Subscribe through `proxy`, publish `count` numbers, cut for `cutMs` while they flow. */
async function cutWhilePublishing(server: PythonServer, proxy: CutProxy, room: string, count: number, cutMs: number) {
  const subscriber = client(proxy.url);
  const numbers: number[] = [];
  subscriber.on<number>("n", (n) => numbers.push(n));
  await nextOpen(subscriber);
  const firstId = subscriber.id;
  await subscriber.request("join", room);
  const publisher = client(server.url);
  await nextOpen(publisher);
  publisher.send("publish", { room, count, every: 20 });
  await until(() => numbers.length >= 5, "the first numbers");
  const reopened = nextOpen(subscriber);
  await proxy.cut();
  await sleep(cutMs);
  await proxy.restore();
  await reopened;
  return { subscriber, numbers, firstId };
}

describe("recovery through a cut connection", () => {
  test("in-process memory manager: every number once, in order, same id, recovered", TIMEOUT, async () => {
    const proxy = await proxyTo(roomy);
    const count = 200; // 4 s at 20 ms: the 2 s cut falls in the middle
    const { subscriber, numbers, firstId } = await cutWhilePublishing(roomy, proxy, "numbers", count, 2000);
    assert.equal(subscriber.recovered, true);
    assert.equal(subscriber.id, firstId);
    await until(() => numbers.length >= count, "every number");
    await sleep(200);
    assert.deepEqual(numbers, [...Array(count).keys()]);
    const whoami = await subscriber.request<{ id: string; rooms: string[]; resumed: boolean }>("whoami");
    assert.deepEqual(whoami, { id: firstId, rooms: ["numbers"], resumed: true });
    assert.equal(proxy.port > 0, true);
  });

  test("past the window: not recovered, a new id, on_disconnect ran for the old session", TIMEOUT, async () => {
    const proxy = await proxyTo(tight);
    const subscriber = client(proxy.url);
    await nextOpen(subscriber);
    const firstId = subscriber.id;
    const reopened = nextOpen(subscriber);
    await proxy.cut();
    await sleep(2000); // the window is 1 s
    await proxy.restore();
    await reopened;
    assert.equal(subscriber.recovered, false);
    assert.notEqual(subscriber.id, firstId);
    assert.ok((await stats(tight)).ended.includes(firstId));
  });

  test("past the history bound: not recovered, a new id, on_disconnect ran", TIMEOUT, async () => {
    const proxy = await proxyTo(tight);
    const subscriber = client(proxy.url);
    await nextOpen(subscriber);
    const firstId = subscriber.id;
    await subscriber.request("join", "flood");
    const reopened = nextOpen(subscriber);
    await proxy.cut();
    const publisher = client(tight.url);
    await nextOpen(publisher);
    publisher.send("publish", { room: "flood", count: 30, every: 1 }); // 10 recoverable at most
    await sleep(400); // inside the 1 s window
    await proxy.restore();
    await reopened;
    assert.equal(subscriber.recovered, false);
    assert.notEqual(subscriber.id, firstId);
    await until(() => true, "");
    assert.ok((await stats(tight)).ended.includes(firstId));
  });
});

describe("credentials on reconnect", () => {
  test("a single-use ticket from a params function: the reconnect uses a fresh one", TIMEOUT, async () => {
    const proxy = await proxyTo(roomy);
    let issued = 0;
    const prefix = `fresh-${Date.now()}-`;
    const socket = client(proxy.url, { params: async () => ({ ticket: `${prefix}${++issued}` }) });
    await nextOpen(socket);
    const firstId = socket.id;
    const reopened = nextOpen(socket);
    await proxy.cut();
    await sleep(300);
    await proxy.restore();
    await reopened;
    assert.equal(socket.recovered, true);
    assert.equal(socket.id, firstId);
    const seen = (await stats(roomy)).handshakes.filter((h) => h.ticket?.startsWith(prefix));
    // Attempts during the cut never reached the server; each that did carried a fresh ticket.
    assert.deepEqual(
      seen.map((h) => h.ticket),
      [`${prefix}1`, `${prefix}${issued}`],
    );
    assert.equal(seen.at(-1)?.resumed, true);
  });

  test("a static bad ticket stops after one refusal with 4401: one handshake, no loop", TIMEOUT, async () => {
    const before = (await stats(roomy)).handshakes.filter((h) => h.ticket === "bad").length;
    const socket = client(roomy.url, { params: { ticket: "bad" } });
    const closed = await nextClose(socket);
    assert.equal(closed.code, 4401);
    assert.equal(closed.reason, "ticket spent or invalid: get a new one");
    await sleep(1000); // a loop would have retried several times by now
    assert.equal(socket.readyState, MicroSocket.CLOSED);
    const after = (await stats(roomy)).handshakes.filter((h) => h.ticket === "bad").length;
    assert.equal(after - before, 1);
  });

  test("a spent static ticket: the reconnect is refused once and the socket stops", TIMEOUT, async () => {
    const proxy = await proxyTo(roomy);
    const ticket = `once-${Date.now()}`;
    const socket = client(proxy.url, { params: { ticket } });
    await nextOpen(socket);
    const codes: number[] = [];
    socket.addEventListener("close", (event) => codes.push((event as MicroSocketCloseEvent).code));
    await proxy.cut();
    await sleep(200);
    await proxy.restore();
    await until(() => socket.readyState === MicroSocket.CLOSED, "the refusal");
    assert.equal(codes.at(-1), 4401);
    await sleep(500);
    assert.equal((await stats(roomy)).handshakes.filter((h) => h.ticket === ticket).length, 2);
  });
});

describe("recovery across processes with Redis", () => {
  let redis: RedisProcess;
  let nodes: PythonServer[] = [];
  before(async () => {
    redis = await RedisProcess.start();
    nodes = await Promise.all([freePort(), freePort()]).then((ports) =>
      ports.map((port) => new PythonServer(APP, port, { REDIS_URL: redis.url })),
    );
    await Promise.all(nodes.map((node) => node.start()));
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  test(
    "kill -9 of the process holding the client: the other process resumes it, every number once",
    TIMEOUT,
    async () => {
      const [holder, other] = nodes as [PythonServer, PythonServer];
      const proxy = await proxyTo(holder);
      const subscriber = client(proxy.url);
      const numbers: number[] = [];
      subscriber.on<number>("n", (n) => numbers.push(n));
      await nextOpen(subscriber);
      const firstId = subscriber.id;
      await subscriber.request("join", "numbers");
      const publisher = client(other.url); // publishes from the process that survives
      await nextOpen(publisher);
      const count = 200;
      publisher.send("publish", { room: "numbers", count, every: 20 });
      await until(() => numbers.length >= 5, "the first numbers");
      const reopened = nextOpen(subscriber);
      await proxy.cut();
      await holder.stop("SIGKILL");
      await sleep(2000);
      await proxy.restore(other.port);
      await reopened;
      assert.equal(subscriber.recovered, true);
      assert.equal(subscriber.id, firstId);
      await until(() => numbers.length >= count, "every number");
      await sleep(200);
      assert.deepEqual(numbers, [...Array(count).keys()]);
      const whoami = await subscriber.request<{ id: string; rooms: string[] }>("whoami");
      assert.deepEqual([whoami.id, whoami.rooms], [firstId, ["numbers"]]);
    },
  );
});
