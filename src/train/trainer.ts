// The inner loop of one contributor: for each step, k micro-batches of forward + backward
// (gradients accumulated on the GPU), then clipping + AdamW, recorded into one submit.
import type { Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { LayerSlice } from '../model/slice.ts';
import type { AdamW } from './optimizer.ts';
import type { Batch } from './sampler.ts';
import { learningRate, type LrSchedule } from './schedule.ts';

/** Where micro-batches come from; deterministic in (step, micro) so a resumed run sees the same data. */
export interface BatchSource {
  batch(step: number, micro: number): Pick<Batch, 'tokens' | 'targets'>;
}

export interface StepResult {
  /** 1-based optimiser step just taken. */
  step: number;
  /** Mean loss over the step's micro-batches (before the update). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokens: number;
  /** Wall time of the step, from recording to its read-back (later steps' recording included when pipelined). */
  ms: number;
}

/** A step recorded and submitted whose read-back is still in flight. */
export interface PendingStep {
  step: number;
  result: Promise<StepResult>;
}

export class LocalTrainer {
  /** Per step: the k micro-batch losses, then [grad norm, clip scale]. */
  private readonly stats: Tensor;

  constructor(
    private readonly gpu: Gpu,
    readonly slice: LayerSlice,
    readonly optimizer: AdamW,
    private readonly source: BatchSource,
    readonly schedule: LrSchedule,
    readonly accumulation = 1,
  ) {
    if (slice.from !== 0 || slice.to !== slice.cfg.layers) {
      throw new Error('LocalTrainer trains a slice holding the whole model; pipeline stages train through src/pipeline');
    }
    if (!Number.isInteger(accumulation) || accumulation < 1) throw new Error(`accumulation must be an integer ≥ 1, got ${accumulation}`);
    this.stats = gpu.tensor([accumulation + 2], 'f32', 'step stats');
  }

  /** Steps taken so far (the optimiser's count, restored by checkpoints). */
  get step(): number {
    return this.optimizer.step;
  }

  get tokensPerStep(): number {
    return this.slice.B * this.slice.T * this.accumulation;
  }

  /**
   * Records and runs one optimiser step; resolves once its loss has been read back.
   * `scheduleStep` (1-based) picks the data and learning rate when they follow a clock other
   * than this optimiser's own count — a swarm's rounds, which a late joiner enters midway.
   * Back to back, this leaves the GPU idle while the host records the next step: loops that
   * take several steps use trainSteps(), which reads each loss one step late.
   */
  trainStep(scheduleStep?: number): Promise<StepResult> {
    return this.beginStep(scheduleStep).result;
  }

  /**
   * Takes `count` steps with each step's loss read one step late: step n+1 is recorded and
   * submitted before step n's read-back is awaited, so the GPU always has the next step queued.
   * Every step's result still arrives, in order (`onStep`, then the returned list). A
   * non-finite loss still stops training (throws), once the step after it has been submitted
   * too: the optimiser's count is then one past the step that failed.
   */
  async trainSteps(
    count: number,
    onStep?: (result: StepResult) => void | Promise<void>,
    firstScheduleStep?: number,
  ): Promise<StepResult[]> {
    if (!Number.isInteger(count) || count < 0) throw new Error(`trainSteps: count must be an integer ≥ 0, got ${count}`);
    const results: StepResult[] = [];
    let pending: PendingStep | null = null;
    for (let i = 0; i <= count; i++) {
      const next: PendingStep | null = i < count ? this.beginStep(firstScheduleStep === undefined ? undefined : firstScheduleStep + i) : null;
      if (pending) {
        const r = await pending.result;
        results.push(r);
        await onStep?.(r);
      }
      pending = next;
    }
    return results;
  }

  /**
   * Records one optimiser step and submits it with its read-back started but not awaited:
   * `result` resolves once the GPU has run it (and rejects on a non-finite loss).
   */
  beginStep(scheduleStep?: number): PendingStep {
    const t0 = performance.now();
    const step = scheduleStep ?? this.optimizer.step + 1;
    const k = this.accumulation;
    for (let micro = 0; micro < k; micro++) {
      const { tokens, targets } = this.source.batch(step, micro);
      this.slice.forward({ tokens, targets });
      this.slice.backward({ accumulate: micro > 0, lossScale: 1 / k });
      // after the backward, which records the loss fused with the head's gradients (head.ts)
      this.gpu.copy(this.slice.loss!, this.stats, 4, 0, micro * 4);
    }
    const lr = learningRate(step, this.schedule);
    this.optimizer.update(lr);
    this.gpu.copy(this.optimizer.gradNorm, this.stats, 8, 0, k * 4);
    // The step's one submit happens here (read() flushes before it waits); the next step may
    // overwrite `stats` in a later submit, after this one's copy out of it.
    const result = this.gpu.readF32(this.stats).then((stats): StepResult => {
      let loss = 0;
      for (let i = 0; i < k; i++) loss += stats[i] / k;
      if (!Number.isFinite(loss)) throw new Error(`loss became ${loss} at step ${step}: lower the learning rate (--lr) or check the data`);
      return { step, loss, lr, gradNorm: stats[k], tokens: this.tokensPerStep, ms: performance.now() - t0 };
    });
    // Awaited later (trainSteps awaits the step before first): not an unhandled rejection meanwhile.
    result.catch(() => {});
    return { step, result };
  }

  /** Mean loss over the given batches without updating (held-out evaluation). */
  async evaluate(batches: readonly Pick<Batch, 'tokens' | 'targets'>[]): Promise<number> {
    let sum = 0;
    for (const b of batches) {
      this.slice.forward(b);
      sum += (await this.gpu.readF32(this.slice.loss!))[0];
    }
    return sum / batches.length;
  }

  /** Parameters and optimiser state, named 'param/<name>', 'adam.m/<name>', 'adam.v/<name>'. */
  async readState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, data] of await this.slice.readParameters()) out.set(`param/${name}`, data);
    for (const [name, data] of await this.optimizer.readState()) out.set(name, data);
    return out;
  }

  /** Restores what readState wrote, as of optimiser step `step`. */
  loadState(tensors: ReadonlyMap<string, Float32Array>, step: number): void {
    const params = new Map<string, Float32Array>();
    for (const spec of this.slice.layout) {
      const data = tensors.get(`param/${spec.name}`);
      if (!data) throw new Error(`checkpoint lacks parameter ${spec.name}`);
      params.set(spec.name, data);
    }
    this.slice.setParameters(params);
    this.optimizer.loadState(tensors, step);
  }

  destroy(): void {
    this.stats.release();
  }
}
