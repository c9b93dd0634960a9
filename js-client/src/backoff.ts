/**
 * The reconnect schedule: a standalone timer (as in Phoenix's client) that tests drive with fake
 * timers. Attempt n waits `delays[n - 1]` ms (the last delay repeats), shortened at random by up
 * to `jitter` of it so that clients cut off together do not all come back in the same instant.
 */

/** Default delays in ms before reconnect attempts 1, 2, 3...; the last one repeats. */
export const DEFAULT_RECONNECT_DELAYS: readonly number[] = [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000];

/** The delay before attempt `attempt` (1-based), jittered down by `random()` ∈ [0, 1). */
export function reconnectDelay(
  attempt: number,
  delays: readonly number[],
  jitter: number,
  random: () => number = Math.random,
): number {
  const base = delays[Math.min(attempt, delays.length) - 1] ?? 0;
  return Math.round(base * (1 - jitter * random()));
}

/** Calls `callback` after the delay of the next attempt; `reset()` starts the schedule over. */
export class Backoff {
  /** Attempts scheduled since the last reset. */
  attempts = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly callback: () => void,
    private readonly delayOf: (attempt: number) => number,
  ) {}

  /** Schedule the next attempt (replacing a pending one) and return its delay in ms. */
  schedule(): number {
    this.cancel();
    this.attempts += 1;
    const delay = this.delayOf(this.attempts);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.callback();
    }, delay);
    return delay;
  }

  /** Whether an attempt is waiting for its delay. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** Drop the pending attempt, if any. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Drop the pending attempt and start the schedule over (after a successful connect). */
  reset(): void {
    this.cancel();
    this.attempts = 0;
  }
}
