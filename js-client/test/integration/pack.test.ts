/**
 * What a user gets from the registry: `npm pack`, install the tarball into an empty folder
 * (offline), then import it from Node as ESM and CommonJS, type-check a TypeScript user of it,
 * and load its classic-script build in a browser page.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { launchChromium } from "../chromium.js";

const PACKAGE = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(PACKAGE, "node_modules/typescript/bin/tsc");
const TIMEOUT = { timeout: 120_000 };
let folder: string;
let files: string[];

/** A WebSocket stand-in for the consumer scripts: records what is sent. */
const FAKE = `class Fake { constructor(url) { this.url = url; this.readyState = 0; globalThis.fake = this; }
  send(data) { (this.sent ??= []).push(data); } close() {} }`;

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { cwd: folder, encoding: "utf8", timeout: 60_000 });
}

before(() => {
  folder = mkdtempSync(join(tmpdir(), "microsockets-pack-"));
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", folder], {
      cwd: PACKAGE,
      encoding: "utf8",
      timeout: 60_000,
      stdio: ["ignore", "pipe", "ignore"],
    }),
  ) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = packed[0];
  assert.ok(tarball);
  files = tarball.files.map((file) => file.path).sort();
  writeFileSync(join(folder, "package.json"), JSON.stringify({ name: "consumer", private: true }));
  run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--silent", join(folder, tarball.filename)]);
});
after(() => rmSync(folder, { recursive: true, force: true }));

test("the tarball holds the builds, the types and the README, and nothing else", () => {
  assert.deepEqual(files, [
    "README.md",
    "dist/index.cjs",
    "dist/index.d.cts",
    "dist/index.d.ts",
    "dist/index.js",
    "dist/microsockets.global.js",
    "package.json",
  ]);
});

test("imports as an ES module in Node, callable with and without new", TIMEOUT, () => {
  const script = `import MicroSocket, { MicroSocketError, DEFAULT_RECONNECT_DELAYS } from "microsockets";
    ${FAKE}
    const other = new MicroSocket("ws://127.0.0.1:1/", { WebSocket: Fake });
    const socket = MicroSocket("ws://127.0.0.1:1/", { WebSocket: Fake });
    socket.send("queued", { a: 1 });
    fake.readyState = 1; fake.onopen({});
    fake.onmessage({ data: '{"event":"ms:session","payload":{"id":"a","token":null,"recovered":false}}' });
    console.log(JSON.stringify([socket instanceof MicroSocket, other instanceof MicroSocket,
      typeof MicroSocketError, DEFAULT_RECONNECT_DELAYS.length, MicroSocket.OPEN, socket.readyState]));
    socket.close(); other.close();`;
  assert.equal(run(process.execPath, ["--input-type=module", "-e", script]).trim(), '[true,true,"function",10,1,1]');
});

test("requires as CommonJS in Node", TIMEOUT, () => {
  const script = `const { MicroSocket } = require("microsockets");
    ${FAKE}
    const socket = MicroSocket("ws://127.0.0.1:1/", [], { WebSocket: Fake });
    console.log(require("microsockets").default === MicroSocket, typeof socket.request);
    socket.close();`;
  assert.equal(run(process.execPath, ["-e", script]).trim(), "true function");
});

test("its bundled types serve TypeScript users of both module systems", TIMEOUT, () => {
  const use = `(MicroSocket: typeof MS) => {
    const socket = MicroSocket("ws://x/", { reconnectDelays: [100], heartbeatInterval: 0 });
    socket.on<{ user: string }>("joined", (payload, event) => payload.user + event);
    const answer: Promise<number> = socket.request<number>("add", [1, 2], { timeout: 500 });
    socket.onclose = (event) => event.code;
    return answer;
  };\n`;
  writeFileSync(join(folder, "esm.mts"), `import MS from "microsockets";\nexport const f = ${use}`);
  writeFileSync(join(folder, "cjs.cts"), `import { MicroSocket as MS } from "microsockets";\nexport const f = ${use}`);
  const compilerOptions = { noEmit: true, strict: true, module: "nodenext", lib: ["es2022", "dom"], types: [] };
  writeFileSync(join(folder, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["esm.mts", "cjs.cts"] }));
  run(process.execPath, [TSC, "-p", "."]);
});

test("its browser build defines the global MicroSocket in a page", TIMEOUT, async () => {
  writeFileSync(
    join(folder, "page.html"),
    '<script src="node_modules/microsockets/dist/microsockets.global.js"></script>',
  );
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(pathToFileURL(join(folder, "page.html")).href);
    const seen = await page.evaluate(() => {
      const MS = (globalThis as unknown as { MicroSocket: typeof import("../../src/index.js").default }).MicroSocket;
      const socket = MS("ws://127.0.0.1:1/", { reconnect: false });
      const result = [
        typeof MS,
        socket instanceof MS,
        socket.readyState,
        socket.url,
        typeof (MS as unknown as Record<string, unknown>).MicroSocketError,
      ];
      socket.close();
      return result;
    });
    assert.deepEqual(seen, ["function", true, 0, "ws://127.0.0.1:1/", "function"]);
  } finally {
    await browser.close();
  }
});
