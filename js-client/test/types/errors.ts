/**
 * Each `@ts-expect-error` line must be a compile error: `tsc` fails on a directive that
 * finds none, so this file compiles only while the generated types really refuse them.
 */
import MicroSocket from "../../src/index.js";
import type { ClientEvents, ServerEvents } from "./events.js";

export async function mistakes(url: string): Promise<void> {
  const socket = MicroSocket<ServerEvents, ClientEvents>(url);
  // @ts-expect-error: a wrong field ("name" is not a field of JoinRequest)
  socket.send("join", { room: "lobby", name: "ann" });
  // @ts-expect-error: a missing field
  socket.send("join", { room: "lobby" });
  // @ts-expect-error: a wrong type
  socket.send("message", { text: 42 });
  // @ts-expect-error: a payload is required where "" does not fit
  socket.send("message");
  // @ts-expect-error: an unknown event
  socket.send("shout", { text: "hi" });
  // @ts-expect-error: an unknown event to request
  await socket.request("shout", { text: "hi" });
  // @ts-expect-error: a wrong reply type (the reply is an Answer)
  const reply: string = await socket.request("join", { room: "lobby", user: "ann" });
  // @ts-expect-error: an unknown server event
  socket.on("user renamed", () => undefined);
  // @ts-expect-error: a wrong field of a server event's payload
  socket.on("joined", (joined) => joined.name);
  // @ts-expect-error: a handler typed for another payload
  socket.on("message", (text: string) => text);
  // @ts-expect-error: a wrong type for request's payload
  await socket.request("message", { text: ["a"] });
  void reply;
}
