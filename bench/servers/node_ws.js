// The Node `ws` server: the events of ms_app.py, fanned out by encoding once and sending
// the same string to every member of the room. Usage: node node_ws.js PORT
"use strict";
const { WebSocketServer } = require("ws");

const room = new Set();
const joined = JSON.stringify({ event: "joined", payload: "" });
const encode = (event, payload) => JSON.stringify({ event, payload });

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: Number(process.argv[2]),
  perMessageDeflate: false,
  backlog: 2048,
});
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const message = JSON.parse(data);
    const payload = message.payload === undefined ? "" : message.payload;
    if (message.event === "join") {
      room.add(ws);
      ws.send(joined);
    } else if (message.event === "publish") {
      const text = encode("msg", payload);
      for (const member of room) member.send(text);
    } else if (message.event === "echo") {
      ws.send(encode("echo", payload));
    }
  });
  ws.on("close", () => room.delete(ws));
});
