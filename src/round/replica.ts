// One contributor's copy of the run's model with everything a round needs: the slice, the
// inner AdamW, and SparseLoCo state (θ_start and error feedback). The network code drives it;
// this file knows nothing of peers. In a pipelined run it holds one stage's layers (a
// PipelineStage, driven by a SwarmPeer) instead of the whole model; evaluation and local
// inner steps are then unavailable (they need every layer).
import type { Gpu } from '../gpu/gpu.ts';
import type { ParamSpec } from '../model/config.ts';
import { LayerSlice } from '../model/slice.ts';
import { PipelineStage } from '../pipeline/stage.ts';
import { topkPerChunk } from '../kernels/topk.ts';
import { applySparse } from '../sparseloco/feedback.ts';
import { SparseLoCoOuter, type ApplyReport } from '../sparseloco/outer.ts';
import type { SparseTensor } from '../sparseloco/selection.ts';
import { UpdateError, decodeUpdate } from '../sparseloco/wire.ts';
import { configHash } from '../model/identity.ts';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../train/checkpoint.ts';
import { AdamW, DEFAULT_ADAMW } from '../train/optimizer.ts';
import { sampleBatch, type Batch } from '../train/sampler.ts';
import type { LrSchedule } from '../train/schedule.ts';
import { weightsFingerprint } from '../train/weights-fingerprint.ts';
import { LocalTrainer, type StepResult } from '../train/trainer.ts';
import { runModel, stageBounds, type RunConfig } from '../protocol/run-config.ts';

/** One peer's replica of the run's model (or of its stage) through the rounds; the contributor and the validator each hold one. */
export class ModelReplica {
  readonly slice: LayerSlice;
  readonly layout: readonly ParamSpec[];
  private readonly optimizer: AdamW;
  private readonly trainer: LocalTrainer | null;
  /** The pipeline stage this replica holds (pipelined runs), else null. */
  readonly stage: PipelineStage | null;
  readonly stageIndex: number;
  private readonly sparse: SparseLoCoOuter;
  private readonly source: { batch(step: number): Pick<Batch, 'tokens' | 'targets'> };

  constructor(
    private readonly gpu: Gpu,
    readonly config: RunConfig,
    tokens: ArrayLike<number>,
    readonly address: string,
    stageIndex = 0,
  ) {
    const cfg = runModel(config);
    const H = config.innerSteps;
    this.stageIndex = stageIndex;
    if (config.stages > 1) {
      const range = stageBounds(config)[stageIndex];
      if (!range) throw new RangeError(`stage ${stageIndex} of a run of ${config.stages} stages`);
      this.stage = PipelineStage.create(gpu, cfg, { from: range.from, to: range.to, batch: config.batch, seqLen: config.seq, mode: config.activations, adamw: DEFAULT_ADAMW });
      this.slice = this.stage.slice;
      this.optimizer = this.stage.optimizer;
    } else {
      this.stage = null;
      this.slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: config.batch, seqLen: config.seq });
      this.optimizer = new AdamW(gpu, this.slice.layout, this.slice.params, this.slice.grads, DEFAULT_ADAMW);
    }
    this.layout = this.slice.layout;
    // Data and learning rate follow the run's clock: global step s (1-based) is inner step
    // (s−1) mod H of round ⌊(s−1)/H⌋, drawn for this hotkey (a validator can rebuild it).
    const source = (this.source = {
      batch: (step: number) => {
        const round = Math.floor((step - 1) / H);
        return sampleBatch(tokens, { B: config.batch, T: config.seq }, { runSeed: config.seed, round, contributor: address, step: (step - 1) % H });
      },
    });
    const schedule: LrSchedule = (this.schedule = { peak: config.lr, warmup: config.warmup, total: config.plannedRounds * H, minRatio: 0.1 });
    this.trainer = this.stage ? null : new LocalTrainer(gpu, this.slice, this.optimizer, source, schedule, 1);
    this.tokens = tokens;
    this.slice.initialize(config.seed);
    this.sparse = new SparseLoCoOuter(gpu, this.layout, this.slice.params, config.sparseloco, configHash(cfg));
  }

  readonly schedule: LrSchedule;
  private readonly tokens: ArrayLike<number>;

  /**
   * Compiles every kernel a round uses before the first one needs it, without blocking the
   * event loop (drivers compile synchronously on first use: a minute for the whole model on
   * a loaded CPU "GPU", long enough for the coordinator to drop a silent peer). `train`:
   * forward, backward, the optimiser and the outer step (a contributor); else forward and
   * the outer step (a validator). Resolves with the number of kernels compiled.
   */
  warmUp(o: { train?: boolean; onProgress?: (done: number, total: number) => void } = {}): Promise<number> {
    return this.gpu.precompile(() => this.traceRound(o.train ?? true), o.onProgress);
  }

  /** A round's GPU work with nothing dispatched (Gpu.precompile): forward, backward, optimiser, outer step. */
  private traceRound(train: boolean): void {
    const batch = this.source.batch(1);
    if (this.stage) {
      // A stage's slice takes the residual stream (not tokens) unless it is the first.
      const x = this.slice.from === 0 ? null : this.gpu.tensor([this.config.batch, this.config.seq, this.slice.cfg.dim], 'f32', 'warm-up input');
      const targets = this.stage.isLast ? batch.targets : undefined;
      this.slice.forward(x ? { x, targets } : { tokens: batch.tokens, targets });
      if (train) this.slice.backward(this.stage.isLast ? { accumulate: false, lossScale: 1 } : { dOut: this.slice.output!, accumulate: false });
      x?.release();
    } else {
      this.slice.forward(batch);
      if (train) this.slice.backward({ accumulate: false, lossScale: 1 });
    }
    if (train) {
      const step = this.optimizer.step;
      this.optimizer.update(0);
      this.optimizer.step = step; // nothing was dispatched: the optimiser took no step
      this.sparse.feedback.accumulate(this.sparse.start.theta, this.slice.params);
      if (this.sparse.feedback.topkOn === 'gpu') {
        const first = this.layout[0];
        const grid = this.sparse.feedback.grids.get(first.name)!;
        const k = this.config.sparseloco.k;
        const local = this.gpu.tensor([grid.count, k], 'u32', 'warm-up top-k');
        const values = this.gpu.tensor([grid.count, k], 'f32', 'warm-up top-k');
        topkPerChunk(this.gpu, this.sparse.feedback.e.get(first.name)!, grid, k, local, values);
        local.release();
        values.release();
      }
    }
    applySparse(this.gpu, this.sparse.start.theta, [{ name: this.layout[0].name, indices: Uint32Array.of(0), values: Float32Array.of(0) }], 1);
  }

  /** Micro-batch `micro` of inner step `step` of `round` (a pipelined run's stage 0), drawn for this hotkey. */
  microBatch(round: number, step: number, micro: number): Pick<Batch, 'tokens' | 'targets'> {
    const { batch, seq, seed, microBatches } = this.config;
    return sampleBatch(this.tokens, { B: batch, T: seq }, { runSeed: seed, round, contributor: this.address, step: step * microBatches + micro });
  }

  /** θ_start ← θ_now ← the run's seeded initialisation (round 0). */
  initializeFromSeed(): void {
    this.slice.initialize(this.config.seed);
    this.sparse.start.capture(this.slice.params);
  }

  /** Inner step `step` (0-based) of `round`. */
  trainStep(round: number, step: number): Promise<StepResult> {
    return this.wholeModel('an inner step').trainStep(round * this.config.innerSteps + step + 1);
  }

  private wholeModel(what: string): LocalTrainer {
    if (!this.trainer) throw new Error(`ModelReplica: ${what} needs the whole model; this replica holds stage ${this.stageIndex}`);
    return this.trainer;
  }

  /** The round's compressed update (error feedback keeps what is not sent). */
  compress(round: number): Promise<Uint8Array> {
    return this.sparse.compress(round);
  }

  /** Aggregates the committed updates (TSLC payloads, in commit order; the commit's clip floor) into θ_start; θ_now ← θ_start. */
  apply(payloads: readonly Uint8Array[], round: number, clipFloor?: readonly number[]): ApplyReport {
    return this.sparse.applyUpdates(payloads, round, this.config.maxMessageBytes, clipFloor);
  }

  /** Why a peer's update payload cannot be applied (decoded and checked in full), or null. */
  checkUpdate(payload: Uint8Array, round: number): { reason: string; message: string } | null {
    try {
      decodeUpdate(payload, { configHash: configHash(this.slice.cfg), round, layout: this.layout, maxBytes: this.config.maxMessageBytes });
      return null;
    } catch (e) {
      if (e instanceof UpdateError) return { reason: e.reason, message: e.message };
      throw e;
    }
  }

  /** Mean loss of θ_now over the batches, nothing updated. */
  evaluate(batches: readonly Pick<Batch, 'tokens' | 'targets'>[]): Promise<number> {
    return this.wholeModel('evaluation').evaluate(batches);
  }

  /** θ_now ← θ_start − scale·α·Δ of one peer's update (a validator's trial step; discardRound undoes it). */
  tryUpdate(payload: Uint8Array, round: number, scale: number): SparseTensor[] {
    const { tensors } = decodeUpdate(payload, { configHash: configHash(this.slice.cfg), round, layout: this.layout, maxBytes: this.config.maxMessageBytes });
    this.sparse.start.restoreInto(this.slice.params);
    applySparse(this.gpu, this.slice.params, tensors, -scale * this.config.sparseloco.alpha);
    return tensors;
  }

  /** θ_now ← θ_start, dropping the inner steps of a round that will not be sent. */
  discardRound(): void {
    this.sparse.start.restoreInto(this.slice.params);
  }

  /** θ_start, by parameter name. */
  async readStart(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const s of this.layout) out.set(s.name, await this.gpu.readF32(this.sparse.start.theta.get(s.name)!));
    return out;
  }

  /** θ_start ← θ_now ← the given weights (checked against the layout first). */
  loadStart(weights: ReadonlyMap<string, Float32Array>): void {
    this.slice.setParameters(weights);
    this.sparse.start.capture(this.slice.params);
  }

  /** The weights fingerprint of θ_start (SHA-256, weights-fingerprint.ts): equal on every replica after the same commits. */
  async weightsHash(): Promise<string> {
    return weightsFingerprint(await this.readStart());
  }

  /** θ_start of `round` as a checkpoint file (what a late joiner loads). */
  async encodeWeights(round: number): Promise<Uint8Array> {
    const tensors = new Map<string, Float32Array>();
    for (const [name, data] of await this.readStart()) tensors.set(`param/${name}`, data);
    // The run's checkpoint file is a pure function of (weights, round): no step, no address, so
    // every replica of the stage encodes the uploader's bytes and can serve its pieces by their
    // hashes (src/contributor/checkpoint-peers.ts).
    return encodeCheckpoint({ ...this.checkpointOf(round, tensors), step: 0, meta: { run: this.config.run } });
  }

  /** Reads weights sent by a peer or the coordinator: a checkpoint of this run's model. */
  decodeWeights(bytes: Uint8Array, source: string): { round: number; weights: Map<string, Float32Array> } {
    const c = decodeCheckpoint(bytes, source);
    const round = (c.dataPosition as { round?: unknown } | null)?.round;
    if (typeof round !== 'number' || !Number.isInteger(round) || round < 0) throw new CheckpointError('header', `${source}: no round in the weights`);
    if (configHash(c.model) !== configHash(this.slice.cfg)) throw new CheckpointError('header', `${source}: weights of another model`);
    if (c.from !== this.slice.from || c.to !== this.slice.to) throw new CheckpointError('header', `${source}: weights of layers [${c.from}, ${c.to}), not of this replica's [${this.slice.from}, ${this.slice.to})`);
    const weights = new Map<string, Float32Array>();
    for (const s of this.layout) {
      const t = c.tensors.get(`param/${s.name}`);
      if (!t || t.length !== s.size) throw new CheckpointError('missing', `${source}: parameter ${s.name} missing or of the wrong size`);
      for (let i = 0; i < t.length; i++) if (!Number.isFinite(t[i])) throw new CheckpointError('header', `${source}: ${s.name} holds a non-finite value`);
      weights.set(s.name, t);
    }
    return { round, weights };
  }

  /** Everything to resume as this contributor: θ_start of `round`, error feedback, AdamW. */
  async saveState(round: number): Promise<Checkpoint> {
    const tensors = new Map<string, Float32Array>();
    for (const [name, data] of await this.readStart()) tensors.set(`param/${name}`, data);
    for (const [name, data] of await this.sparse.feedback.readState()) tensors.set(name, data);
    for (const [name, data] of await this.optimizer.readState()) tensors.set(name, data);
    return this.checkpointOf(round, tensors);
  }

  /** Restores saveState's checkpoint; returns its round. */
  restoreState(c: Checkpoint): number {
    const { round, weights } = this.decodeWeights(encodeCheckpoint(c), 'local checkpoint');
    this.loadStart(weights);
    this.sparse.feedback.loadState(c.tensors);
    this.optimizer.loadState(c.tensors, c.step);
    return round;
  }

  private checkpointOf(round: number, tensors: Map<string, Float32Array>): Checkpoint {
    return { format: 1, model: this.slice.cfg, from: this.slice.from, to: this.slice.to, step: this.optimizer.step, dataPosition: { round }, tensors, meta: { run: this.config.run, address: this.address } };
  }

  destroy(): void {
    this.sparse.destroy();
    if (this.stage) {
      this.stage.destroy(); // its optimiser and slice with it
      return;
    }
    this.trainer!.destroy();
    this.optimizer.destroy();
    this.slice.destroy();
  }
}
