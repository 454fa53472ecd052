// Restarting training after the training window's renderer dies or the GPU process goes
// (a lost device): reload from the last checkpoint after a growing delay; after too many
// failures in a short time, stop and report an error instead of looping.

export interface CrashRestartOptions {
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
  /** Recreate the training window; it resumes from its last checkpoint. */
  restart: () => void;
  /** Training keeps failing: show the error, stop restarting. */
  giveUp: (message: string) => void;
  maxRestarts?: number;
  windowMs?: number;
  baseDelayMs?: number;
}

export type GoneReason = 'clean-exit' | 'abnormal-exit' | 'killed' | 'crashed' | 'oom' | 'launch-failed' | 'integrity-failure' | 'memory-eviction' | 'gpu-lost' | 'fatal';

export class CrashRestarter {
  private failures: number[] = [];
  private pending = false;

  constructor(private readonly options: CrashRestartOptions) {}

  /** Whether a restart is scheduled (the status shows 'restarting'). */
  get restarting(): boolean {
    return this.pending;
  }

  /** A failure happened. Returns the delay before the restart, or null when it gave up. */
  failed(reason: GoneReason, detail = ''): number | null {
    // Our own window.close()/destroy on quit ends the renderer cleanly: not a failure.
    if (reason === 'clean-exit') return null;
    if (this.pending) return null;
    const { now, maxRestarts = 5, windowMs = 10 * 60_000, baseDelayMs = 2_000 } = this.options;
    const t = now();
    this.failures = this.failures.filter((at) => t - at < windowMs);
    this.failures.push(t);
    if (this.failures.length > maxRestarts) {
      this.options.giveUp(`training failed ${this.failures.length} times in ${Math.round(windowMs / 60_000)} minutes (last: ${reason}${detail ? `, ${detail}` : ''}); press Contribute to try again`);
      return null;
    }
    const delay = baseDelayMs * 2 ** (this.failures.length - 1);
    this.pending = true;
    this.options.setTimeout(() => {
      this.pending = false;
      this.options.restart();
    }, delay);
    return delay;
  }

  /** The user pressed Contribute after giving up: start counting afresh. */
  reset(): void {
    this.failures = [];
  }
}
