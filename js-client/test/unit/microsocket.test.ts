/** The client against a fake WebSocket with fake timers: every behaviour, no network, no waiting. */
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import MicroSocket, { MicroSocketCloseEvent, MicroSocketError, type MicroSocketOptions } from "../../src/index.js";
import { type FakeWebSocket, fakeWebSocket } from "../fake-websocket.js";

/** A MicroSocket on a fake WebSocket, with fake timers and jitter pinned to none. */
function setup(t: TestContext, options: MicroSocketOptions = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  t.mock.method(Math, "random", () => 0);
  const fake = fakeWebSocket();
  const socket = MicroSocket("ws://test/", { WebSocket: fake.WebSocket, ...options });
  const last = (): FakeWebSocket => {
    const ws = fake.sockets.at(-1);
    assert.ok(ws, "no WebSocket was created");
    return ws;
  };
  return { socket, sockets: fake.sockets, last, refuse: fake.refuse };
}

function isError(code: string) {
  return (error: unknown) => error instanceof MicroSocketError && error.code === code;
}

describe("construction", () => {
  test("works with and without new, and keeps the WebSocket constants", () => {
    const { WebSocket, sockets } = fakeWebSocket();
    const a = MicroSocket("ws://a/", "chat", { WebSocket });
    const b = new MicroSocket("ws://b/", ["x", "y"], { WebSocket });
    assert.ok(a instanceof MicroSocket);
    assert.ok(b instanceof MicroSocket);
    assert.equal(a.url, "ws://a/");
    assert.equal(sockets[0]?.protocols, "chat");
    assert.deepEqual(sockets[1]?.protocols, ["x", "y"]);
    assert.deepEqual([MicroSocket.CONNECTING, MicroSocket.OPEN, MicroSocket.CLOSING, MicroSocket.CLOSED], [0, 1, 2, 3]);
    assert.equal(a.OPEN, 1);
    assert.equal(a.readyState, MicroSocket.CONNECTING);
    a.close();
    b.close();
  });

  test("takes the options as second argument when there are no protocols", () => {
    const { WebSocket, sockets } = fakeWebSocket();
    const socket = MicroSocket(new URL("ws://c/room"), { WebSocket });
    assert.equal(sockets[0]?.url, "ws://c/room?ms_v=2");
    assert.equal(sockets[0]?.protocols, undefined);
    socket.close();
  });

  test("says how to fix a missing WebSocket", { skip: "WebSocket" in globalThis && "this Node has one" }, () => {
    assert.throws(() => MicroSocket("ws://x/"), /pass one, e\.g\. MicroSocket\(url, \{ WebSocket \}\)/);
  });

  test("exposes protocol and bufferedAmount of the current connection", (t) => {
    const { socket, last } = setup(t);
    assert.equal(socket.protocol, "");
    last().accept("chat.v2");
    last().bufferedAmount = 42;
    assert.equal(socket.protocol, "chat.v2");
    assert.equal(socket.bufferedAmount, 42);
    socket.close();
  });
});

describe("events", () => {
  test("on() handlers get the payload, the event name and the message event", (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const seen: unknown[] = [];
    socket.on("joined", (payload, event, messageEvent) => seen.push(payload, event, messageEvent.data));
    last().receive({ event: "joined", payload: { user: "ann" } });
    last().receive({ event: "joined" });
    last().receive({ event: "joined", payload: '{"still":"a string"}' });
    assert.deepEqual(seen, [
      { user: "ann" },
      "joined",
      '{"event":"joined","payload":{"user":"ann"}}',
      "",
      "joined",
      '{"event":"joined"}',
      '{"still":"a string"}',
      "joined",
      '{"event":"joined","payload":"{\\"still\\":\\"a string\\"}"}',
    ]);
  });

  test("off() removes one handler, or all of an event", (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const calls: string[] = [];
    const a = socket.on("e", () => calls.push("a"));
    socket.on("e", () => calls.push("b"));
    socket.on("other", () => calls.push("other"));
    last().receive({ event: "e", payload: "" });
    socket.off("e", a);
    last().receive({ event: "e", payload: "" });
    socket.off("e");
    last().receive({ event: "e", payload: "" });
    last().receive({ event: "other", payload: "" });
    assert.deepEqual(calls, ["a", "b", "b", "other"]);
    socket.off("never registered");
  });

  test("a throwing handler does not stop the others; its error is rethrown apart", (t) => {
    const { socket, last } = setup(t);
    const rethrown: Array<() => void> = [];
    t.mock.method(globalThis, "queueMicrotask", (callback: () => void) => rethrown.push(callback));
    last().accept();
    const calls: string[] = [];
    socket.on("e", () => {
      throw new Error("boom");
    });
    socket.on("e", () => calls.push("second"));
    last().receive({ event: "e", payload: "" });
    assert.deepEqual(calls, ["second"]);
    assert.equal(rethrown.length, 1);
    assert.throws(() => rethrown[0]?.(), /boom/);
  });

  test("onmessage and message listeners see every frame, protocol or not", (t) => {
    const { socket, last } = setup(t);
    const viaProperty: unknown[] = [];
    const viaListener: unknown[] = [];
    socket.onmessage = (event) => viaProperty.push(event.data);
    socket.addEventListener("message", (event) => viaListener.push((event as MessageEvent).data));
    last().accept();
    last().receive({ event: "e", payload: 1 });
    last().receive("not json");
    const session = '{"event":"ms:session","payload":{"id":"fake-id","token":null,"recovered":false}}';
    assert.deepEqual(viaProperty, [session, '{"event":"e","payload":1}', "not json"]);
    assert.deepEqual(viaListener, viaProperty);
  });

  test("ms:pong and stale acks never reach on() handlers; ms:error without id does", (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const seen: unknown[] = [];
    socket.on("ms:pong", () => seen.push("pong"));
    socket.on("ms:ack", () => seen.push("ack"));
    socket.on("ms:error", (payload) => seen.push(payload));
    last().receive({ event: "ms:pong", payload: 1 });
    last().receive({ event: "ms:ack", payload: null, id: 99 });
    last().receive({ event: "ms:error", payload: { code: "invalid_json", message: "m" } });
    assert.deepEqual(seen, [{ code: "invalid_json", message: "m" }]);
  });

  test("onerror and error listeners hear the WebSocket's errors", (t) => {
    const { socket, last } = setup(t);
    let errors = 0;
    socket.onerror = () => (errors += 1);
    socket.addEventListener("error", () => (errors += 1));
    last().fail();
    assert.equal(errors, 2);
  });
});

describe("send and the send buffer", () => {
  test("sends exact frames; the payload defaults to an empty string", (t) => {
    const { socket, last } = setup(t);
    last().accept();
    socket.send("user joined");
    socket.send("join", JSON.stringify({ room: "gamers" }));
    socket.send("join", { room: "gamers", user: "ann" });
    socket.send("n", null);
    assert.deepEqual(last().sent, [
      '{"event":"user joined","payload":""}',
      '{"event":"join","payload":"{\\"room\\":\\"gamers\\"}"}',
      '{"event":"join","payload":{"room":"gamers","user":"ann"}}',
      '{"event":"n","payload":null}',
    ]);
  });

  test("refuses empty and reserved event names", (t) => {
    const { socket, last } = setup(t);
    last().accept();
    assert.throws(() => socket.send(""), TypeError);
    assert.throws(() => socket.send("ms:ping"), /reserved/);
    assert.throws(() => socket.request("ms:ack"), /reserved/);
    assert.deepEqual(last().sent, []);
  });

  test("frames sent while connecting wait, and go after what onopen sends", (t) => {
    const { socket, last } = setup(t);
    socket.onopen = () => socket.send("join", "room");
    socket.send("say", "first");
    socket.send("say", "second");
    assert.equal(socket.buffered, 2);
    last().accept();
    assert.deepEqual(
      last().frames.map((f) => [f.event, f.payload]),
      [
        ["join", "room"],
        ["say", "first"],
        ["say", "second"],
      ],
    );
    assert.equal(socket.buffered, 0);
  });

  test("a full buffer refuses the new frame with buffer_full and keeps the old ones", (t) => {
    const { socket, last } = setup(t, { sendBufferSize: 2 });
    socket.send("a");
    socket.send("b");
    assert.throws(() => socket.send("c"), isError("buffer_full"));
    last().accept();
    assert.deepEqual(
      last().frames.map((f) => f.event),
      ["a", "b"],
    );
  });

  test("sendBufferSize 0 refuses any send while not connected", (t) => {
    const { socket } = setup(t, { sendBufferSize: 0 });
    assert.throws(() => socket.send("a"), isError("buffer_full"));
  });

  test("frames sent while reconnecting go out on the next connection", (t) => {
    const { socket, sockets, last } = setup(t);
    last().accept();
    last().drop(1006);
    socket.send("while away");
    t.mock.timers.tick(10);
    assert.equal(sockets.length, 2);
    last().accept();
    assert.deepEqual(
      last().frames.map((f) => f.event),
      ["while away"],
    );
  });

  test("send after close() throws closed", (t) => {
    const { socket, last } = setup(t);
    last().accept();
    socket.close();
    assert.throws(() => socket.send("late"), isError("closed"));
  });
});

describe("reconnect", () => {
  test("follows the back-off schedule, fires onclose/onopen each time, resets after success", (t) => {
    const { socket, sockets, last } = setup(t);
    const log: string[] = [];
    socket.onopen = () => log.push("open");
    socket.onclose = (event) => log.push(`close ${event.code} ${socket.readyState}`);
    last().accept();
    const waited: number[] = [];
    for (let attempt = 0; attempt < 11; attempt += 1) {
      last().drop(1006);
      const before = sockets.length;
      let ms = 0;
      while (sockets.length === before) {
        t.mock.timers.tick(1);
        ms += 1;
      }
      waited.push(ms);
    }
    assert.deepEqual(waited, [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000]);
    last().accept();
    last().drop(1006);
    t.mock.timers.tick(10);
    assert.equal(sockets.length, 13, "the schedule starts over after a successful open");
    assert.deepEqual(log.slice(0, 3), ["open", "close 1006 0", "close 1006 0"]);
    assert.equal(log.filter((entry) => entry === "open").length, 2);
  });

  test("the delays are configurable", (t) => {
    const { sockets, last } = setup(t, { reconnectDelays: [300] });
    last().drop(1006);
    t.mock.timers.tick(299);
    assert.equal(sockets.length, 1);
    t.mock.timers.tick(1);
    assert.equal(sockets.length, 2);
  });

  for (const code of [1001, 1006, 1011, 1012, 1013, 4000, 4999]) {
    test(`retries after close code ${code}`, (t) => {
      const { socket, sockets, last } = setup(t);
      last().accept();
      last().drop(code);
      assert.equal(socket.readyState, MicroSocket.CONNECTING);
      t.mock.timers.tick(10);
      assert.equal(sockets.length, 2);
    });
  }

  for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010]) {
    test(`stops for good after close code ${code}`, (t) => {
      const { socket, sockets, last } = setup(t);
      let closeCode = 0;
      socket.onclose = (event) => (closeCode = event.code);
      last().accept();
      const request = assert.rejects(socket.request("q"), isError("disconnected"));
      last().drop(code);
      assert.equal(socket.readyState, MicroSocket.CLOSED);
      assert.equal(closeCode, code);
      t.mock.timers.tick(60_000);
      assert.equal(sockets.length, 1);
      assert.throws(() => socket.send("e"), isError("closed"));
      return request;
    });
  }

  test("reconnect: false stops after the first close", (t) => {
    const { socket, sockets, last } = setup(t, { reconnect: false });
    last().fail();
    last().drop(1006);
    assert.equal(socket.readyState, MicroSocket.CLOSED);
    t.mock.timers.tick(60_000);
    assert.equal(sockets.length, 1);
  });

  test("a WebSocket constructor that throws on reconnect counts as a failed attempt", (t) => {
    const { sockets, last, refuse } = setup(t);
    last().accept();
    last().drop(1006);
    refuse(1);
    t.mock.timers.tick(10);
    assert.equal(sockets.length, 1, "the refused attempt created nothing");
    t.mock.timers.tick(50);
    assert.equal(sockets.length, 2);
  });

  test("a handshake that hangs is given up after connectTimeout, then retried", (t) => {
    const { socket, sockets, last } = setup(t, { connectTimeout: 1000 });
    const closes: MicroSocketCloseEvent[] = [];
    socket.onclose = (event) => closes.push(event);
    t.mock.timers.tick(999);
    assert.equal(closes.length, 0);
    t.mock.timers.tick(1);
    assert.deepEqual(sockets[0]?.closeCalls, [[undefined, undefined]]);
    assert.deepEqual(
      closes.map((event) => [event.code, event.reason, event.wasClean]),
      [[1006, "connect timeout", false]],
    );
    t.mock.timers.tick(10);
    assert.equal(sockets.length, 2);
    last().accept();
    t.mock.timers.tick(60_000);
    assert.equal(socket.readyState, MicroSocket.OPEN, "an open connection has no connect timeout");
  });

  test("connectTimeout 0 waits for the handshake as long as it takes", (t) => {
    const { socket, sockets } = setup(t, { connectTimeout: 0 });
    t.mock.timers.tick(10 * 60_000);
    assert.equal(sockets.length, 1);
    assert.equal(socket.readyState, MicroSocket.CONNECTING);
  });

  test("events of a replaced WebSocket are ignored", (t) => {
    const { socket, last } = setup(t);
    const seen: string[] = [];
    socket.on("e", () => seen.push("e"));
    const first = last();
    first.accept();
    first.drop(1006);
    t.mock.timers.tick(10);
    first.receive({ event: "e", payload: "" });
    first.drop(1006);
    first.accept();
    assert.deepEqual(seen, []);
    assert.equal(socket.readyState, MicroSocket.CONNECTING);
  });
});

describe("close()", () => {
  test("closes the WebSocket, then reports CLOSED once it is closed, and never reconnects", (t) => {
    const { socket, sockets, last } = setup(t);
    const codes: number[] = [];
    socket.addEventListener("close", (event) => codes.push((event as MicroSocketCloseEvent).code));
    last().accept();
    socket.close(4001, "bye");
    assert.deepEqual(last().closeCalls, [[4001, "bye"]]);
    assert.equal(socket.readyState, MicroSocket.CLOSING);
    last().drop(4001, "bye", true);
    assert.equal(socket.readyState, MicroSocket.CLOSED);
    t.mock.timers.tick(60_000);
    assert.equal(sockets.length, 1);
    assert.deepEqual(codes, [4001]);
    socket.close();
    assert.deepEqual(codes, [4001], "a second close() does nothing");
  });

  test("while waiting to reconnect, closes at once with a close event", (t) => {
    const { socket, sockets, last } = setup(t);
    last().accept();
    last().drop(1006);
    let event: MicroSocketCloseEvent | undefined;
    socket.onclose = (e) => (event = e);
    socket.close();
    assert.equal(socket.readyState, MicroSocket.CLOSED);
    assert.ok(event instanceof MicroSocketCloseEvent);
    assert.deepEqual([event.code, event.reason, event.wasClean], [1000, "", true]);
    t.mock.timers.tick(60_000);
    assert.equal(sockets.length, 1);
  });

  test("refuses close codes a WebSocket refuses", (t) => {
    const { socket } = setup(t);
    assert.throws(() => socket.close(1001), RangeError);
    assert.equal(socket.readyState, MicroSocket.CONNECTING);
    socket.close();
  });

  test("rejects pending requests with closed and drops the send buffer", async (t) => {
    const { socket, last } = setup(t);
    socket.send("queued");
    const request = socket.request("q");
    socket.close();
    await assert.rejects(request, isError("closed"));
    last().accept();
    assert.deepEqual(last().sent, []);
  });
});

describe("request()", () => {
  test("resolves with the ack payload; each request has its own id", async (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const first = socket.request("add", [1, 2]);
    const second = socket.request("add", [3, 4]);
    const [a, b] = last().frames;
    assert.deepEqual(a, { event: "add", payload: [1, 2], id: 1 });
    assert.deepEqual(b, { event: "add", payload: [3, 4], id: 2 });
    last().receive({ event: "ms:ack", payload: { sum: 7 }, id: 2 });
    last().receive({ event: "ms:ack", payload: null, id: 1 });
    assert.deepEqual(await second, { sum: 7 });
    assert.equal(await first, null);
  });

  test("rejects with the server's error code and message", async (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const request = socket.request("nope");
    last().receive({
      event: "ms:error",
      payload: { code: "unknown_event", message: "no handler for event 'nope'" },
      id: 1,
    });
    await assert.rejects(request, (error: unknown) => {
      assert.ok(error instanceof MicroSocketError);
      assert.equal(error.code, "unknown_event");
      assert.match(error.message, /server refused "nope": no handler for event 'nope'/);
      return true;
    });
  });

  test("times out with the socket's default or its own timeout, ignoring a late ack", async (t) => {
    const { socket, last } = setup(t, { requestTimeout: 500 });
    last().accept();
    const byDefault = assert.rejects(socket.request("slow"), isError("timeout"));
    const own = assert.rejects(socket.request("slower", "", { timeout: 2000 }), /got no answer within 2000 ms/);
    t.mock.timers.tick(500);
    await byDefault;
    last().receive({ event: "ms:ack", payload: "late", id: 1 });
    t.mock.timers.tick(1500);
    await own;
  });

  test("a request sent on a lost connection rejects with disconnected; a queued one survives", async (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const sent = assert.rejects(socket.request("sent"), isError("disconnected"));
    last().drop(1006);
    const queued = socket.request("queued");
    await sent;
    t.mock.timers.tick(10);
    last().accept();
    assert.deepEqual(last().frames, [{ event: "queued", payload: "", id: 2 }]);
    last().receive({ event: "ms:ack", payload: "ok", id: 2 });
    assert.equal(await queued, "ok");
  });

  test("a request that times out in the buffer is not sent later", async (t) => {
    const { socket, last } = setup(t);
    const request = assert.rejects(socket.request("q", "", { timeout: 100 }), isError("timeout"));
    t.mock.timers.tick(100);
    await request;
    last().accept();
    assert.deepEqual(last().sent, []);
  });

  test("a full buffer rejects the request with buffer_full", async (t) => {
    const { socket } = setup(t, { sendBufferSize: 0 });
    await assert.rejects(socket.request("q"), isError("buffer_full"));
  });
});

describe("heartbeat", () => {
  test("pings every interval while open; any frame keeps the connection", (t) => {
    const { socket, sockets, last } = setup(t, { heartbeatInterval: 1000, heartbeatTimeout: 500 });
    last().accept();
    t.mock.timers.tick(1000);
    assert.deepEqual(last().frames, [{ event: "ms:ping", payload: 1 }]);
    last().receive({ event: "ms:pong", payload: 1 });
    t.mock.timers.tick(1000);
    t.mock.timers.tick(400);
    last().receive({ event: "chat", payload: "busy" });
    t.mock.timers.tick(5000);
    last().receive({ event: "ms:pong", payload: 7 });
    assert.equal(sockets.length, 1);
    assert.equal(socket.readyState, MicroSocket.OPEN);
    assert.equal(last().frames.length, 7);
  });

  test("a silent connection is dropped with 4000 and reconnected", (t) => {
    const { socket, sockets, last } = setup(t, { heartbeatInterval: 1000, heartbeatTimeout: 500 });
    const pending = assert.rejects(socket.request("q"), isError("disconnected"));
    let closed: MicroSocketCloseEvent | undefined;
    socket.onclose = (event) => (closed = event);
    last().accept();
    // Tick to each timer's due time: Node 20's fake timers start timers set inside a callback
    // from the end of the tick, not from the callback's own time.
    t.mock.timers.tick(1000);
    t.mock.timers.tick(499);
    assert.equal(socket.readyState, MicroSocket.OPEN);
    t.mock.timers.tick(1);
    assert.deepEqual(sockets[0]?.closeCalls, [[4000, "heartbeat timeout"]]);
    assert.deepEqual([closed?.code, closed?.reason, closed?.wasClean], [4000, "heartbeat timeout", false]);
    assert.equal(socket.readyState, MicroSocket.CONNECTING);
    t.mock.timers.tick(10);
    assert.equal(sockets.length, 2);
    sockets[0]?.drop(1006);
    assert.equal(socket.readyState, MicroSocket.CONNECTING, "the dropped socket's late close is ignored");
    return pending;
  });

  test("heartbeatInterval 0 sends no pings", (t) => {
    const { last } = setup(t, { heartbeatInterval: 0 });
    last().accept();
    t.mock.timers.tick(10 * 60_000);
    assert.deepEqual(last().sent, []);
  });

  test("pings stop while disconnected", (t) => {
    const { sockets, last } = setup(t, { heartbeatInterval: 1000, reconnect: false });
    last().accept();
    last().drop(1006);
    t.mock.timers.tick(10_000);
    assert.deepEqual(sockets[0]?.sent, []);
  });
});

describe("sessions and recovery", () => {
  const query = (ws: FakeWebSocket) => Object.fromEntries(new URL(ws.url).searchParams);

  test("id and recovered come from ms:session; a reconnect claims the session with the last offset", (t) => {
    const { socket, last } = setup(t);
    assert.deepEqual(query(last()), { ms_v: "2" });
    const opened: Array<[string, boolean]> = [];
    socket.onopen = () => opened.push([socket.id, socket.recovered]);
    last().accept("", { id: "abc", token: "secret", recovered: false });
    last().receive({ event: "n", payload: 1, o: "41" });
    last().receive({ event: "n", payload: 2, o: "42" });
    last().receive({ event: "direct", payload: 3 }); // not logged: keeps the offset
    last().drop();
    t.mock.timers.tick(10);
    assert.deepEqual(query(last()), { ms_v: "2", ms_id: "abc", ms_token: "secret", ms_offset: "42" });
    last().accept("", { id: "abc", token: "next", recovered: true });
    assert.deepEqual(opened, [
      ["abc", false],
      ["abc", true],
    ]);
    last().drop();
    t.mock.timers.tick(10);
    assert.equal(query(last()).ms_token, "next");
    last().accept("", { id: "new", token: "t3", recovered: false });
    assert.deepEqual([socket.id, socket.recovered], ["new", false]);
    socket.close();
    assert.deepEqual(last().closeCalls, [[1000, undefined]]);
  });

  test("open waits for ms:session: what is sent before it stays in the buffer", (t) => {
    const { socket, last } = setup(t);
    socket.send("early", 1);
    last().accept("", null);
    assert.equal(socket.readyState, MicroSocket.CONNECTING);
    assert.deepEqual(last().sent, []);
    last().receive({ event: "ms:session", payload: { id: "a", token: null, recovered: false } });
    assert.equal(socket.readyState, MicroSocket.OPEN);
    assert.deepEqual(last().frames, [{ event: "early", payload: 1 }]);
  });

  test("params: an object joins the URL's own query; a function is called before each attempt", async (t) => {
    let calls = 0;
    const { last } = setup(t, { params: () => ({ ticket: `t${++calls}`, n: 1 }) });
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(query(last()), { ticket: "t1", n: "1", ms_v: "2" });
    last().accept();
    last().drop();
    t.mock.timers.tick(10);
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(query(last()).ticket, "t2");
    const fixed = fakeWebSocket();
    const other = MicroSocket("ws://test/?room=a", { WebSocket: fixed.WebSocket, params: { token: "x" } });
    assert.deepEqual(query(fixed.sockets[0] as FakeWebSocket), { room: "a", token: "x", ms_v: "2" });
    other.close();
  });

  test("an async params function is awaited; one that fails counts as a lost attempt", async (t) => {
    let fail = true;
    const { sockets } = setup(t, {
      params: async () => {
        if (fail) throw new Error("ticket service down");
        return { ticket: "ok" };
      },
    });
    for (let i = 0; i < 5; i += 1) await Promise.resolve();
    assert.equal(sockets.length, 0);
    fail = false;
    t.mock.timers.tick(10);
    for (let i = 0; i < 5; i += 1) await Promise.resolve();
    assert.equal(sockets.length, 1);
    assert.equal(new URL(sockets[0]?.url ?? "").searchParams.get("ticket"), "ok");
  });

  test("a refusal with static params is final: one attempt, onclose with the code", (t) => {
    const { socket, sockets, last } = setup(t, { params: { token: "bad" } });
    const codes: number[] = [];
    socket.onclose = (event) => codes.push(event.code);
    last().accept("", null);
    last().drop(4401, "ticket spent", true);
    t.mock.timers.tick(60_000);
    assert.equal(sockets.length, 1);
    assert.deepEqual(codes, [4401]);
    assert.equal(socket.readyState, MicroSocket.CLOSED);
  });

  test("a refusal with a params function retries with fresh params, at most MAX_REFUSALS in a row", async (t) => {
    let calls = 0;
    const { socket, sockets, last } = setup(t, { params: () => ({ ticket: String(++calls) }) });
    const settle = async () => {
      for (let i = 0; i < 3; i += 1) await Promise.resolve();
    };
    await settle();
    for (let round = 0; round < 10; round += 1) {
      if (socket.readyState === MicroSocket.CLOSED) break;
      last().accept("", null);
      last().drop(4403, "forbidden", true);
      t.mock.timers.tick(60_000);
      await settle();
    }
    assert.equal(sockets.length, 4); // the first attempt and three retries
    assert.equal(socket.readyState, MicroSocket.CLOSED);
  });

  test("4429 and 4503 retry with back-off; 4409 is final", (t) => {
    const { socket, sockets, last } = setup(t);
    last().drop(4429, "slow down", true);
    t.mock.timers.tick(10);
    last().drop(4503, "busy", true);
    t.mock.timers.tick(50);
    assert.equal(sockets.length, 3);
    last().drop(4409, "session resumed by another connection", true);
    t.mock.timers.tick(60_000);
    assert.equal(sockets.length, 3);
    assert.equal(socket.readyState, MicroSocket.CLOSED);
  });

  test("a pending request rejects with disconnected when the connection is lost", async (t) => {
    const { socket, last } = setup(t);
    last().accept();
    const pending = socket.request("slow", 1);
    last().drop();
    await assert.rejects(pending, isError("disconnected"));
  });
});
