// One contribution from Contribute to its end: runs a contributor, and while the coordinator
// cannot be reached before joining, makes a new one after a growing pause (1 s doubling to
// 30 s; once joined, the contributor rejoins a lost coordinator by itself). Stop ends it now
// or after the round — at once while waiting to retry, when there is no round to finish.
// Environment-free: the worker passes how to make a contributor and the clock.
import type { ContributorEvent, StopMode } from '../../src/contributor/contributor.ts';
import { isRetryable, toWireError } from './errors.ts';
import { retryDelayMs, type EngineEvent } from './messages.ts';

/** The part of a Contributor a session drives. */
export interface Runnable {
  run(): Promise<void>;
  stop(mode: StopMode): void;
}

export interface SessionDeps {
  url: string;
  makeContributor(onEvent: (e: ContributorEvent) => void): Runnable;
  emit(e: EngineEvent): void;
  /** Waits `ms`, unless `wake` (given to the caller) is called first. */
  delay?(ms: number, onWake: (wake: () => void) => void): Promise<void>;
}

const realDelay = (ms: number, onWake: (wake: () => void) => void) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(() => resolve(), ms);
    onWake(() => {
      clearTimeout(t);
      resolve();
    });
  });

export class ContributionSession {
  private current: Runnable | null = null;
  private stopRequested = false;
  private inBackoff = false;
  private wakeBackoff: () => void = () => {};
  /** Settles when the session has ended (after its 'ended' event). */
  readonly done: Promise<void>;

  constructor(private readonly d: SessionDeps) {
    this.done = this.loop().then(
      () => d.emit({ event: 'ended', error: null }),
      (e: unknown) => d.emit({ event: 'ended', error: toWireError(e) }),
    );
  }

  stop(mode: StopMode): void {
    if (this.inBackoff) mode = 'now'; // "after the round", with no round under way, is now
    if (mode === 'now') this.stopRequested = true;
    this.current?.stop(mode);
    if (mode === 'now') this.wakeBackoff();
  }

  private async loop(): Promise<void> {
    const delay = this.d.delay ?? realDelay;
    for (let attempt = 0; !this.stopRequested; attempt++) {
      this.d.emit({ event: 'connecting', url: this.d.url, attempt });
      const c = this.d.makeContributor((e) => {
        if (e.event === 'joined') attempt = 0; // reached it: a later failure starts the backoff afresh
        this.d.emit(e);
      });
      this.current = c;
      try {
        await c.run(); // returns once stopped
        return;
      } catch (e) {
        this.current = null; // nothing runs while waiting to retry
        if (!isRetryable(e) || this.stopRequested) throw e;
        const inMs = retryDelayMs(attempt);
        this.d.emit({ event: 'retrying', url: this.d.url, attempt: attempt + 1, inMs, reason: (e as Error).message });
        this.inBackoff = true;
        await delay(inMs, (wake) => (this.wakeBackoff = wake));
        this.inBackoff = false;
      }
    }
  }
}
