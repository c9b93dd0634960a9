/**
 * Application-level heartbeat: browsers hide transport pings, so the client sends `ms:ping` every
 * `interval` ms and calls `onDead` when nothing at all arrives within `timeout` ms of a ping.
 * Any incoming frame counts as a sign of life, so a busy connection never times out.
 */
export class Heartbeat {
  private pinger: ReturnType<typeof setInterval> | undefined;
  private deadline: ReturnType<typeof setTimeout> | undefined;
  private count = 0;

  constructor(
    private readonly interval: number,
    private readonly timeout: number,
    private readonly ping: (count: number) => void,
    private readonly onDead: () => void,
  ) {}

  /** Start pinging (a no-op when the interval is 0). */
  start(): void {
    this.stop();
    if (this.interval <= 0) return;
    this.pinger = setInterval(() => {
      this.count += 1;
      this.ping(this.count);
      this.deadline ??= setTimeout(() => {
        this.stop();
        this.onDead();
      }, this.timeout);
    }, this.interval);
  }

  /** Something arrived: the connection is alive, cancel the pending deadline. */
  alive(): void {
    clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  /** Stop pinging and forget the deadline. */
  stop(): void {
    clearInterval(this.pinger);
    this.pinger = undefined;
    this.alive();
  }
}
