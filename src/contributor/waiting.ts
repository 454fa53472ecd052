// How the contributor's loops wait: on a clock (the real one, or a test's moved by hand) and
// on changes — a coordinator message, a stop, a lost connection — which abort the current
// AbortSignal, waking every wait at once to look again; and how replica work queues, one
// piece at a time. Environment-free.

/** Time as the contributor's loops see it. `sleep` ends early (resolves, never rejects) when `signal` aborts. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * A condition is looked at again at least this often even when nothing announced a change:
 * some turn true without one (a peer's update arriving, a link coming up).
 */
export const RECHECK_MS = 1000;

/** Wakes the waits on the contributor's state when it changes. */
export class Changes {
  private changed = new AbortController();

  constructor(
    private readonly clock: Clock,
    /** Every wait ends, unmet, once this holds (stopping now, or the coordinator is gone). */
    private readonly interrupted: () => boolean,
  ) {}

  /** Something a wait may be waiting for changed: every wait looks again. */
  notify(): void {
    const changed = this.changed;
    this.changed = new AbortController();
    changed.abort();
  }

  /** Resolves true once `ready()` holds; false when interrupted or after `timeoutMs`. */
  async until(ready: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    const deadline = this.clock.now() + timeoutMs;
    while (!ready()) {
      if (this.interrupted()) return false;
      const left = deadline - this.clock.now();
      if (left <= 0) return false;
      await this.clock.sleep(Math.min(left, RECHECK_MS), this.changed.signal);
    }
    return true;
  }
}

/** Runs work one piece at a time, in the order asked (a piece that fails does not stop the next). */
export class Serial {
  private last: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.last.then(fn, fn);
    this.last = next.catch(() => {});
    return next;
  }
}
