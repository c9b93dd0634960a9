/**
 * The client in Node (with `ws`) against the real Python server on a free port: events both ways,
 * acks and errors, rooms, reconnects after the server is killed or stopped and started again,
 * close codes that end reconnecting, and the heartbeat against a frozen server.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import MicroSocket, { type MicroSocketCloseEvent, MicroSocketError, type MicroSocketOptions } from "../../src/index.js";
import { PythonServer, freePort } from "../python-server.js";

const TIMEOUT = { timeout: 30_000 };
const server = new PythonServer("js-client/test/integration/app.py", await freePort());
const sockets: MicroSocket[] = [];

before(() => server.start());
after(async () => {
  for (const socket of sockets) socket.close();
  await server.stop();
});

/** A client of the test server; closed after the tests. */
function client(options: MicroSocketOptions = {}): MicroSocket {
  const socket = MicroSocket(server.url, { WebSocket, reconnectDelays: [10, 50, 100], ...options });
  sockets.push(socket);
  return socket;
}

/** The next `type` event of the socket, failing after 15 s. */
function next(socket: MicroSocket, type: "open" | "close"): Promise<unknown[]> {
  // Not events.once(): it takes anything with an `on` method for an EventEmitter.
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" event within 15 s`)), 15_000);
    socket.addEventListener(type, (event) => (clearTimeout(timer), resolve([event])), { once: true });
  });
}

/** The payload of the next `event` frame, failing after 15 s. */
function nextEvent(socket: MicroSocket, event: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" event within 15 s`)), 15_000);
    const handler = socket.on(event, (payload) => {
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(payload);
    });
  });
}

describe("against the Python server", () => {
  test("events go both ways; payloads keep their JSON type", TIMEOUT, async () => {
    const socket = client();
    await next(socket, "open");
    for (const payload of [{ room: "gamers", user: "ann" }, '{"room": "gamers"}', "", 42, [1.5, null], true]) {
      const echoed = nextEvent(socket, "echo");
      socket.send("echo", payload);
      assert.deepEqual(await echoed, payload);
    }
    const legacy = nextEvent(socket, "echo");
    socket.send("echo");
    assert.equal(await legacy, "");
  });

  test("requests resolve with the handler's return value or reject with the server's error", TIMEOUT, async () => {
    const socket = client();
    assert.equal(await socket.request("add", [1, 2, 3]), 6);
    assert.deepEqual(await socket.request("echo", { nested: [{ a: null }] }), { nested: [{ a: null }] });
    await assert.rejects(
      socket.request("fail"),
      (error: unknown) => error instanceof MicroSocketError && error.code === "handler_error",
    );
    await assert.rejects(
      socket.request("no such event"),
      (error: unknown) => error instanceof MicroSocketError && error.code === "unknown_event",
    );
    assert.equal(await socket.request("add", [40, 2]), 42, "the connection stays usable after errors");
  });

  test("a broadcast to a room reaches every member", TIMEOUT, async () => {
    const ann = client();
    const bob = client();
    assert.deepEqual(await ann.request("join", "lobby"), ["lobby"]);
    assert.deepEqual(await bob.request("join", "lobby"), ["lobby"]);
    const heardByBob = nextEvent(bob, "shout");
    const heardByAnn = nextEvent(ann, "shout");
    ann.send("shout", { room: "lobby", text: "hello" });
    assert.equal(await heardByBob, "hello");
    assert.equal(await heardByAnn, "hello");
  });

  test(
    "clients reconnect and rejoin their rooms after the server is killed, and after it shuts down",
    TIMEOUT,
    async () => {
      const ann = client();
      const bob = client();
      for (const socket of [ann, bob]) {
        // A server shutting down may still accept a reconnect and cut it (1012) before the rejoin
        // is answered; that rejoin rejects with `disconnected`, and the next open joins again.
        socket.onopen = () => void socket.request("join", "survivors").catch(() => undefined);
      }
      await Promise.all([next(ann, "open"), next(bob, "open")]);
      assert.deepEqual(await ann.request("rooms"), ["survivors"]);

      for (const [signal, code] of [
        ["SIGKILL", 1006],
        ["SIGTERM", 1001],
      ] as const) {
        const closed = next(ann, "close");
        await server.stop(signal);
        const [event] = (await closed) as [MicroSocketCloseEvent];
        assert.equal(event.code, code);
        assert.equal(ann.readyState, MicroSocket.CONNECTING);
        ann.send("shout", { room: "survivors", text: `sent while down (${signal})` });
        const reopened = Promise.all([next(ann, "open"), next(bob, "open")]);
        const heardByAnn = nextEvent(ann, "shout");
        await server.start();
        await reopened;
        // Ann's queued shout reaches Ann herself: it went out after her rejoin.
        assert.equal(await heardByAnn, `sent while down (${signal})`);
        assert.deepEqual(await bob.request("rooms"), ["survivors"]);
        const heardByBob = nextEvent(bob, "shout");
        ann.send("shout", { room: "survivors", text: "back" });
        assert.equal(await heardByBob, "back");
        assert.deepEqual(await bob.request("rooms"), ["survivors"]);
      }
    },
  );

  for (const code of [1000, 1008]) {
    test(`a server close with ${code} ends reconnecting`, TIMEOUT, async () => {
      const socket = client();
      await next(socket, "open");
      const closed = next(socket, "close");
      socket.send("close me", code);
      const [event] = (await closed) as [MicroSocketCloseEvent];
      assert.equal(event.code, code);
      assert.equal(socket.readyState, MicroSocket.CLOSED);
      assert.throws(() => socket.send("echo"), /closed/);
    });
  }

  test("the heartbeat gets pongs, finds a frozen server dead, and reconnects once it thaws", TIMEOUT, async () => {
    const socket = client({ heartbeatInterval: 100, heartbeatTimeout: 300 });
    const pong = new Promise<unknown>((resolve) => {
      socket.addEventListener("message", (event) => {
        if (String((event as MessageEvent).data).startsWith('{"event":"ms:pong"')) resolve(undefined);
      });
    });
    await next(socket, "open");
    await pong;
    const closed = next(socket, "close");
    server.pause(true);
    try {
      const [event] = (await closed) as [MicroSocketCloseEvent];
      assert.equal(event.code, 4000);
      assert.equal(event.reason, "heartbeat timeout");
    } finally {
      server.pause(false);
    }
    await next(socket, "open");
    assert.equal(await socket.request("add", [1, 1]), 2);
  });
});
