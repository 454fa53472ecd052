// SparseLoCo's error feedback on the GPU (DESIGN.md, "One round of training", step 3):
//   e ← β·e + Δ, Δ = θ_start − θ_now         accumulate()
//   top-k magnitudes of e per chunk           select()    (exact, kernels/topk.ts)
//   e ← e − decode(sent)                      subtract()  (kernels/scatter.ts)
// and the receivers' outer step θ_start ← θ_start − α·Δ̄ (applySparse). Everything is
// recorded on the Gpu's encoder; only select() reads back (the kept entries, not e).
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Tensor } from '../gpu/tensor.ts';
import { axpby, fill } from '../kernels/elementwise.ts';
import { checkIndices, scatterAdd, uploadIndices } from '../kernels/scatter.ts';
import { selectTopKMany, topkCpu } from '../kernels/topk.ts';
import type { ParamSpec } from '../model/config.ts';
import { MAX_CHUNK_ELEMENTS, chunkGrid, type ChunkGrid, type ChunkOptions } from '../kernels/chunks.ts';
import type { TensorSelection } from './selection.ts';

export interface ErrorFeedbackOptions {
  /** Decay of the error buffer (Templar: 0.95). */
  beta?: number;
  /** Values kept per chunk (64 of 64×64: 1.5625%). */
  k?: number;
  chunks?: ChunkOptions;
  /**
   * Where select() ranks e: 'gpu' (the top-k kernel; reads back only the kept entries),
   * 'cpu' (reads e back and ranks it on the CPU; the same bits), or 'auto' (default): the
   * CPU on software adapters (SwiftShader, llvmpipe, WARP), where it measured ~20× faster
   * than the kernel, and the GPU on hardware.
   */
  topk?: 'gpu' | 'cpu' | 'auto';
}

/** A sparse update of one tensor: unique flat indices and their values. */
export interface SparseUpdate {
  name: string;
  indices: Uint32Array;
  values: Float32Array;
}

const STATE_PREFIX = 'ef/';

export class ErrorFeedback {
  readonly beta: number;
  readonly k: number;
  /** The error buffer of each tensor, zero at the start. */
  readonly e = new Map<string, Tensor>();
  readonly grids = new Map<string, ChunkGrid>();
  /** Where select() ranks e (options.topk resolved for this adapter). */
  readonly topkOn: 'gpu' | 'cpu';

  constructor(
    private readonly gpu: Gpu,
    readonly layout: readonly ParamSpec[],
    opts: ErrorFeedbackOptions = {},
  ) {
    const K = 'ErrorFeedback';
    this.beta = opts.beta ?? 0.95;
    this.k = opts.k ?? 64;
    if (!Number.isFinite(this.beta) || this.beta < 0 || this.beta > 1) throw new KernelInputError(K, `beta must be in [0, 1], got ${this.beta}`);
    if (!Number.isInteger(this.k) || this.k < 1 || this.k > MAX_CHUNK_ELEMENTS) {
      throw new KernelInputError(K, `k must be an integer in [1, ${MAX_CHUNK_ELEMENTS}], got ${this.k}`);
    }
    const where = opts.topk ?? 'auto';
    if (where !== 'gpu' && where !== 'cpu' && where !== 'auto') throw new KernelInputError(K, `topk must be 'gpu', 'cpu' or 'auto', got ${String(where)}`);
    this.topkOn = where === 'auto' ? (gpu.info.isSoftware ? 'cpu' : 'gpu') : where;
    const grids = layout.map((s) => chunkGrid(s.shape, opts.chunks));
    layout.forEach((s, i) => {
      if (this.grids.has(s.name)) throw new KernelInputError(K, `layout names ${s.name} twice`);
      this.grids.set(s.name, grids[i]);
    });
    for (const s of layout) {
      const t = gpu.tensor(s.shape, 'f32', `${STATE_PREFIX}${s.name}`);
      fill(gpu, t, 0);
      this.e.set(s.name, t);
    }
  }

  /** Records e ← β·e + (θ_start − θ_now) for every tensor of the layout. */
  accumulate(thetaStart: ReadonlyMap<string, Tensor>, thetaNow: ReadonlyMap<string, Tensor>): void {
    const K = 'ErrorFeedback.accumulate';
    for (const s of this.layout) {
      for (const [what, m] of [['thetaStart', thetaStart], ['thetaNow', thetaNow]] as const) {
        const t = m.get(s.name);
        if (!t) throw new KernelInputError(K, `${what} lacks ${s.name}`);
        if (t.dtype !== 'f32' || t.size !== s.size) throw new KernelInputError(K, `${what} ${s.name} must be f32 with ${s.size} elements, got ${t}`);
      }
    }
    // Δ is formed first (one exact-as-f32 subtraction), then added to β·e: adding θ_start
    // to e before subtracting θ_now would lose Δ's low bits to θ's magnitude.
    const largest = Math.max(...this.layout.map((s) => s.size));
    const delta = this.gpu.tensor([largest], 'f32', 'Δ scratch');
    for (const s of this.layout) {
      const start = thetaStart.get(s.name)!;
      const d = this.view(delta, s);
      this.gpu.copy(start, d, start.byteLength);
      axpby(this.gpu, -1, thetaNow.get(s.name)!, 1, d);
      axpby(this.gpu, 1, d, this.beta, this.e.get(s.name)!);
    }
    delta.release();
  }

  /** The top-k of every chunk of e, per tensor in layout order (reads the selection back). */
  async select(): Promise<TensorSelection[]> {
    let picked: { local: Uint16Array; values: Float32Array }[];
    if (this.topkOn === 'gpu') {
      const items = this.layout.map((s) => ({ x: this.e.get(s.name)!, grid: this.grids.get(s.name)! }));
      picked = await selectTopKMany(this.gpu, items, this.k);
    } else {
      picked = [];
      for (const s of this.layout) picked.push(topkCpu(await this.gpu.readF32(this.e.get(s.name)!), this.grids.get(s.name)!, this.k));
    }
    return this.layout.map((s, i) => ({ name: s.name, grid: this.grids.get(s.name)!, k: this.k, local: picked[i].local, values: picked[i].values }));
  }

  /** Records e ← e − values at indices for what was sent (flat, unique indices per tensor). */
  subtract(sent: readonly SparseUpdate[]): void {
    applySparse(this.gpu, this.e, sent, -1, 'ErrorFeedback.subtract');
  }

  /** The error buffers for a checkpoint, named 'ef/<param>'. */
  async readState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.e) out.set(`${STATE_PREFIX}${name}`, await this.gpu.readF32(t));
    return out;
  }

  /** Restores what readState wrote. */
  loadState(state: ReadonlyMap<string, Float32Array>): void {
    for (const s of this.layout) {
      const data = state.get(`${STATE_PREFIX}${s.name}`);
      if (!data) throw new Error(`checkpoint lacks error-feedback state ${STATE_PREFIX}${s.name}`);
      if (data.length !== s.size) throw new Error(`checkpoint's ${STATE_PREFIX}${s.name} holds ${data.length} values, expected ${s.size}`);
    }
    for (const s of this.layout) this.gpu.write(this.e.get(s.name)!, state.get(`${STATE_PREFIX}${s.name}`)!);
  }

  /** Bytes of error-feedback state on the GPU. */
  get bytes(): number {
    let n = 0;
    for (const t of this.e.values()) n += t.byteLength;
    return n;
  }

  destroy(): void {
    for (const t of this.e.values()) t.release();
    this.e.clear();
  }

  /** A tensor of spec's shape over the first elements of `scratch`'s buffer. */
  private view(scratch: Tensor, s: ParamSpec): Tensor {
    return new Tensor(this.gpu, scratch.buffer, s.shape, 'f32', `Δ/${s.name}`);
  }
}

/**
 * Records target[name][indices] += scale · values for every update (the outer step:
 * θ_start ← θ_start − α·Δ̄ is scale = −α). Every update is checked (known name, matching
 * lengths, indices in range and unique) before anything is recorded.
 */
export function applySparse(
  gpu: Gpu,
  target: ReadonlyMap<string, Tensor>,
  updates: readonly SparseUpdate[],
  scale: number,
  kernel = 'applySparse',
): void {
  if (!Number.isFinite(scale)) throw new KernelInputError(kernel, `scale must be finite, got ${scale}`);
  const seen = new Set<string>();
  for (const u of updates) {
    const t = target.get(u.name);
    if (!t) throw new KernelInputError(kernel, `no tensor named ${u.name}`);
    if (seen.has(u.name)) throw new KernelInputError(kernel, `${u.name} is updated twice`);
    seen.add(u.name);
    if (t.dtype !== 'f32') throw new KernelInputError(kernel, `${u.name} must be f32, got ${t}`);
    if (u.indices.length !== u.values.length) {
      throw new KernelInputError(kernel, `${u.name}: ${u.indices.length} indices but ${u.values.length} values`);
    }
    checkIndices(`${kernel} ${u.name}`, u.indices, t.size);
  }
  for (const u of updates) {
    if (u.indices.length === 0) continue;
    const t = target.get(u.name)!;
    const indices = uploadIndices(gpu, u.indices, t.size);
    const values = gpu.tensor([u.values.length], 'f32', 'sparse values', u.values);
    scatterAdd(gpu, t, indices, values, scale);
    indices.release();
    values.release();
  }
}
