// The desktop app's hidden training window: hosts only the engine and takes its orders from
// the main process through window.tesseraTraining (electron/contract.ts). It says what the
// GPU check found (ready), obeys the orders it gets back and those pushed later, holds the
// engine after every inner step until the main process has answered stepDone and its restMs
// (the GPU duty-cycle cap) has passed, reports rounds, phases and failures, and answers a
// checkpoint request. Environment-free: the engine and the clock come in as arguments.
import type { EngineReport, TesseraTrainingApi, TrainingOrders } from '../../electron/contract.ts';
import type { Engine } from '../engine/client.ts';
import type { EngineEvent } from '../engine/messages.ts';
import { IDLE, foldEvent, type Activity, type RunStatus } from '../state/run-status.ts';

export interface TrainingHostDeps {
  api: TesseraTrainingApi;
  engine: Engine;
  sleep?: (ms: number) => Promise<void>;
  log?: (text: string) => void;
}

const PHASE: Record<Activity, EngineReport['phase']> = {
  idle: 'stopped',
  connecting: 'connecting',
  retrying: 'connecting',
  syncing: 'syncing',
  waiting: 'waiting',
  training: 'training',
  exchanging: 'exchanging',
  stopping: 'waiting',
};

export const NO_SECRET_MESSAGE = 'no wallet is saved for training: open the Tessera window and unlock your wallet (the training window signs with the secret kept in the system keychain)';

export class TrainingHost {
  private orders: TrainingOrders | null = null;
  /** A contribution is under way in the engine. */
  private running = false;
  private paused = false;
  private finishing = false;
  private status: RunStatus = IDLE;
  private lastStep: { round: number; step: number; loss: number; tokensPerSecond: number } | null = null;
  /** The round the engine's own IndexedDB checkpoint holds, as its last 'stopped' said. */
  private savedRound: number | null = null;
  private answeredRequest: number | null = null;
  private endedWaiters: (() => void)[] = [];
  /** Orders are obeyed one at a time, in the order they came. */
  private queue: Promise<void> = Promise.resolve();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (text: string) => void;

  constructor(private readonly d: TrainingHostDeps) {
    this.sleep = d.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.log = d.log ?? (() => {});
  }

  /** Checks the GPU, says ready and obeys the first orders. */
  async start(): Promise<void> {
    this.d.engine.onEvent((e) => this.onEvent(e));
    this.d.api.onOrders((o) => this.enqueue(o));
    // The adapter is what ready() reports; the model size is the run's business, checked on joining.
    const gpu = await this.d.engine.call('checkGpu', { model: 'tiny', batch: 1, seq: 8 }).catch(() => null);
    const found = gpu?.available === true;
    if (!found) this.log(`no WebGPU adapter: ${gpu?.problem ?? 'the GPU check failed'}`);
    this.enqueue(await this.d.api.ready({ adapterFound: found, adapterName: found ? gpu.adapter : null }));
    await this.queue;
  }

  /** Settles once every order given so far has been obeyed (tests wait on it). */
  idle(): Promise<void> {
    return this.queue;
  }

  private enqueue(orders: TrainingOrders): void {
    this.queue = this.queue.then(() => this.obey(orders)).catch((e: unknown) => this.fail('fatal', e));
  }

  private async obey(o: TrainingOrders): Promise<void> {
    this.orders = o;
    if (o.saveCheckpointRequest !== null && o.saveCheckpointRequest !== this.answeredRequest) {
      this.answeredRequest = o.saveCheckpointRequest;
      await this.saveCheckpoint(o.saveCheckpointRequest);
    }
    switch (o.run) {
      case 'stop':
        if (this.running) await this.stopNow();
        return;
      case 'pause':
        // Holds GPU work at the next read-back; the socket and heartbeats carry on.
        if (this.running && !this.paused) await this.setPaused(true);
        return;
      case 'train':
      case 'finish-round-then-stop':
        if (!this.running) await this.begin(o);
        else if (this.paused) await this.setPaused(false);
        if (o.run === 'finish-round-then-stop' && this.running && !this.finishing) {
          this.finishing = true;
          await this.d.engine.call('stop', { mode: 'after-round' });
        }
    }
  }

  private async begin(o: TrainingOrders): Promise<void> {
    const secret = await this.d.api.loadWalletSecret();
    if (!secret) return this.fail('fatal', new Error(NO_SECRET_MESSAGE));
    await this.d.engine.call('useSecret', { secret });
    // The duty cycle is the main process's (restMs after each step), so the engine's own is off.
    // A resume after a crash needs nothing more: the contributor syncs from its IndexedDB
    // checkpoint when it holds one of this run.
    await this.d.engine.call('start', { coordinator: o.coordinatorUrl, dutyCycle: 100, paused: false, holdEachStep: true });
    this.running = true;
    this.paused = false;
    this.finishing = false;
    this.log(`contributing to ${o.coordinatorUrl}${o.resumeFromCheckpoint ? ' (resuming from the last checkpoint)' : ''}`);
  }

  private async setPaused(paused: boolean): Promise<void> {
    this.paused = paused;
    await this.d.engine.call('setPaused', { paused });
  }

  private async stopNow(): Promise<void> {
    const ended = new Promise<void>((r) => this.endedWaiters.push(r));
    await this.d.engine.call('stop', { mode: 'now' });
    await ended;
  }

  /**
   * The contributor writes its checkpoint to IndexedDB after every commit and when it stops;
   * mid-round work is never in a checkpoint. The one request the main process makes is before
   * quitting, so the engine is stopped now (which saves) and the round that was saved is
   * reported; the orders that follow decide whether it starts again.
   */
  private async saveCheckpoint(requestId: number): Promise<void> {
    if (this.running) await this.stopNow();
    await this.d.api.checkpointSaved({ requestId, round: this.savedRound, step: null });
  }

  /** After a step the engine holds GPU work: ask, rest, obey, then let it go on. */
  private async afterStep(busyMs: number): Promise<void> {
    const s = this.lastStep;
    if (s) {
      const { restMs, orders } = await this.d.api.stepDone({ round: s.round, step: s.step, loss: s.loss, durationMs: busyMs, tokensPerSecond: s.tokensPerSecond });
      if (restMs > 0) await this.sleep(restMs);
      this.enqueue(orders);
      await this.queue;
    }
    if (this.running) await this.d.engine.call('releaseStep', {});
  }

  private onEvent(e: EngineEvent): void {
    const before = PHASE[this.status.activity];
    this.status = foldEvent(this.status, e);
    switch (e.event) {
      case 'step':
        this.lastStep = { round: e.round, step: e.step, loss: e.loss, tokensPerSecond: e.tokensPerSecond };
        break;
      case 'held':
        void this.afterStep(e.busyMs).catch((err: unknown) => this.fail('fatal', err));
        break;
      case 'commit':
        void this.d.api.roundFinished({ round: e.round }).then((o) => this.enqueue(o), (err: unknown) => this.log(`roundFinished failed: ${String(err)}`));
        break;
      case 'stopped':
        if (e.saved) this.savedRound = e.round;
        break;
      case 'warning':
        this.log(e.text);
        break;
      case 'ended': {
        const wasFinishing = this.finishing;
        this.running = false;
        this.paused = false;
        this.finishing = false;
        for (const w of this.endedWaiters.splice(0)) w();
        if (e.error) void this.fail(e.error.kind === 'gpu-lost' ? 'gpu-lost' : 'fatal', new Error(e.error.message));
        // Contribute again while the last round was finishing: start afresh once it has.
        else if (wasFinishing && this.orders?.run === 'train') this.enqueue(this.orders);
        break;
      }
      default:
        break;
    }
    const phase = PHASE[this.status.activity];
    if (phase !== before) void this.d.api.reportPhase(this.report(phase)).catch(() => {});
  }

  private report(phase: EngineReport['phase']): EngineReport {
    const s = this.status;
    return { phase, round: s.round, step: s.step || null, loss: s.lastLoss, tokensPerSecond: s.tokensPerSecond || null };
  }

  private async fail(kind: 'gpu-lost' | 'fatal', e: unknown): Promise<void> {
    const message = e instanceof Error ? e.message : String(e);
    this.log(`${kind}: ${message}`);
    await this.d.api.reportFailure({ kind, message }).catch(() => {});
  }
}
