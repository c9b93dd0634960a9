/**
 * Compiles under `tsc --strict` (npm run typecheck): the example's generated events.ts used as
 * `MicroSocket<ServerEvents, ClientEvents>`. Never run; errors.ts holds what must not compile.
 */
import MicroSocket from "../../src/index.js";
import type { Answer, ClientEvents, Joined, ServerEvents } from "./events.js";

export async function chat(url: string): Promise<string[]> {
  const socket = MicroSocket<ServerEvents, ClientEvents>(url);
  socket.send("message", { text: "hello" });
  socket.send("leave");
  const answer: Answer = await socket.request("join", { room: "lobby", user: "ann" }, { timeout: 500 });
  const seen: string[] = [];
  const onJoin = socket.on("joined", (joined, event) => seen.push(`${event}: ${joined.user}`));
  socket.on("message", ({ user, text }) => seen.push(`${user}: ${text}`));
  socket.off("joined", onJoin);
  const everyone = (joined: Joined): number => seen.push(joined.members.join());
  socket.on("joined", everyone);
  const stop = socket.onPresence("lobby", (state, diff) => seen.push(`${state.size} ${Object.keys(diff.joins)}`));
  stop();
  return answer.ok ? (answer.members ?? []) : seen;
}

export async function untyped(url: string): Promise<number> {
  // Without generics: any name, any JSON payload, replies and payloads typed by the caller.
  const socket = new MicroSocket(url);
  socket.send("anything", [1, { two: 2 }]);
  socket.send("nothing");
  socket.on<{ user: string }>("joined", (payload) => payload.user);
  socket.on("raw", (payload) => String(payload));
  return socket.request<number>("add", [1, 2], { timeout: 500 });
}
