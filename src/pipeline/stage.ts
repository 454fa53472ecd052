// One pipeline stage: the layers [from, to) of the model (a LayerSlice) driven one
// micro-batch at a time by encoded hand-offs (activation-codec.ts), with gradient
// accumulation over the step's M micro-batches and an AdamW step clipped by the pipeline's
// global gradient norm.
//
//   stage 0:        forwardMicro({ micro, tokens, targets }) → activations message (targets in it)
//   middle stages:  forwardMicro(activations message)        → activations message
//   last stage:     forwardMicro(activations message | data) → { loss }
//   every stage:    backwardMicro(micro, grads message)       → grads message (null at stage 0);
//                   the last stage takes no message: its gradient starts at the loss (× 1/M)
//
// The last stage records its whole backward with its forward: the head and cross-entropy run
// once per micro-batch, fused with their gradient (src/model/head.ts), and the loss comes out
// of that pass; reading the loss first and recording the head again in the backward would
// compute the logits twice. So its gradients are accumulated when forwardMicro resolves, it
// keeps the input gradient for backwardMicro (instead of the input: it never recomputes), and
// dropMicro refuses its micro-batches (their gradient is already in).
//   then, once all M micro-batches are back on every stage:
//     tiedGradient() / addTiedGradient()   (tied embeddings split across stages only)
//     gradNormSquared() on every stage → global norm = √Σ → applyStep(lr, norm) on every stage
//
// Saved activations: recomputation. A LayerSlice keeps the activations of ONE forward (its
// residual stream, per-block activations and logits live in fixed buffers; the next forward
// overwrites them), but under 1F1B stage s has up to S − s micro-batches in flight. Of the
// two correct options — one LayerSlice per in-flight micro-batch, or re-running the forward —
// the first is not available: a LayerSlice owns its parameters and gradients, so S − s slices
// would be S − s parameter copies to keep equal plus S − s gradient buffers to sum, and
// sharing them would mean changing slice.ts. So a stage keeps, per in-flight micro-batch,
// only its INPUT on the CPU (the tokens, or the decoded activations it received, and the
// targets) and, when a backward comes for a micro-batch other than the one the slice
// currently holds, re-runs that micro-batch's forward first. Parameters do not change within
// a step and every kernel is deterministic (fixed reduction orders, no float atomics), so the
// recomputed activations are bit-identical to the ones whose output was sent
// (test/pipeline/stage.test.ts checks it). Cost: one extra forward per micro-batch whose
// backward is not adjacent to its forward — none on the last stage, whose B(m) always
// follows F(m) — and memory of one forward's activations per stage (stage-granular
// activation checkpointing), plus B·T·C floats of CPU input per in-flight micro-batch.
//
// A received message is decoded and validated (shape, kind, round, step, micro-batch id,
// targets, values) before anything is recorded; a bad one throws ActivationError and leaves
// the stage as it was, so the caller can count it and wait for a good one.
//
// Clipping. The norm that clips must be the norm of the WHOLE model's gradient, so each
// stage reports the sum of squares of its own gradients (a tied copy excluded: it is counted
// once, on stage 0), the caller sums them over the stages, and applyStep writes
// [norm, min(1, clip / (norm + 1e-6))] — what globalGradNorm computes for a whole model —
// into the optimiser's clip tensor before the AdamW kernels (src/train/optimizer.ts's
// moments and step count are reused, so its checkpoint state works unchanged).
// Environment-free.
//
// Over ~400 lines on purpose: one state machine over one slice — a step's micro-batch phase,
// the recomputation above, then the tied gradient, the norm and the step — whose phase checks
// guard every method.
import type { Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { globalGradNorm } from '../kernels/gradnorm.ts';
import type { ModelConfig } from '../model/config.ts';
import { LayerSlice } from '../model/slice.ts';
import { AdamW, DEFAULT_ADAMW, type AdamWSettings } from '../train/optimizer.ts';
import {
  ActivationError, activationMessageBytes, decodeActivations, encodeActivations, type ActivationMode,
} from './activation-codec.ts';

export interface PipelineStageOptions {
  from: number;
  to: number;
  /** B: sequences per micro-batch. */
  batch: number;
  /** T: tokens per sequence. */
  seqLen: number;
  /** Encoding of what this stage sends (activations forward, gradients back); default 'f16'. */
  mode?: ActivationMode;
  adamw?: AdamWSettings;
  /** Round stamped on sent messages and required of received ones (setRound changes it). */
  round?: number;
  /** Received messages longer than this are rejected unread; default the f32 size with targets. */
  maxMessageBytes?: number;
}

/** A micro-batch of data, given to stage 0 (and to a last stage that is also stage 0). */
export interface MicroBatchData {
  micro: number;
  /** B·T token ids. */
  tokens: Int32Array;
  /** B·T next-token targets, −1 ignored; they travel with the activations to the last stage. */
  targets: Int32Array;
}

export type ForwardResult =
  | { kind: 'activations'; micro: number; bytes: Uint8Array }
  | { kind: 'loss'; micro: number; loss: number };

interface SavedInput {
  tokens?: Int32Array;
  x?: Float32Array;
  targets: Int32Array;
}

export class PipelineStage {
  readonly slice: LayerSlice;
  readonly optimizer: AdamW;
  readonly mode: ActivationMode;
  readonly maxMessageBytes: number;
  round: number;
  /** Forwards re-run before a backward (see the header). */
  recomputes = 0;
  private readonly xIn: Tensor | null;
  private readonly dOut: Tensor | null;
  private readonly normOut: Tensor;
  private stepNo = -1;
  private micros = 0;
  /** An open step (beginOpenStep): any micro-batch ids, count unknown until closeStep. */
  private open = false;
  private lossScale = 1;
  private phase: 'idle' | 'micro' | 'done' = 'idle';
  private readonly saved = new Map<number, SavedInput>();
  private readonly forwarded = new Set<number>();
  private backwards = 0;
  /** The micro-batch whose forward activations the slice holds, or null. */
  private holds: number | null = null;
  private busy = false;
  private losses: number[] = [];
  /** Last stage: micro-batches whose backward was recorded with their forward (see the header). */
  private accumulated = 0;
  /** Last stage: each forwarded micro-batch's input gradient, read with its loss (null on stage 0). */
  private readonly inputGrads = new Map<number, Float32Array | null>();
  private tiedMine: Float32Array | null = null;
  private destroyed = false;

  private constructor(private readonly gpu: Gpu, readonly cfg: ModelConfig, opts: PipelineStageOptions) {
    this.mode = opts.mode ?? 'f16';
    this.round = opts.round ?? 0;
    this.slice = LayerSlice.create(gpu, cfg, opts.from, opts.to, { batch: opts.batch, seqLen: opts.seqLen });
    const { B, T } = this.slice;
    const C = cfg.dim;
    this.maxMessageBytes = opts.maxMessageBytes ?? activationMessageBytes('f32', B, T, C, true);
    this.optimizer = new AdamW(gpu, this.slice.layout, this.slice.params, this.slice.grads, opts.adamw ?? DEFAULT_ADAMW);
    this.xIn = this.isFirst ? null : gpu.tensor([B, T, C], 'f32', 'stage input');
    this.dOut = this.isLast ? null : gpu.tensor([B, T, C], 'f32', 'stage output grad');
    this.normOut = gpu.tensor([2], 'f32', 'stage grad norm');
  }

  /** Allocates the slice, optimiser state and hand-off buffers (ConfigError / KernelInputError on bad options). */
  static create(gpu: Gpu, cfg: ModelConfig, opts: PipelineStageOptions): PipelineStage {
    return new PipelineStage(gpu, cfg, opts);
  }

  get from(): number {
    return this.slice.from;
  }

  get to(): number {
    return this.slice.to;
  }

  get isFirst(): boolean {
    return this.slice.from === 0;
  }

  get isLast(): boolean {
    return this.slice.to === this.cfg.layers;
  }

  /** The step being run (set by beginStep). */
  get step(): number {
    return this.stepNo;
  }

  /** Micro-batches forwarded and not yet backwarded. */
  get inFlight(): number {
    return this.saved.size;
  }

  /** The last stage's losses of this step so far, by micro-batch id (undefined: not yet). */
  get stepLosses(): readonly number[] {
    return this.losses;
  }

  /** Starts an optimiser step of `micros` micro-batches (after the previous one's applyStep). */
  beginStep(step: number, micros: number): void {
    this.assertLive();
    if (this.phase === 'done' || (this.phase === 'micro' && this.forwarded.size > 0)) {
      throw new Error(`PipelineStage: step ${this.stepNo} is unfinished (${this.backwards}/${this.micros} backwards); call applyStep or abortStep first`);
    }
    if (!Number.isInteger(step) || step < 0 || step > 0xffffffff) throw new RangeError(`step must be a u32, got ${step}`);
    if (!Number.isInteger(micros) || micros < 1) throw new RangeError(`micro-batches must be an integer ≥ 1, got ${micros}`);
    this.stepNo = step;
    this.micros = micros;
    this.open = false;
    this.lossScale = 1 / micros;
    this.phase = 'micro';
    this.resetStep();
  }

  /**
   * Starts a step whose micro-batches are not known in advance — a stage replica in a swarm
   * gets whichever micro-batches its neighbours route to it. Ids are any u32; the last stage
   * scales each loss by `lossScale` (1 / micro-batches per data source, so a replica's
   * gradient is the same mean as in a fixed pipeline). closeStep() ends the micro-batch phase.
   */
  beginOpenStep(step: number, lossScale: number): void {
    this.beginStep(step, 1);
    if (!(lossScale > 0) || !Number.isFinite(lossScale)) throw new RangeError(`loss scale must be finite and > 0, got ${lossScale}`);
    this.open = true;
    this.micros = Infinity;
    this.lossScale = lossScale;
  }

  /**
   * Forgets a forwarded micro-batch whose backward will never come (the peer it went to
   * vanished and nobody else took it): its input is dropped, nothing was accumulated for it.
   */
  dropMicro(micro: number): boolean {
    if (this.isLast && this.saved.has(micro)) {
      throw new Error(`PipelineStage: the last stage accumulated micro-batch ${micro}'s gradient with its forward; backwardMicro it instead of dropping it`);
    }
    return this.saved.delete(micro);
  }

  /**
   * Ends an open step's micro-batch phase: true when there are gradients to step with
   * (then tied/norm/applyStep follow as for a fixed step), false when this stage processed
   * nothing (the step is over for it, nothing to apply). Throws while micro-batches are in flight.
   */
  closeStep(): boolean {
    this.assertLive();
    if (!this.open || this.phase !== 'micro') throw new Error('PipelineStage: closeStep outside an open step (beginOpenStep)');
    if (this.saved.size > 0) throw new Error(`PipelineStage: closeStep with ${this.saved.size} micro-batch(es) forwarded but not backwarded (backward or dropMicro them)`);
    this.micros = this.backwards;
    this.open = false;
    if (this.backwards === 0) {
      this.phase = 'idle';
      this.resetStep();
      return false;
    }
    this.phase = 'done';
    return true;
  }

  /** Drops the step's micro-batches (a peer vanished): gradients stay unapplied, nothing is stepped. */
  abortStep(): void {
    this.resetStep();
    this.phase = 'idle';
  }

  setRound(round: number): void {
    if (!Number.isInteger(round) || round < 0 || round > 0xffffffff) throw new RangeError(`round must be a u32, got ${round}`);
    this.round = round;
  }

  /**
   * Records and runs one micro-batch's forward: from data on stage 0, else from the previous
   * stage's encoded activations. Resolves to the encoded activations for the next stage, or
   * on the last stage to the micro-batch's loss. A bad message throws ActivationError and
   * changes nothing.
   */
  async forwardMicro(input: MicroBatchData | Uint8Array): Promise<ForwardResult> {
    this.enter('forwardMicro');
    try {
      const { B, T } = this.slice;
      const C = this.cfg.dim;
      let saved: SavedInput;
      let micro: number;
      if (this.isFirst) {
        if (input instanceof Uint8Array) throw new Error('PipelineStage: stage 0 takes data { micro, tokens, targets }, not a message');
        micro = input.micro;
        this.checkNewMicro(micro);
        const targets = this.checkTargets(input.targets);
        saved = { tokens: Int32Array.from(input.tokens), targets };
      } else {
        if (!(input instanceof Uint8Array)) throw new Error(`PipelineStage: stage [${this.from}, ${this.to}) takes the previous stage's activations message`);
        const msg = decodeActivations(input, {
          kind: 'activations', round: this.round, step: this.stepNo, B, T, C, vocabSize: this.cfg.vocabSize, maxBytes: this.maxMessageBytes,
        });
        micro = msg.micro;
        this.checkNewMicro(micro);
        saved = { x: msg.data, targets: msg.targets! };
      }
      this.record(saved); // throws (KernelInputError) before recording on bad tokens
      if (this.isLast) {
        // the backward now, so the head runs once: the loss comes out of its fused gradient pass
        this.slice.backward({ accumulate: this.accumulated > 0, lossScale: this.lossScale });
        this.accumulated++;
        this.saved.set(micro, { targets: saved.targets });
        this.forwarded.add(micro);
        this.holds = micro;
        const grad = this.slice.inputGrad;
        const [lossOut, inputGrad] = await Promise.all([this.gpu.readF32(this.slice.loss!), grad ? this.gpu.readF32(grad) : null]);
        this.inputGrads.set(micro, inputGrad);
        const loss = lossOut[0];
        this.losses[micro] = loss;
        return { kind: 'loss', micro, loss };
      }
      this.saved.set(micro, saved);
      this.forwarded.add(micro);
      this.holds = micro;
      const data = await this.gpu.readF32(this.slice.output!);
      const bytes = encodeActivations({
        mode: this.mode, kind: 'activations', round: this.round, step: this.stepNo, micro, B, T, C, data, targets: saved.targets,
      });
      return { kind: 'activations', micro, bytes };
    } finally {
      this.busy = false;
    }
  }

  /**
   * Records and runs one micro-batch's backward, accumulating into the parameter gradients:
   * on the last stage from its loss (no message), else from the next stage's encoded
   * gradients. Resolves to the encoded gradient for the previous stage, or null on stage 0.
   */
  async backwardMicro(micro: number, grad?: Uint8Array): Promise<Uint8Array | null> {
    this.enter('backwardMicro');
    try {
      const { B, T } = this.slice;
      const C = this.cfg.dim;
      if (this.phase !== 'micro') throw new Error('PipelineStage: backwardMicro outside a step (call beginStep)');
      const saved = this.saved.get(micro);
      if (!saved) {
        throw new ActivationError('micro', this.forwarded.has(micro)
          ? `micro-batch ${micro} was already backwarded this step`
          : `micro-batch ${micro} has not been forwarded this step`);
      }
      let dOut: Float32Array | null = null;
      if (!this.isLast) {
        if (!(grad instanceof Uint8Array)) throw new Error(`PipelineStage: stage [${this.from}, ${this.to}) needs the next stage's grads message`);
        dOut = decodeActivations(grad, {
          kind: 'grads', round: this.round, step: this.stepNo, micro, B, T, C, maxBytes: this.maxMessageBytes,
        }).data;
      } else if (grad !== undefined) {
        throw new Error('PipelineStage: the last stage starts its backward at the loss and takes no message');
      }
      let data: Float32Array | null;
      if (this.isLast) {
        data = this.inputGrads.get(micro) ?? null; // recorded and read with its forward
        this.inputGrads.delete(micro);
      } else {
        if (this.holds !== micro) {
          this.record(saved);
          this.recomputes++;
        }
        this.gpu.write(this.dOut!, dOut!);
        this.slice.backward({ dOut: this.dOut!, accumulate: this.backwards > 0 });
        data = null;
      }
      this.holds = null;
      this.saved.delete(micro);
      this.backwards++;
      if (this.backwards === this.micros) this.phase = 'done';
      if (this.isFirst) {
        this.gpu.flush();
        return null;
      }
      data ??= await this.gpu.readF32(this.slice.inputGrad!);
      return encodeActivations({ mode: this.mode, kind: 'grads', round: this.round, step: this.stepNo, micro, B, T, C, data });
    } finally {
      this.busy = false;
    }
  }

  /** Whether this stage holds a part of a tied embedding's gradient that another stage must add. */
  get holdsTiedPart(): boolean {
    return this.cfg.tiedEmbeddings && this.isFirst !== this.isLast;
  }

  /** This stage's part of the tied embedding's gradient (read back), once the step's micro-batches are done. */
  async tiedGradient(): Promise<Float32Array> {
    this.assertDone('tiedGradient');
    if (!this.holdsTiedPart) throw new Error('PipelineStage: this stage holds no part of a tied embedding');
    this.tiedMine = await this.gpu.readF32(this.slice.grads.get('embedding')!);
    return this.tiedMine.slice();
  }

  /**
   * Adds the other stage's part (the first stage's to the last's, and the last's to the
   * first's), so both copies of the tied matrix see the full gradient: f32(a + b) on both
   * sides, the same bits, so the two copies stay equal after the step.
   */
  addTiedGradient(other: Float32Array): void {
    this.assertDone('addTiedGradient');
    const mine = this.tiedMine;
    if (!mine) throw new Error('PipelineStage: call tiedGradient() first');
    if (!(other instanceof Float32Array) || other.length !== mine.length) {
      throw new Error(`PipelineStage: the other tied part must be a Float32Array of ${mine.length} values`);
    }
    const sum = new Float32Array(mine.length);
    for (let i = 0; i < sum.length; i++) sum[i] = mine[i] + other[i];
    this.gpu.write(this.slice.grads.get('embedding')!, sum);
    this.tiedMine = null;
  }

  /** Σ g² over this stage's gradients, a tied copy excluded (it is counted on stage 0). */
  async gradNormSquared(): Promise<number> {
    this.assertDone('gradNormSquared');
    if (this.tiedMine) throw new Error('PipelineStage: tiedGradient() was read but addTiedGradient() not called');
    // the optimizer's flat runs (a few dispatches) unless a tied copy must be left out
    const tied = this.slice.layout.some((s) => s.tiedCopy);
    const grads = tied ? this.slice.layout.filter((s) => !s.tiedCopy).map((s) => this.slice.grads.get(s.name)!) : this.optimizer.normGradients;
    globalGradNorm(this.gpu, grads, this.normOut, { maxNorm: 1 }); // only the norm is used
    const norm = (await this.gpu.readF32(this.normOut))[0];
    return norm * norm;
  }

  /**
   * Records clipping by the pipeline's global gradient norm and one AdamW update of this
   * stage's parameters; the commands go out with the next submit.
   */
  applyStep(lr: number, globalNorm: number): void {
    this.assertDone('applyStep');
    if (!(globalNorm >= 0) || !Number.isFinite(globalNorm)) throw new RangeError(`global gradient norm must be finite and ≥ 0, got ${globalNorm}`);
    const { clipNorm } = this.optimizer.settings;
    this.gpu.write(this.optimizer.gradNorm, new Float32Array([globalNorm, Math.min(1, clipNorm / (globalNorm + 1e-6))]));
    this.optimizer.applyUpdate(lr); // over the arenas' flat runs: one AdamW dispatch per run
    this.phase = 'idle';
    this.resetStep();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.optimizer.destroy();
    this.xIn?.release();
    this.dOut?.release();
    this.normOut.release();
    this.slice.destroy();
  }

  // ---- internals ----

  /** Records the forward of a saved input (uploads first). */
  private record(saved: SavedInput): void {
    if (this.isFirst) {
      this.slice.forward({ tokens: saved.tokens!, targets: this.isLast ? saved.targets : undefined });
    } else {
      this.gpu.write(this.xIn!, saved.x!);
      this.slice.forward({ x: this.xIn!, targets: this.isLast ? saved.targets : undefined });
    }
  }

  private checkNewMicro(micro: number): void {
    if (this.phase !== 'micro') throw new Error('PipelineStage: forwardMicro outside a step (call beginStep)');
    if (!Number.isInteger(micro) || micro < 0 || micro >= this.micros || micro > 0xffffffff) {
      throw new ActivationError('micro', `micro-batch ${micro} is outside this step's 0..${this.micros - 1}`);
    }
    if (this.forwarded.has(micro)) throw new ActivationError('micro', `micro-batch ${micro} was already forwarded this step`);
  }

  private checkTargets(t: Int32Array): Int32Array {
    const N = this.slice.B * this.slice.T;
    if (!(t instanceof Int32Array) || t.length !== N) throw new ActivationError('targets', `targets must be an Int32Array of B·T = ${N} ids, got ${t?.length}`);
    const V = this.cfg.vocabSize;
    for (let i = 0; i < N; i++) {
      if (t[i] < -1 || t[i] >= V) throw new ActivationError('targets', `target ${t[i]} at position ${i} is outside [−1, ${V})`);
    }
    return Int32Array.from(t);
  }

  private resetStep(): void {
    this.saved.clear();
    this.forwarded.clear();
    this.backwards = 0;
    this.holds = null;
    this.losses = [];
    this.accumulated = 0;
    this.inputGrads.clear();
    this.tiedMine = null;
  }

  private enter(what: string): void {
    this.assertLive();
    if (this.busy) throw new Error(`PipelineStage: ${what} while another operation of this stage is running (one at a time)`);
    this.busy = true;
  }

  private assertDone(what: string): void {
    this.assertLive();
    if (this.phase !== 'done') throw new Error(`PipelineStage: ${what} before all ${this.micros} micro-batches of the step were backwarded`);
  }

  private assertLive(): void {
    if (this.destroyed) throw new Error('PipelineStage: destroyed');
  }
}
