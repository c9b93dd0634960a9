// Validate AsyncAPI documents with the official parser (@asyncapi/parser, the validator that
// `asyncapi validate` runs), offline: every network call is refused before the parser loads,
// so a remote $ref fails instead of being fetched.
//   node validate.mjs doc.json [more.json...]
// Prints one JSON object: {"documents": {file: [error diagnostics]}, "blocked": [what was refused]}.
// Exits 1 when a document has an error.
import dns from "node:dns";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";

const blocked = [];
function refuse(name) {
  return (...args) => {
    const target = typeof args[0] === "string" ? args[0] : (args[0]?.href ?? args[0]?.host ?? "");
    blocked.push(`${name} ${target}`.trim());
    throw new Error(`network disabled in tools/asyncapi/validate.mjs (${name})`);
  };
}
for (const [module, names] of [
  [http, ["request", "get"]],
  [https, ["request", "get"]],
  [net, ["connect", "createConnection"]],
  [tls, ["connect"]],
  [dns, ["lookup", "resolve"]],
  [dns.promises, ["lookup", "resolve"]],
]) {
  for (const name of names) module[name] = refuse(name);
}
net.Socket.prototype.connect = refuse("socket.connect");
globalThis.fetch = refuse("fetch");

const { Parser } = await import("@asyncapi/parser");
const parser = new Parser();
const documents = {};
let failed = false;
for (const file of process.argv.slice(2)) {
  const diagnostics = await parser.validate(readFileSync(file, "utf8"));
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => ({ code: d.code, message: d.message, path: d.path }));
  documents[file] = errors;
  failed ||= errors.length > 0;
}
console.log(JSON.stringify({ documents, blocked }));
process.exit(failed ? 1 : 0);
