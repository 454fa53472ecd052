// The GPU budget and pause, applied where the engine waits for the GPU anyway: every read-back
// (Gpu.read, which a training step ends with) first waits while paused, then, after it, rests
// long enough that busy time stays at `percent` of wall time. Busy time is the wait inside
// read(): it submits the recorded work and waits for the GPU to finish it. The socket, heartbeats and peer
// links keep running meanwhile: only GPU work is held. A rest is never one long block: it is
// cut short when the budget or pause changes. The budget's range and the rest's length are the
// desktop app's too (src/contributor/availability.ts).
import type { Gpu } from '../../src/gpu/gpu.ts';
import { clampDutyCycle, restAfterWork } from '../../src/contributor/availability.ts';

export interface Clock {
  now(): number;
  sleep(ms: number, wake: (cancel: () => void) => void): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, wake) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake(() => {
        clearTimeout(t);
        resolve();
      });
    }),
};

const SHARE_WINDOW_MS = 60_000;

export class GpuThrottle {
  private percent = 100;
  private paused = false;
  /** Held after a step until release() (the desktop training window waits for its orders). */
  private held = false;
  /** GPU busy time since the last takeBusyMs(). */
  private busySinceTake = 0;
  private wakers: (() => void)[] = [];
  /** GPU work of the last SHARE_WINDOW_MS: when each piece ended and how long it took. */
  private recent: { end: number; ms: number }[] = [];
  private measuredSince: number;

  constructor(
    private readonly clock: Clock = realClock,
    private readonly onPaused: (paused: boolean) => void = () => {},
  ) {
    this.measuredSince = clock.now();
  }

  setPercent(percent: number): void {
    this.percent = clampDutyCycle(percent);
    this.wake();
  }

  setPaused(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    this.onPaused(paused);
    this.wake();
  }

  /** Holds GPU work from the next read-back on, until release(). Independent of pause. */
  hold(): void {
    this.held = true;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.wake();
  }

  /** GPU busy ms since the last call (a step's GPU time, read when the step ends). */
  takeBusyMs(): number {
    const ms = this.busySinceTake;
    this.busySinceTake = 0;
    return ms;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Starts measuring the share afresh (a new contribution). */
  resetShare(): void {
    this.recent = [];
    this.measuredSince = this.clock.now();
  }

  /** Share of wall time the GPU was busy over the last minute (or since resetShare), 0..1. */
  get share(): number {
    const now = this.clock.now();
    const from = Math.max(this.measuredSince, now - SHARE_WINDOW_MS);
    this.recent = this.recent.filter((r) => r.end > from);
    const busy = this.recent.reduce((sum, r) => sum + Math.min(r.ms, r.end - from), 0);
    return now > from ? Math.min(1, busy / (now - from)) : 0;
  }

  private wake(): void {
    for (const w of this.wakers.splice(0)) w();
  }

  private async nap(ms: number): Promise<void> {
    await this.clock.sleep(ms, (cancel) => this.wakers.push(cancel));
  }

  /** Before GPU work: hold while paused or held. */
  async gate(): Promise<void> {
    while (this.paused || this.held) await this.nap(60_000);
  }

  /** After `busy` ms of GPU work: rest so busy/(busy+rest) = percent (one rest at most MAX_REST_MS). */
  async rest(busy: number): Promise<void> {
    const end = this.clock.now();
    this.recent.push({ end, ms: busy });
    this.busySinceTake += busy;
    const restMs = restAfterWork(busy, this.percent);
    const until = end + restMs;
    for (let left = restMs; left > 1 && !this.paused; left = until - this.clock.now()) {
      const before = this.percent;
      await this.nap(left);
      if (this.percent !== before) break; // a new budget applies from the next step
    }
    await this.gate();
  }

  /** Makes `gpu`'s read-backs go through this throttle (the instance's method, not the class's). */
  attach(gpu: Gpu): void {
    const read = gpu.read.bind(gpu);
    gpu.read = async (t) => {
      await this.gate();
      const start = this.clock.now();
      const out = await read(t);
      await this.rest(this.clock.now() - start);
      return out;
    };
  }
}
