// Drives one PipelineStage through a step's 1F1B schedule (schedule.ts) over its links to
// the neighbouring stages (link.ts), and runPipelineStep: a whole pipeline step over
// stages in one process — every stage's micro-batches, the tied-embedding exchange, the
// global gradient norm, and the AdamW step.
//
// Received messages are routed by their (step, micro-batch) header into an inbox; the op
// that needs one takes it and the stage decodes and validates it in full. A message that
// fails (a wrong shape, a wrong round, a corrupt byte, a duplicate …) is dropped, counted
// under its ActivationError reason in `dropped`, and the op waits for the next message for
// the same micro-batch, so a bad peer cannot poison or stall a step that an honest peer
// completes. Environment-free.
//
// What the network side adds (not here): choosing which peer of the next stage a
// micro-batch goes to, re-sending a vanished peer's in-flight micro-batches to another peer
// of its stage, and carrying the step's control values (tied-gradient parts, per-stage
// squared gradient norms) between machines instead of through runPipelineStep's arguments.
import { ActivationError, type ActivationKind, peekActivationHeader } from '../../../src/pipeline/activation-codec.ts';
import type { StageLink } from './link.ts';
import { stageSchedule } from './schedule.ts';
import type { MicroBatchData, PipelineStage } from '../../../src/pipeline/stage.ts';

export interface StageRunnerOptions {
  /** This stage's position (0-based) and the pipeline's stage count, for the schedule. */
  index: number;
  stages: number;
  /** Link to the previous stage: activations arrive, gradients leave. Absent on stage 0. */
  upstream?: StageLink;
  /** Link to the next stage: activations leave, gradients arrive. Absent on the last stage. */
  downstream?: StageLink;
  /** Give up a step after waiting this long for one message (default: wait forever). */
  timeoutMs?: number;
}

class Inbox {
  private readonly queued = new Map<string, Uint8Array[]>();
  private readonly waiting = new Map<string, (bytes: Uint8Array) => void>();

  put(key: string, bytes: Uint8Array): void {
    const w = this.waiting.get(key);
    if (w) {
      this.waiting.delete(key);
      w(bytes);
      return;
    }
    const q = this.queued.get(key);
    if (q) q.push(bytes);
    else this.queued.set(key, [bytes]);
  }

  take(key: string, timeoutMs: number | undefined, what: string): Promise<Uint8Array> {
    const q = this.queued.get(key);
    if (q && q.length > 0) {
      const bytes = q.shift()!;
      if (q.length === 0) this.queued.delete(key);
      return Promise.resolve(bytes);
    }
    if (this.waiting.has(key)) return Promise.reject(new Error(`StageRunner: two waits for ${what}`));
    return new Promise((resolve, reject) => {
      let timer: unknown = null;
      this.waiting.set(key, (bytes) => {
        if (timer !== null) clearTimeout(timer);
        resolve(bytes);
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiting.delete(key);
          reject(new Error(`StageRunner: no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** Drops queued messages of steps before `step`; returns how many. */
  purgeBefore(step: number): number {
    let n = 0;
    for (const [key, q] of this.queued) {
      if (Number(key.split('/')[0]) < step) {
        n += q.length;
        this.queued.delete(key);
      }
    }
    return n;
  }
}

export class StageRunner {
  /** Received messages dropped, by reason (ActivationError reasons, plus 'stale' for an old step). */
  readonly dropped: Record<string, number> = {};
  private readonly forwardInbox = new Inbox();
  private readonly backwardInbox = new Inbox();
  private currentStep = 0;

  constructor(readonly stage: PipelineStage, readonly options: StageRunnerOptions) {
    const { index, stages, upstream, downstream } = options;
    if (!Number.isInteger(stages) || stages < 1 || !Number.isInteger(index) || index < 0 || index >= stages) {
      throw new RangeError(`stage index ${index} of ${stages} stages`);
    }
    if ((index === 0) !== stage.isFirst || (index === stages - 1) !== stage.isLast) {
      throw new Error(`StageRunner: stage [${stage.from}, ${stage.to}) cannot be stage ${index} of ${stages}`);
    }
    if ((upstream === undefined) !== stage.isFirst) throw new Error('StageRunner: every stage but the first needs an upstream link, the first none');
    if ((downstream === undefined) !== stage.isLast) throw new Error('StageRunner: every stage but the last needs a downstream link, the last none');
    upstream?.onMessage((bytes) => this.receive(bytes, 'activations', this.forwardInbox));
    downstream?.onMessage((bytes) => this.receive(bytes, 'grads', this.backwardInbox));
  }

  /** Total dropped messages. */
  get droppedCount(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }

  /**
   * Runs the stage's F/B order for one step of `micros` micro-batches (beginStep included);
   * stage 0 takes its data from `data`. Resolves once its last backward is done; the
   * optimiser step is the caller's (see runPipelineStep).
   */
  async runMicroBatches(step: number, micros: number, data?: (micro: number) => MicroBatchData): Promise<void> {
    const { stage } = this;
    if (stage.isFirst && !data) throw new Error('StageRunner: stage 0 needs a data source');
    stage.beginStep(step, micros);
    this.currentStep = step;
    const stale = this.forwardInbox.purgeBefore(step) + this.backwardInbox.purgeBefore(step);
    if (stale > 0) this.count('stale', stale);
    for (const op of stageSchedule(this.options.stages, this.options.index, micros)) {
      const key = `${step}/${op.micro}`;
      if (op.kind === 'F') {
        let out;
        if (stage.isFirst) {
          out = await stage.forwardMicro(data!(op.micro));
        } else {
          out = await this.withMessage(this.forwardInbox, key, `activations of micro-batch ${op.micro}`, (bytes) => stage.forwardMicro(bytes));
        }
        if (out.kind === 'activations') this.options.downstream!.send(out.bytes);
      } else {
        const grad = stage.isLast
          ? await stage.backwardMicro(op.micro)
          : await this.withMessage(this.backwardInbox, key, `gradients of micro-batch ${op.micro}`, (bytes) => stage.backwardMicro(op.micro, bytes));
        if (grad) this.options.upstream!.send(grad);
      }
    }
  }

  private async withMessage<R>(inbox: Inbox, key: string, what: string, use: (bytes: Uint8Array) => Promise<R>): Promise<R> {
    for (;;) {
      const bytes = await inbox.take(key, this.options.timeoutMs, what);
      try {
        return await use(bytes);
      } catch (e) {
        if (!(e instanceof ActivationError)) throw e;
        this.count(e.reason);
      }
    }
  }

  private receive(bytes: Uint8Array, kind: ActivationKind, inbox: Inbox): void {
    try {
      const h = peekActivationHeader(bytes, this.stage.maxMessageBytes);
      if (h.kind !== kind) throw new ActivationError('kind', `${h.kind} arrived on the ${kind} direction`);
      if (h.step < this.currentStep) {
        this.count('stale');
        return;
      }
      inbox.put(`${h.step}/${h.micro}`, bytes);
    } catch (e) {
      if (!(e instanceof ActivationError)) throw e;
      this.count(e.reason);
    }
  }

  private count(reason: string, n = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
  }
}

export interface PipelineStepOptions {
  step: number;
  micros: number;
  lr: number;
  /** Micro-batch m of this step, for stage 0. */
  data: (micro: number) => MicroBatchData;
}

export interface PipelineStepResult {
  step: number;
  /** Mean loss over the step's micro-batches (before the update). */
  loss: number;
  losses: number[];
  /** Global gradient norm before clipping, over every stage. */
  gradNorm: number;
}

/**
 * One optimiser step of a pipeline whose stages all run in this process, in stage order:
 * the micro-batches of every stage concurrently (each over its links), then the tied
 * embedding exchange (when split), the global norm from every stage's sum of squares, and
 * the AdamW step of every stage.
 */
export async function runPipelineStep(runners: readonly StageRunner[], opts: PipelineStepOptions): Promise<PipelineStepResult> {
  if (runners.length === 0) throw new Error('runPipelineStep: no stages');
  await Promise.all(runners.map((r) => r.runMicroBatches(opts.step, opts.micros, r.stage.isFirst ? opts.data : undefined)));
  const stages = runners.map((r) => r.stage);
  const tied = stages.filter((s) => s.holdsTiedPart);
  if (tied.length === 2) {
    const [a, b] = tied;
    const ga = await a.tiedGradient();
    const gb = await b.tiedGradient();
    a.addTiedGradient(gb);
    b.addTiedGradient(ga);
  } else if (tied.length !== 0) {
    throw new Error(`runPipelineStep: ${tied.length} stages hold a part of the tied embedding, expected 2`);
  }
  let squares = 0;
  for (const s of stages) squares += await s.gradNormSquared();
  const gradNorm = Math.sqrt(squares);
  const last = stages[stages.length - 1];
  const losses = Array.from({ length: opts.micros }, (_, m) => last.stepLosses[m]);
  for (const s of stages) s.applyStep(opts.lr, gradNorm);
  return { step: opts.step, loss: losses.reduce((a, b) => a + b, 0) / losses.length, losses, gradNorm };
}
