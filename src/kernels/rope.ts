// Rotary position embedding (RoPE) over q or k in [B, T, H, D] layout, rotate-half pairs
// (d, d + D/2), θ_d = base^(−2d/D), angle (t + posOffset)·θ_d. Backward rotates by −θ.
// The (cos, sin) table [T, D/2] is computed in float64 on the CPU and cached per GPU and
// (T, D, base, posOffset), so each distinct table is uploaded once.
import code from '../../shaders/rope.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectPositiveInt, expectTensor, grid } from './common.ts';

const SHADER = { name: 'rope', code };
const WG = 256;
/** Tables kept per GPU; the least recently used is released past this. */
const TABLE_CACHE_SIZE = 16;

export interface RopeDims {
  B: number;
  T: number;
  H: number;
  D: number;
  /** Frequency base; default 10000. */
  base?: number;
  /** Position of the first time step (for continuing a sequence); default 0. */
  posOffset?: number;
}

const tables = new WeakMap<Gpu, Map<string, Tensor>>();

function checkDims(kernel: string, dims: RopeDims): { base: number; posOffset: number } {
  for (const k of ['B', 'T', 'H', 'D'] as const) expectPositiveInt(kernel, k, dims[k]);
  if (dims.D % 2 !== 0) throw new KernelInputError(kernel, `head size D must be even for rotate-half pairs, got ${dims.D}`);
  const base = dims.base ?? 10000;
  const posOffset = dims.posOffset ?? 0;
  if (!(base > 0) || !Number.isFinite(base)) throw new KernelInputError(kernel, `base must be a positive number, got ${base}`);
  if (!Number.isInteger(posOffset) || posOffset < 0) {
    throw new KernelInputError(kernel, `posOffset must be a non-negative integer, got ${posOffset}`);
  }
  return { base, posOffset };
}

/** (cos, sin) pairs [T, D/2, 2] in float64 for positions posOffset … posOffset + T − 1. */
export function ropeTable(T: number, D: number, base = 10000, posOffset = 0): Float64Array {
  const half = D / 2;
  const out = new Float64Array(T * half * 2);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < half; d++) {
      const angle = (t + posOffset) * Math.pow(base, (-2 * d) / D);
      out[(t * half + d) * 2] = Math.cos(angle);
      out[(t * half + d) * 2 + 1] = Math.sin(angle);
    }
  }
  return out;
}

/** The (cos, sin) table [T, D/2, 2] for these sizes on this GPU (uploaded once, cached; not to be released by the caller). */
export function ropeTableTensor(gpu: Gpu, T: number, D: number, base = 10000, posOffset = 0): Tensor {
  return table(gpu, T, D, base, posOffset);
}

function table(gpu: Gpu, T: number, D: number, base: number, posOffset: number): Tensor {
  let cache = tables.get(gpu);
  if (!cache) tables.set(gpu, (cache = new Map()));
  const key = `${T}|${D}|${base}|${posOffset}`;
  let t = cache.get(key);
  if (t) {
    cache.delete(key); // re-insert: Map order is recency order
  } else {
    t = gpu.tensor([T, D / 2, 2], 'f32', `rope table ${key}`, Float32Array.from(ropeTable(T, D, base, posOffset)));
    if (cache.size >= TABLE_CACHE_SIZE) {
      const [oldest, old] = cache.entries().next().value!;
      cache.delete(oldest);
      old.release(); // commands recorded with it are submitted before the buffer is reused
    }
  }
  cache.set(key, t);
  return t;
}

function rope(kernel: string, sign: number, gpu: Gpu, x: Tensor, y: Tensor, dims: RopeDims): void {
  const { base, posOffset } = checkDims(kernel, dims);
  const { B, T, H, D } = dims;
  const size = B * T * H * D;
  expectTensor(kernel, 'x', x, size);
  expectTensor(kernel, 'y', y, size);
  if (x.buffer === y.buffer) throw new KernelInputError(kernel, 'x and y must be different buffers (no in-place rotation)');
  const pairs = size / 2;
  const tab = table(gpu, T, D, base, posOffset);
  const params = new Params().u32(pairs).u32(T).u32(H).u32(D / 2).f32(sign);
  gpu.dispatch(gpu.pipeline(SHADER, 'rope'), params, [x, tab, y], grid(gpu, ceilDiv(pairs, WG)));
}

/** y = RoPE(x); x and y [B, T, H, D], separate buffers. */
export function ropeForward(gpu: Gpu, x: Tensor, y: Tensor, dims: RopeDims): void {
  rope('ropeForward', 1, gpu, x, y, dims);
}

/** dx = RoPE⁻¹(dy): the rotation by −θ (the transpose of the forward's rotation). */
export function ropeBackward(gpu: Gpu, dy: Tensor, dx: Tensor, dims: RopeDims): void {
  rope('ropeBackward', -1, gpu, dy, dx, dims);
}

export interface RopeQkvDims extends Omit<RopeDims, 'H'> {
  H: number;
  Hkv: number;
}

/** Elements of one packed row [q | k | v] and the thread count of the packed kernels. */
function packedChecks(kernel: string, g: Gpu, dims: RopeQkvDims, packed: Tensor, q: Tensor, k: Tensor, v: Tensor): { pairs: number; tab: Tensor } {
  const { base } = checkDims(kernel, dims);
  expectPositiveInt(kernel, 'Hkv', dims.Hkv);
  const { B, T, H, Hkv, D } = dims;
  const N = B * T;
  expectTensor(kernel, 'qkv', packed, N * (H + 2 * Hkv) * D);
  expectTensor(kernel, 'q', q, N * H * D);
  expectTensor(kernel, 'k', k, N * Hkv * D);
  expectTensor(kernel, 'v', v, N * Hkv * D);
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (t.buffer === packed.buffer) throw new KernelInputError(kernel, `${name} and qkv must be different buffers`);
  }
  return { pairs: (N * (H + 2 * Hkv) * D) / 2, tab: table(g, T, D, base, dims.posOffset ?? 0) };
}

function packedParams(pairs: number, dims: RopeQkvDims, sign: number): Params {
  return new Params().u32(pairs).u32(dims.T).u32(dims.H).u32(dims.Hkv).u32(dims.D / 2).f32(sign);
}

/**
 * The fused projection's output qkv [N, (H + 2·Hkv)·D] (rows [q | k | v]) unpacked: q [N, H, D]
 * and k [N, Hkv, D] rotated, v [N, Hkv, D] copied. One dispatch for what was two ropes.
 */
export function ropeQkvForward(g: Gpu, qkv: Tensor, q: Tensor, k: Tensor, v: Tensor, dims: RopeQkvDims): void {
  const { pairs, tab } = packedChecks('ropeQkvForward', g, dims, qkv, q, k, v);
  g.dispatch(g.pipeline(SHADER, 'rope_qkv_forward'), packedParams(pairs, dims, 1), [tab, qkv, q, k, v], grid(g, ceilDiv(pairs, WG)));
}

/** dqkv [N, (H + 2·Hkv)·D] = [RoPE⁻¹(dq) | RoPE⁻¹(dk) | dv]: the packed gradient of the fused projection. */
export function ropeQkvBackward(g: Gpu, dq: Tensor, dk: Tensor, dv: Tensor, dqkv: Tensor, dims: RopeQkvDims): void {
  const { pairs, tab } = packedChecks('ropeQkvBackward', g, dims, dqkv, dq, dk, dv);
  g.dispatch(g.pipeline(SHADER, 'rope_qkv_backward'), packedParams(pairs, dims, -1), [tab, dq, dk, dv, dqkv], grid(g, ceilDiv(pairs, WG)));
}

/**
 * dst = the packed rows of src [N, (H + 2·Hkv)·D] with the q and k heads rotated by θ (sign 1)
 * or back by −θ (sign −1) and the v heads copied: RoPE either side of attention off the
 * packed rows (attention-qkv.ts with `rope: false`), no unpacking.
 */
export function ropeQkvPacked(g: Gpu, src: Tensor, dst: Tensor, dims: RopeQkvDims, sign: 1 | -1): void {
  const kernel = 'ropeQkvPacked';
  const { base } = checkDims(kernel, dims);
  expectPositiveInt(kernel, 'Hkv', dims.Hkv);
  const { B, T, H, Hkv, D } = dims;
  const size = B * T * (H + 2 * Hkv) * D;
  expectTensor(kernel, 'src', src, size);
  expectTensor(kernel, 'dst', dst, size);
  if (src.buffer === dst.buffer) throw new KernelInputError(kernel, 'src and dst must be different buffers (no in-place rotation)');
  const tab = table(g, T, D, base, dims.posOffset ?? 0);
  const pairs = size / 2;
  g.dispatch(g.pipeline(SHADER, 'rope_packed'), packedParams(pairs, dims, sign), [tab, src, dst], grid(g, ceilDiv(pairs, WG)));
}

// ---- float64 reference ----

/** Forward (sign = 1) or backward (sign = −1) rotation in float64. */
export function ropeRef(x: ArrayLike<number>, dims: RopeDims, sign: 1 | -1 = 1): Float64Array {
  const { B, T, H, D } = dims;
  const half = D / 2;
  const tab = ropeTable(T, D, dims.base ?? 10000, dims.posOffset ?? 0);
  const y = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let d = 0; d < half; d++) {
          const c = tab[(t * half + d) * 2];
          const s = sign * tab[(t * half + d) * 2 + 1];
          const x1 = x[o + d];
          const x2 = x[o + d + half];
          y[o + d] = x1 * c - x2 * s;
          y[o + d + half] = x1 * s + x2 * c;
        }
      }
    }
  }
  return y;
}
