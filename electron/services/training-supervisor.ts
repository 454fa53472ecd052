// The one place that decides what training does. It combines what the user asked for
// (contribute, pause, finish the round), the good-citizen pause reasons, crash restarts and
// what the training page reports, and turns them into orders for the training window and a
// status for the UI, the tray and the power-save blocker.
import type { DesktopStatus, EngineReport, GpuSupport, PauseReason, StepReport, TrainingOrders } from '../contract.ts';
import { restAfterWork } from '../../src/contributor/availability.ts';

export interface SupervisorOptions {
  settings: () => { coordinatorUrl: string; gpuDutyCyclePercent: number };
  /** Sends orders to the training window (when it exists). */
  pushOrders: (orders: TrainingOrders) => void;
  /** Every status change: UI window, tray, power-save blocker. */
  publish: (status: DesktopStatus) => void;
  /** Creates the hidden training window if it is not there. */
  ensureTrainingWindow: () => void;
  /** The message when the page finds no WebGPU adapter. */
  noAdapterMessage: () => string;
  gpuPlan: string;
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
}

const ACTIVE_PHASES: ReadonlyArray<EngineReport['phase']> = ['syncing', 'training', 'exchanging'];

export class TrainingSupervisor {
  private intent: DesktopStatus['intent'] = 'stopped';
  private userPaused = false;
  private policyReasons: PauseReason[] = [];
  private restarting = false;
  private engine: EngineReport | null = null;
  private pageReady = false;
  private resumeFromCheckpoint = false;
  private gpu: GpuSupport;
  private lastCheckpoint: DesktopStatus['lastCheckpoint'] = null;
  private error: string | null = null;
  private restarts = 0;
  private nextRequestId = 1;
  private pendingSave: { id: number; resolve: (saved: boolean) => void; timer: unknown } | null = null;

  constructor(private readonly options: SupervisorOptions) {
    this.gpu = { plan: options.gpuPlan, adapterFound: null, adapterName: null, message: null };
  }

  // ---- derived state ----------------------------------------------------------------------

  pauseReasons(): PauseReason[] {
    if (this.intent === 'stopped') return [];
    return [...(this.userPaused ? ['user-paused' as const] : []), ...this.policyReasons, ...(this.restarting ? ['restarting' as const] : [])];
  }

  orders(): TrainingOrders {
    const { coordinatorUrl, gpuDutyCyclePercent } = this.options.settings();
    const run: TrainingOrders['run'] = this.intent === 'stopped' || this.error ? 'stop'
      : this.pauseReasons().length > 0 ? 'pause'
        : this.intent === 'finishing-round' ? 'finish-round-then-stop' : 'train';
    return {
      run,
      coordinatorUrl,
      resumeFromCheckpoint: this.resumeFromCheckpoint,
      dutyCyclePercent: gpuDutyCyclePercent,
      saveCheckpointRequest: this.pendingSave?.id ?? null,
    };
  }

  /** Training is really running on the GPU now (the power-save blocker follows this). */
  activelyTraining(): boolean {
    const run = this.orders().run;
    return this.pageReady && (run === 'train' || run === 'finish-round-then-stop') && this.engine !== null && ACTIVE_PHASES.includes(this.engine.phase);
  }

  status(): DesktopStatus {
    const reasons = this.pauseReasons();
    const tray = this.error ? 'error' : this.intent === 'stopped' ? 'idle' : reasons.length > 0 ? 'paused' : 'training';
    return {
      intent: this.intent,
      tray,
      pauseReasons: reasons,
      engine: this.engine ? { ...this.engine } : null,
      gpu: { ...this.gpu },
      lastCheckpoint: this.lastCheckpoint ? { ...this.lastCheckpoint } : null,
      restarts: this.restarts,
      error: this.error,
    };
  }

  private changed(): DesktopStatus {
    if (this.pageReady) this.options.pushOrders(this.orders());
    const status = this.status();
    this.options.publish(status);
    return status;
  }

  // ---- the user's actions -----------------------------------------------------------------

  contribute(): DesktopStatus {
    this.intent = 'contributing';
    this.userPaused = false;
    // Without an adapter nothing changes until the GPU mode does (which restarts the app).
    if (this.gpu.adapterFound === false) return this.changed();
    this.error = null;
    this.options.ensureTrainingWindow();
    return this.changed();
  }

  pause(): DesktopStatus {
    if (this.intent !== 'stopped') this.userPaused = true;
    return this.changed();
  }

  resume(): DesktopStatus {
    this.userPaused = false;
    return this.changed();
  }

  finishRoundThenStop(): DesktopStatus {
    if (this.intent === 'contributing') this.intent = 'finishing-round';
    return this.changed();
  }

  /** Settings changed: the page gets orders with the new duty cycle and coordinator. */
  refresh(): DesktopStatus {
    return this.changed();
  }

  // ---- the machine ------------------------------------------------------------------------

  setPolicyReasons(reasons: PauseReason[]): void {
    this.policyReasons = [...reasons];
    this.changed();
  }

  // ---- the training page ------------------------------------------------------------------

  pageLoaded(gpu: { adapterFound: boolean; adapterName: string | null }): TrainingOrders {
    this.pageReady = true;
    this.gpu = { ...this.gpu, adapterFound: gpu.adapterFound, adapterName: gpu.adapterName, message: gpu.adapterFound ? null : this.options.noAdapterMessage() };
    if (!gpu.adapterFound) this.error = this.gpu.message;
    this.changed();
    return this.orders();
  }

  stepDone(report: StepReport): { restMs: number; orders: TrainingOrders } {
    this.engine = { phase: 'training', round: report.round, step: report.step, loss: report.loss, tokensPerSecond: report.tokensPerSecond };
    this.changed();
    return { restMs: restAfterWork(report.durationMs, this.options.settings().gpuDutyCyclePercent), orders: this.orders() };
  }

  phase(report: EngineReport): void {
    this.engine = { ...report };
    this.changed();
  }

  roundFinished(_round: number): TrainingOrders {
    if (this.intent === 'finishing-round') this.intent = 'stopped';
    this.changed();
    return this.orders();
  }

  checkpointSaved(report: { requestId: number | null; round: number | null; step: number | null }): void {
    this.lastCheckpoint = { round: report.round, step: report.step, at: this.options.now() };
    if (this.pendingSave && report.requestId === this.pendingSave.id) this.settleSave(true);
    this.changed();
  }

  /** The training window is gone (crash, GPU loss): orders wait for the new page. */
  pageLost(): void {
    this.pageReady = false;
    this.engine = null;
    if (this.pendingSave) this.settleSave(false);
  }

  setRestarting(restarting: boolean): void {
    this.restarting = restarting;
    if (!restarting) {
      this.restarts += 1;
      this.resumeFromCheckpoint = true;
    }
    this.changed();
  }

  fail(message: string): void {
    this.error = message;
    this.changed();
  }

  // ---- checkpoints ------------------------------------------------------------------------

  /**
   * Asks the page to save a checkpoint now; resolves true once it says it did, false on
   * timeout or when the page goes away. With no page (or nothing trained yet) there is
   * nothing to save: true at once.
   */
  requestCheckpoint(timeoutMs: number): Promise<boolean> {
    if (!this.pageReady || this.engine === null) return Promise.resolve(true);
    if (this.pendingSave) this.settleSave(false);
    return new Promise((resolve) => {
      const id = this.nextRequestId++;
      const timer = this.options.setTimeout(() => {
        if (this.pendingSave?.id === id) this.settleSave(false);
      }, timeoutMs);
      this.pendingSave = { id, resolve, timer };
      this.changed();
    });
  }

  private settleSave(saved: boolean): void {
    const pending = this.pendingSave!;
    this.pendingSave = null;
    this.options.clearTimeout(pending.timer);
    pending.resolve(saved);
  }

  /** Quit: save first (bounded wait), then stop. Resolves whether the checkpoint was saved. */
  async prepareToQuit(timeoutMs = 15_000): Promise<boolean> {
    const saved = await this.requestCheckpoint(timeoutMs);
    this.intent = 'stopped';
    this.changed();
    return saved;
  }
}
