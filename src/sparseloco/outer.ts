// The outer step of a round, for one replica (DESIGN.md, step 3).
//   SparseLoCo: Δ = θ_start − θ_now; e ← β·e + Δ; top-k per chunk of e, 2-bit quantised,
//   sent; e ← e − decode(sent); everyone aggregates what arrived (median-norm clip, average
//   per index over senders) and applies θ_start ← θ_start − α·Δ̄; θ_now ← θ_start.
//   DiLoCo (dense baseline): Δ̄ = mean of the replicas' dense Δ; Nesterov outer SGD.
import type { Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { axpby } from '../kernels/elementwise.ts';
import { layoutElements, type ParamSpec } from '../model/config.ts';
import { NonFiniteAggregate, aggregate } from './aggregate.ts';
import { ErrorFeedback, applySparse } from './feedback.ts';
import type { SparseTensor } from './selection.ts';
import { UpdateError, decodeOwn, decodeUpdate, encodeUpdate } from './wire.ts';

export type OuterMethod = 'sparseloco' | 'diloco' | 'none';

export interface SparseLoCoSettings {
  /** Outer learning rate α (θ_start ← θ_start − α·Δ̄). */
  alpha: number;
  /** Error-feedback decay β. */
  beta: number;
  /** Values kept per chunk. */
  k: number;
}

export const DEFAULT_SPARSELOCO: SparseLoCoSettings = { alpha: 1, beta: 0.95, k: 64 };

export interface DilocoSettings {
  /** Outer learning rate (DiLoCo: 0.7). */
  lr: number;
  /** Nesterov momentum (DiLoCo: 0.9). */
  momentum: number;
}

export const DEFAULT_DILOCO: DilocoSettings = { lr: 0.7, momentum: 0.9 };

/** θ_start: a copy of the parameters as they were when the round began. */
export class RoundStart {
  readonly theta = new Map<string, Tensor>();

  constructor(
    private readonly gpu: Gpu,
    readonly layout: readonly ParamSpec[],
  ) {
    for (const s of layout) this.theta.set(s.name, gpu.tensor(s.shape, 'f32', `θ_start/${s.name}`));
  }

  /** Records θ_start ← θ_now. */
  capture(params: ReadonlyMap<string, Tensor>): void {
    for (const s of this.layout) this.gpu.copy(params.get(s.name)!, this.theta.get(s.name)!);
  }

  /** Records θ_now ← θ_start. */
  restoreInto(params: ReadonlyMap<string, Tensor>): void {
    for (const s of this.layout) this.gpu.copy(this.theta.get(s.name)!, params.get(s.name)!);
  }

  destroy(): void {
    for (const t of this.theta.values()) t.release();
    this.theta.clear();
  }
}

export interface ApplyReport {
  /** Messages that decoded and were aggregated. */
  accepted: number;
  /** Messages dropped, with why (never applied). */
  rejected: { index: number; reason: string; message: string }[];
  /**
   * Why nothing was applied although messages decoded (their average is not finite), else
   * absent. Every replica computes the same average, so every replica skips alike.
   */
  notApplied?: string;
}

/** The SparseLoCo outer step of one replica: its θ_start and error-feedback buffers; it compresses the replica's update and applies the round's. */
export class SparseLoCoOuter {
  readonly start: RoundStart;
  readonly feedback: ErrorFeedback;

  constructor(
    private readonly gpu: Gpu,
    readonly layout: readonly ParamSpec[],
    private readonly params: ReadonlyMap<string, Tensor>,
    readonly settings: SparseLoCoSettings = DEFAULT_SPARSELOCO,
    private readonly configHash = 0,
  ) {
    this.start = new RoundStart(gpu, layout);
    this.feedback = new ErrorFeedback(gpu, layout, { beta: settings.beta, k: settings.k });
    this.start.capture(params);
  }

  /** This replica's compressed update for `round`; also subtracts what it sends from e. */
  async compress(round: number): Promise<Uint8Array> {
    this.feedback.accumulate(this.start.theta, this.params);
    const selection = await this.feedback.select();
    const bytes = encodeUpdate({ configHash: this.configHash, round, k: this.settings.k, tensors: selection });
    this.feedback.subtract(decodeOwn(selection));
    return bytes;
  }

  /**
   * Decodes every message (this replica's own among them), drops the invalid ones, aggregates
   * the rest (clipped with the commit's clip floor: aggregate.ts) and applies the outer step;
   * the replica then continues from the new θ_start.
   */
  applyUpdates(messages: readonly Uint8Array[], round: number, maxBytes?: number, clipFloor?: readonly number[]): ApplyReport {
    const layout = this.layout.map((s) => ({ name: s.name, shape: s.shape }));
    const decoded: SparseTensor[][] = [];
    const rejected: ApplyReport['rejected'] = [];
    messages.forEach((m, index) => {
      try {
        decoded.push(decodeUpdate(m, { configHash: this.configHash, round, layout, maxBytes }).tensors);
      } catch (e) {
        if (!(e instanceof UpdateError)) throw e;
        rejected.push({ index, reason: e.reason, message: e.message });
      }
    });
    let notApplied: string | undefined;
    if (decoded.length > 0) {
      try {
        applySparse(this.gpu, this.start.theta, aggregate(decoded, layout, clipFloor), -this.settings.alpha);
      } catch (e) {
        if (!(e instanceof NonFiniteAggregate)) throw e;
        notApplied = e.message; // another peer's bytes never end this process nor poison θ
      }
    }
    this.start.restoreInto(this.params);
    return { accepted: decoded.length, rejected, ...(notApplied ? { notApplied } : {}) };
  }

  destroy(): void {
    this.start.destroy();
    this.feedback.destroy();
  }
}

/**
 * Dense DiLoCo across replicas in one process (the comparison baseline): Δ̄ = mean over
 * replicas of θ_start − θ_now, then Nesterov SGD on θ_start, then every replica restarts
 * from it. Sends 4 bytes per parameter per replica.
 */
export class DilocoOuter {
  readonly start: RoundStart;
  private readonly momentum = new Map<string, Tensor>();
  private readonly mean = new Map<string, Tensor>();

  constructor(
    private readonly gpu: Gpu,
    readonly layout: readonly ParamSpec[],
    initial: ReadonlyMap<string, Tensor>,
    readonly settings: DilocoSettings = DEFAULT_DILOCO,
  ) {
    this.start = new RoundStart(gpu, layout);
    this.start.capture(initial);
    for (const s of layout) {
      const v = gpu.tensor(s.shape, 'f32', `outer momentum/${s.name}`);
      gpu.write(v, new Float32Array(s.size));
      this.momentum.set(s.name, v);
      this.mean.set(s.name, gpu.tensor(s.shape, 'f32', `Δ̄/${s.name}`));
    }
  }

  /** Records the outer step from the replicas' current parameters and resets them all to θ_start. */
  step(replicas: readonly ReadonlyMap<string, Tensor>[]): void {
    const R = replicas.length;
    const { lr, momentum: mu } = this.settings;
    for (const s of this.layout) {
      const mean = this.mean.get(s.name)!;
      const start = this.start.theta.get(s.name)!;
      // Δ̄ = θ_start − mean_r θ_now,r
      this.gpu.copy(start, mean);
      for (const params of replicas) axpby(this.gpu, -1 / R, params.get(s.name)!, 1, mean);
      // PyTorch-style Nesterov: v ← μ·v + Δ̄; θ_start ← θ_start − lr·(Δ̄ + μ·v)
      const v = this.momentum.get(s.name)!;
      axpby(this.gpu, 1, mean, mu, v);
      axpby(this.gpu, -lr, mean, 1, start);
      axpby(this.gpu, -lr * mu, v, 1, start);
    }
    for (const params of replicas) this.start.restoreInto(params);
  }

  /** Bytes each replica sends per round: its dense f32 Δ. */
  get bytesPerReplica(): number {
    return 4 * layoutElements(this.layout);
  }

  destroy(): void {
    this.start.destroy();
    for (const t of [...this.momentum.values(), ...this.mean.values()]) t.release();
  }
}
