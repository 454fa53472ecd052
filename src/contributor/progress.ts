// What a contributor reports while it starts (compiling kernels, fetching the data shard,
// syncing weights, waiting for peers), and a watch on its own responsiveness: a process that
// runs no timer for a minute sends no heartbeat and is dropped. Environment-free.

export type ProgressPhase = 'compile' | 'shard' | 'sync' | 'peers';

/**
 * Wraps a progress callback so that it passes at most one call per `intervalMs`, and always
 * the first and the last (done ≥ total): a 100 MB download reports a few times, not per chunk.
 */
export function throttled(report: (done: number, total: number) => void, intervalMs = 500): (done: number, total: number) => void {
  let last = -Infinity;
  return (done, total) => {
    const now = performance.now();
    const final = total > 0 && done >= total;
    if (!final && now - last < intervalMs) return;
    last = now;
    report(done, total);
  };
}

/** Ticks a timer and measures how late it ran: the longest stretch the event loop was held. */
export class StallWatch {
  private timer: ReturnType<typeof setInterval> | null = null;
  private last = 0;
  /** The longest gap between two ticks beyond the tick itself, ms. */
  longestMs = 0;
  /** A stall longer than this is reported to onStall. */
  thresholdMs = Infinity;

  constructor(
    private readonly onStall: (ms: number) => void,
    private readonly tickMs = 250,
  ) {}

  start(): void {
    if (this.timer) return;
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const stall = now - this.last - this.tickMs;
      this.last = now;
      if (stall > this.longestMs) this.longestMs = stall;
      if (stall > this.thresholdMs) this.onStall(stall);
    }, this.tickMs);
    // In Node, the watch alone must not keep a finished process alive.
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
