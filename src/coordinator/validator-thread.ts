// The validator off the coordinator's event loop: a worker thread (validator-worker.ts) holds
// its own Dawn device and replica; this side sends it closed rounds (the updates' bytes moved,
// not copied) and gets back what each evaluation found. The coordinator's thread keeps the
// ledger (its one writer, where the rewards API reads it), so scoring a round costs this
// thread only the bookkeeping.
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { NoGpuError } from '../gpu/errors.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { SamplingOptions } from './scoring.ts';
import type { StoredSketch } from './ledger.ts';
import type { RestoredHistory } from './copy-history.ts';
import type { ClosedRound, RoundEvaluation, StartWeights, ValidatorEngine } from './validator.ts';
import type { ValidatorRequest, ValidatorWorkerData, ValidatorWorkerMessage } from './validator-worker.ts';

/** How long a stopping thread may take to release its device and end before it is terminated. */
export const THREAD_EXIT_MS = 15_000;

/**
 * The worker's entry: the TypeScript source through tsx (bin/register.mjs) when this module
 * runs from source, else the built one beside this chunk (bin/build-cli.mjs builds both).
 */
function workerEntry(): { url: URL; execArgv: string[] } {
  if (import.meta.url.endsWith('.ts')) return { url: new URL('./validator-worker.ts', import.meta.url), execArgv: ['--import', new URL('../../bin/register.mjs', import.meta.url).href] };
  return { url: new URL('./validator-worker.mjs', import.meta.url), execArgv: [] };
}

/** A fresh buffer per update, so it can be moved to the thread without detaching anything else's. */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.slice();
}

export class ValidatorThread implements ValidatorEngine {
  private held = -1;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;
  private readonly exited: Promise<number>;

  private constructor(private readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', resolve));
  }

  /** Starts the thread and waits for its device; NoGpuError when this machine has none. */
  static async start(o: { config: RunConfig; tokens: ArrayLike<number>; validFraction: number; sampling: SamplingOptions; software: boolean; log: (line: string) => void; storeDir?: string }): Promise<ValidatorThread> {
    const { url, execArgv } = workerEntry();
    const data: ValidatorWorkerData = { config: o.config, tokens: o.tokens, validFraction: o.validFraction, sampling: o.sampling, software: o.software, storeDir: o.storeDir };
    const worker = new Worker(url, { workerData: data, execArgv, env: SHARE_ENV });
    const thread = new ValidatorThread(worker);
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: ValidatorWorkerMessage) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'failed') reject(m.noGpu ? new NoGpuError(m.message) : new Error(`the validator's thread could not start: ${m.message}`));
        else if (m.type === 'log') o.log(m.line);
        else thread.settle(m);
      });
      const fail = (e: Error) => {
        thread.failure = e;
        reject(e);
        for (const c of thread.calls.values()) c.reject(e);
        thread.calls.clear();
      };
      worker.on('error', (e) => fail(new Error(`the validator's thread failed: ${e.message}`)));
      worker.on('exit', (code) => fail(new Error(`the validator's thread ended (exit code ${code})`)));
    });
    return thread;
  }

  get round(): number {
    return this.held;
  }

  private settle(m: Extract<ValidatorWorkerMessage, { type: 'reply' }>): void {
    const c = this.calls.get(m.id);
    this.calls.delete(m.id);
    if (m.ok) c?.resolve(m.value);
    else c?.reject(new Error(m.message));
  }

  private call<T>(method: ValidatorRequest['method'], args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const reply = new Promise<T>((resolve, reject) => this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    this.worker.postMessage({ id, method, args } satisfies ValidatorRequest, transfer);
    return reply;
  }

  warmUp(): Promise<number> {
    return this.call('warmUp', []);
  }

  async loadStart(checkpoint: StartWeights | null): Promise<number> {
    this.held = -1;
    return (this.held = await this.call<number>('loadStart', [checkpoint]));
  }

  async apply(round: number, payloads: Uint8Array[], clipFloor?: number[]): Promise<void> {
    const moved = payloads.map(own);
    await this.call('apply', [round, moved, clipFloor], moved.map((p) => p.buffer as ArrayBuffer));
    this.held = round + 1;
  }

  async evaluate(c: ClosedRound, evaluate: number, budgetMs?: number): Promise<RoundEvaluation> {
    const included = c.included.map((u) => ({ ...u, payload: own(u.payload) }));
    const e = await this.call<RoundEvaluation>('evaluate', [{ ...c, included }, evaluate, budgetMs], included.map((u) => u.payload.buffer as ArrayBuffer));
    this.held = c.round + 1;
    return e;
  }

  restoreCopyHistory(kept: (StoredSketch & { seed: number })[]): Promise<RestoredHistory> {
    return this.call('restoreCopyHistory', [kept]);
  }

  encodeWeights(): Promise<Uint8Array> {
    return this.call('encodeWeights', []);
  }

  weightsRound(bytes: Uint8Array, source: string): Promise<number> {
    return this.call('weightsRound', [bytes, source]);
  }

  /** Releases the thread's device and waits for it to end (terminated if it has not within THREAD_EXIT_MS). */
  async destroy(): Promise<void> {
    if (!this.failure) await this.call('destroy', []).catch(() => {});
    const timer = setTimeout(() => void this.worker.terminate(), THREAD_EXIT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
