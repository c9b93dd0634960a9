/**
 * A real Python server for the integration and browser tests: `python <script>` with PORT set,
 * started and stopped (killed, terminated, paused) on demand. Uses the repository's .venv.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, connect } from "node:net";
import { fileURLToPath } from "node:url";

/** The repository root (js-client's parent). */
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PYTHON = process.env.MICROSOCKETS_PYTHON ?? `${REPO}.venv/bin/python`;

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** One Python server process at a time, on a fixed port so that clients can come back to it. */
export class PythonServer {
  private child: ChildProcess | null = null;
  private output = "";

  constructor(
    readonly script: string,
    readonly port: number,
    readonly env: Record<string, string> = {},
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Start the server and wait until it accepts TCP connections (at most 20 s). */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error("already running");
    const child = spawn(PYTHON, [this.script], {
      cwd: REPO,
      env: { ...process.env, ...this.env, PORT: String(this.port), PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    // Never outlive the test process, whatever happens to it.
    const orphan = () => child.kill("SIGKILL");
    process.once("exit", orphan);
    child.once("exit", () => process.off("exit", orphan));
    child.stdout?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    const deadline = Date.now() + 20_000;
    while (!(await accepting(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        this.child = null;
        child.kill("SIGKILL");
        throw new Error(`${this.script} did not start on port ${this.port}:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Stop the server with `signal` (SIGKILL: a crash; SIGTERM: a graceful shutdown) and wait for it;
   * a server still running 15 s after SIGTERM is killed, and that is an error.
   */
  async stop(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGCONT");
    child.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 15_000)));
    const late = await Promise.race([exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(`${this.script} was still running 15 s after ${signal}:\n${this.output}`);
    }
  }

  /** Freeze (SIGSTOP) or thaw (SIGCONT) the server: a connection that goes silent, then back. */
  pause(paused: boolean): void {
    this.child?.kill(paused ? "SIGSTOP" : "SIGCONT");
  }

  /** Everything the server printed so far, for failure messages. */
  get log(): string {
    return this.output;
  }
}

/** tests/proxy.py as a child process: a TCP proxy to `port` that the test cuts and restores. */
export class CutProxy {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(port: number): Promise<CutProxy> {
    const child = spawn(PYTHON, [`${REPO}tests/proxy.py`, String(port)], {
      cwd: REPO,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const orphan = () => child.kill("SIGKILL");
    process.once("exit", orphan);
    child.once("exit", () => process.off("exit", orphan));
    const [line] = (await once(child.stdout!, "data")) as [Buffer];
    return new CutProxy(child, Number(line.toString().trim()));
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  /** Abort every forwarded connection and refuse new ones until `restore`. */
  cut(): Promise<void> {
    return this.command("cut");
  }

  /** Let connections through again, to `port` if given. */
  restore(port?: number): Promise<void> {
    return this.command(port === undefined ? "restore" : `restore ${port}`);
  }

  async stop(): Promise<void> {
    const exited = once(this.child, "exit");
    this.child.stdin?.end();
    this.child.kill("SIGTERM");
    await exited;
  }

  private async command(text: string): Promise<void> {
    const answered = once(this.child.stdout!, "data");
    this.child.stdin?.write(`${text}\n`);
    await answered;
  }
}

/** A redis-server on a free 127.0.0.1 port, saving nothing to disk. */
export class RedisProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<RedisProcess> {
    const port = await freePort();
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    const orphan = () => child.kill("SIGKILL");
    process.once("exit", orphan);
    child.once("exit", () => process.off("exit", orphan));
    const redis = new RedisProcess(child, port);
    const deadline = Date.now() + 10_000;
    while (!(await accepting(port))) {
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async stop(): Promise<void> {
    const exited = once(this.child, "exit");
    this.child.kill("SIGKILL");
    await exited;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` right now. */
export async function accepting(port: number): Promise<boolean> {
  const socket = connect(port, "127.0.0.1");
  try {
    await once(socket, "connect");
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}
