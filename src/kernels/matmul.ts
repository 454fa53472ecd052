// Batched matrix multiply: C_z = alpha · op(A_z)·op(B_z) + beta · C_z for z < batch.
// op(A) is M×K (A stored K×M when transA), op(B) is K×N (B stored N×K when transB), C is M×N,
// all row-major; batch z starts at element z·stride of each operand (stride 0 broadcasts).
// A linear layer y = x·Wᵀ with W [out, in] is matmul(x, W, y, { M: N_rows, N: out, K: in, transB: true }).
import code from '../../shaders/matmul.wgsl';
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import { BYTES_PER_ELEMENT, type Tensor } from '../gpu/tensor.ts';
import { ceilDiv, expectPositiveInt } from './common.ts';
import { matmulCore } from './matmul-core.ts';
import { splitKSlot, type SplitKGroup } from './matmul-split-group.ts';
import { WORKGROUP_TARGET, adapterClass, corePlan, type CoreTileName, type CorePlan } from './matmul-plan.ts';

const SHADER = { name: 'matmul', code };
// The f16 variant is the same source with f16 storage: one file, specialised by its alias.
const F32_ALIAS = 'alias S = f32;';
if (!code.includes(F32_ALIAS)) throw new Error(`shaders/matmul.wgsl must declare '${F32_ALIAS}'`);
const SHADER_F16 = { name: 'matmul_f16', code: `enable f16;\n${code.replace(F32_ALIAS, 'alias S = f16;')}` };
const KERNEL = 'matmul';

export interface MatmulOptions {
  M: number;
  N: number;
  K: number;
  /** A is stored K×M (op(A) = Aᵀ). */
  transA?: boolean;
  /** B is stored N×K (op(B) = Bᵀ). */
  transB?: boolean;
  /** Number of independent products (default 1). */
  batch?: number;
  /** Elements between consecutive batches of A (default M·K; 0 = the same A for every batch). */
  strideA?: number;
  /** Elements between consecutive batches of B (default K·N; 0 broadcasts). */
  strideB?: number;
  /** Elements between consecutive batches of C (default M·N; must not make batches overlap). */
  strideC?: number;
  alpha?: number;
  /** 0 (default) overwrites C without reading it, so C may hold anything, NaN included. */
  beta?: number;
  /** 'f16': f16 storage for A, B and C, f32 accumulation; needs gpu.features.f16. */
  dtype?: 'f32' | 'f16';
  /** Variant 1 tile override (tests, benchmarks; implies variant 1); 'auto' picks from the adapter's limits and the sizes. */
  tile?: 'auto' | 'large' | 'small';
  /** 1: shaders/matmul.wgsl; 2: shaders/matmul_core.wgsl; 'auto' (default): see matmulVariant. */
  variant?: 'auto' | 1 | 2;
  /** Variant 2 tile override (tests, benchmarks). */
  coreTile?: CoreTileName;
  /** Variant 2 K splits override (tests, benchmarks); split-K partials are reduced in order. */
  split?: number;
  /**
   * Variant 2 only (batch 1, not transA): A is [M, 2K] with rows [gate | up] and the product
   * uses op(A) = silu(gate)·up — the SwiGLU forward folded into the down projection.
   */
  aSwiglu?: boolean;
  /**
   * Variant 2 with split-K: reduce in this group's finish() together with other matmuls
   * (one dispatch), not in a dispatch of this call's own; C is valid only after finish().
   */
  splitGroup?: SplitKGroup;
}

/** A tile shape: WG×WG threads, each computing 4×4 outputs, over K slabs TK deep. */
export interface MatmulTile {
  /** Threads per side; the C tile is 4·WG × 4·WG. */
  wg: number;
  /** K slab depth. */
  tk: number;
}

/** 64×64 tiles, 256 threads, 8 KiB of workgroup memory. */
export const LARGE_TILE: MatmulTile = { wg: 16, tk: 16 };
/** 32×32 tiles, 64 threads, 4 KiB: for adapters with small workgroup limits and small grids. */
export const SMALL_TILE: MatmulTile = { wg: 8, tk: 16 };


export function tileFits(gpu: Gpu, t: MatmulTile): boolean {
  const l = gpu.limits;
  return (
    t.wg * t.wg <= l.maxComputeInvocationsPerWorkgroup &&
    t.wg <= l.maxComputeWorkgroupSizeX &&
    t.wg <= l.maxComputeWorkgroupSizeY &&
    2 * 4 * t.wg * t.tk * 4 <= l.maxComputeWorkgroupStorageSize
  );
}

/** The tile matmul uses for these sizes on this adapter. */
export function matmulTile(gpu: Gpu, M: number, N: number, batch = 1, choice: MatmulOptions['tile'] = 'auto'): MatmulTile {
  if (choice === 'small' || !tileFits(gpu, LARGE_TILE)) {
    if (!tileFits(gpu, SMALL_TILE)) {
      throw new KernelInputError(KERNEL, 'this GPU cannot run even a 32×32 tile (needs 64 invocations and 4 KiB of workgroup memory)');
    }
    return SMALL_TILE;
  }
  if (choice === 'large') return LARGE_TILE;
  // Below the adapter class's workgroup target, smaller tiles keep more of the GPU busy.
  const workgroups = ceilDiv(M, 4 * LARGE_TILE.wg) * ceilDiv(N, 4 * LARGE_TILE.wg) * batch;
  return workgroups < WORKGROUP_TARGET[adapterClass(gpu)] && tileFits(gpu, SMALL_TILE) ? SMALL_TILE : LARGE_TILE;
}

/**
 * The variant matmul runs: variant 2 (the GPU core: larger register tiles, split-K) for f32
 * on hardware adapters; variant 1 for f16 storage (the core is f32 only), when a variant 1
 * tile is asked for, and on software adapters, where variant 1 measured faster
 * (test/bench/RESULTS.md, issue 20: matmul core).
 */
export function matmulVariant(gpu: Gpu, opts: Pick<MatmulOptions, 'variant' | 'tile' | 'dtype' | 'coreTile' | 'split'>): 1 | 2 {
  const v = opts.variant ?? 'auto';
  if (v !== 'auto' && v !== 1 && v !== 2) throw new KernelInputError(KERNEL, `variant must be 'auto', 1 or 2, got ${String(v)}`);
  const f16 = (opts.dtype ?? 'f32') === 'f16';
  if (v === 2) {
    if (f16) throw new KernelInputError(KERNEL, "variant 2 is f32 only; use variant 1 (or 'auto') for dtype 'f16'");
    return 2;
  }
  if (v === 1) return 1;
  if (opts.coreTile !== undefined || opts.split !== undefined) return 2;
  if (f16 || (opts.tile !== undefined && opts.tile !== 'auto')) return 1;
  return adapterClass(gpu) === 'software' ? SOFTWARE_VARIANT : 2;
}

/** The variant for software adapters (CPU WebGPU); see matmulVariant. */
const SOFTWARE_VARIANT: 1 | 2 = 1;

/** Variant 2's tile and split for these sizes on this adapter. */
export function matmulCorePlan(gpu: Gpu, M: number, N: number, K: number, batch = 1, opts: Pick<MatmulOptions, 'coreTile' | 'split'> = {}): CorePlan {
  return corePlan(gpu, M, N, K, batch, WORKGROUP_TARGET[adapterClass(gpu)], { tile: opts.coreTile, splits: opts.split });
}

/** Arena elements a SplitKGroup needs for this product: 0 unless variant 2 splits its K. */
export function matmulSplitElements(gpu: Gpu, M: number, N: number, K: number, batch = 1): number {
  if (matmulVariant(gpu, {}) !== 2) return 0;
  const { splits } = matmulCorePlan(gpu, M, N, K, batch);
  return splits > 1 ? splitKSlot(batch * splits * M * N) : 0;
}

/**
 * Records C ← alpha·op(A)·op(B) + beta·C for every batch index. Everything is checked first:
 * a bad call throws KernelInputError and records nothing.
 */
export function matmul(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions): void {
  const { M, N, K } = opts;
  expectPositiveInt(KERNEL, 'M', M);
  expectPositiveInt(KERNEL, 'N', N);
  expectPositiveInt(KERNEL, 'K', K);
  const batch = opts.batch ?? 1;
  expectPositiveInt(KERNEL, 'batch', batch);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  if (!Number.isFinite(alpha)) throw new KernelInputError(KERNEL, `alpha must be a finite number, got ${alpha}`);
  if (!Number.isFinite(beta)) throw new KernelInputError(KERNEL, `beta must be a finite number, got ${beta}`);
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new KernelInputError(KERNEL, `dtype must be 'f32' or 'f16', got ${String(dtype)}`);
  if (dtype === 'f16' && !gpu.features.f16) {
    throw new KernelInputError(KERNEL, "dtype 'f16' needs the shader-f16 feature, which this GPU (or device) does not have; use f32");
  }

  const aSwiglu = opts.aSwiglu ?? false;
  if (aSwiglu && (transA || batch !== 1 || matmulVariant(gpu, opts) !== 2)) {
    throw new KernelInputError(KERNEL, `aSwiglu needs variant 2, batch 1 and A not transposed (got transA ${transA}, batch ${batch}, variant ${matmulVariant(gpu, opts)}); use swigluPackedForward then matmul`);
  }
  const shapeA = aSwiglu ? `${M}×${2 * K} [gate | up]` : transA ? `${K}×${M}` : `${M}×${K}`;
  const shapeB = transB ? `${N}×${K}` : `${K}×${N}`;
  const strideA = checkOperand(gpu, 'A', shapeA, a, dtype, aSwiglu ? 2 * M * K : M * K, batch, opts.strideA);
  const strideB = checkOperand(gpu, 'B', shapeB, b, dtype, K * N, batch, opts.strideB);
  const strideC = checkOperand(gpu, 'C', `${M}×${N}`, c, dtype, M * N, batch, opts.strideC);
  if (batch > 1 && strideC < M * N) {
    throw new KernelInputError(KERNEL, `strideC ${strideC} is less than M·N = ${M * N}: batches of C would overlap`);
  }
  if (c.buffer === a.buffer || c.buffer === b.buffer) {
    throw new KernelInputError(KERNEL, `C ${c} must not share a buffer with ${c.buffer === a.buffer ? 'A' : 'B'}`);
  }

  const aligned = (inner: number, stride: number) => inner % 4 === 0 && stride % 4 === 0;
  const aVec4 = aligned(transA ? M : K, strideA);
  const bVec4 = aligned(transB ? K : N, strideB);
  const cVec4 = aligned(N, strideC);
  // With one batch the strides are never used (and may be anything the caller chose).
  const [sA, sB, sC] = batch > 1 ? [strideA, strideB, strideC] : [0, 0, 0];
  if (matmulVariant(gpu, opts) === 2) {
    const plan = matmulCorePlan(gpu, M, N, K, batch, opts);
    const call = { M, N, K, batch, transA, transB, strideA: sA, strideB: sB, strideC: sC, alpha, beta, aVec4, bVec4, cVec4, aSwiglu, group: opts.splitGroup };
    matmulCore(gpu, a, b, c, call, plan);
    return;
  }

  const tile = matmulTile(gpu, M, N, batch, opts.tile);
  const side = 4 * tile.wg;
  const workgroups: [number, number, number] = [ceilDiv(N, side), ceilDiv(M, side), batch];
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((w) => w > max)) {
    throw new KernelInputError(
      KERNEL,
      `M=${M}, N=${N}, batch=${batch} need ${workgroups.join('×')} workgroups of ${side}×${side} outputs, ` +
        `over this GPU's limit of ${max} per dimension; split the batch or the rows into several calls`,
    );
  }

  const constants = {
    TRANS_A: transA ? 1 : 0,
    TRANS_B: transB ? 1 : 0,
    A_VEC4: aVec4 ? 1 : 0,
    B_VEC4: bVec4 ? 1 : 0,
    C_VEC4: cVec4 ? 1 : 0,
    WG: tile.wg,
    TK: tile.tk,
  };
  const params = new Params().u32(M).u32(N).u32(K).u32(sA).u32(sB).u32(sC).f32(alpha).f32(beta);
  const pipeline = gpu.pipeline(dtype === 'f16' ? SHADER_F16 : SHADER, 'matmul', constants);
  gpu.dispatch(pipeline, params, [a, b, c], workgroups);
}

/**
 * Checks one operand for `batch` matrices of `size` elements `stride` apart and returns the
 * stride. With the default (dense) stride the tensor must hold exactly what the batch needs;
 * with an explicit stride it may hold more.
 */
function checkOperand(
  gpu: Gpu,
  name: string,
  shape: string,
  t: Tensor,
  dtype: 'f32' | 'f16',
  size: number,
  batch: number,
  given: number | undefined,
): number {
  if (t.dtype !== dtype) throw new KernelInputError(KERNEL, `${name} must be ${dtype}, got ${t}`);
  const stride = given ?? size;
  if (!Number.isInteger(stride) || stride < 0) {
    throw new KernelInputError(KERNEL, `stride${name} must be a non-negative integer, got ${stride}`);
  }
  const needed = (batch - 1) * stride + size;
  const what = batch > 1 ? `${batch} batches of ${shape} (stride ${stride})` : shape;
  const bytes = needed * BYTES_PER_ELEMENT[dtype];
  gpu.checkBindingSize(bytes, `${KERNEL}: ${name} (${what})`);
  if (given === undefined ? t.size !== needed : t.size < needed) {
    throw new KernelInputError(
      KERNEL,
      `${name} must hold ${given === undefined ? '' : 'at least '}${needed} elements for ${what}, got ${t} (${t.size})`,
    );
  }
  // The shader views storage as vec4s: the buffer must cover the last element's whole quad.
  const quadBytes = 4 * BYTES_PER_ELEMENT[dtype];
  if (t.capacity < ceilDiv(bytes, quadBytes) * quadBytes) {
    throw new KernelInputError(KERNEL, `${name}'s buffer holds ${t.capacity} bytes from its offset, too small for ${what} of ${dtype}`);
  }
  return stride;
}

export interface SwigluBackwardDims {
  /** Rows (tokens). */
  rows: number;
  /** The down projection's output width (model dim). */
  C: number;
  /** MLP width. */
  F: number;
}

/** Whether matmulSwigluBackward runs on this adapter for these sizes: variant 2, F % 4 = 0, unsplit. */
export function swigluBackwardFusable(gpu: Gpu, d: SwigluBackwardDims): boolean {
  return matmulVariant(gpu, {}) === 2 && d.F % 4 === 0 && matmulCorePlan(gpu, d.rows, d.F, d.C).splits === 1;
}

/**
 * dm = dy·wDown ([rows, C]·[C, F]) with the SwiGLU backward as its epilogue: dm is never
 * stored; dgu [rows, 2F] gets d(gate) | d(up) and m [rows, F] = silu(gate)·up, from gu
 * [rows, 2F] (gate | up rows), as swigluPackedBackward computes them from dm.
 */
export function matmulSwigluBackward(gpu: Gpu, dy: Tensor, wDown: Tensor, gu: Tensor, dgu: Tensor, m: Tensor, d: SwigluBackwardDims): void {
  const K = 'matmulSwigluBackward';
  for (const k of ['rows', 'C', 'F'] as const) expectPositiveInt(K, k, d[k]);
  if (!swigluBackwardFusable(gpu, d)) {
    throw new KernelInputError(K, `needs matmul variant 2, F % 4 = 0 and an unsplit plan for ${d.rows}×${d.F}×${d.C}; use matmul then swigluPackedBackward`);
  }
  const { rows, C, F } = d;
  const named: [string, Tensor, number][] = [['dy', dy, rows * C], ['wDown', wDown, C * F], ['gu', gu, rows * 2 * F], ['dgu', dgu, rows * 2 * F], ['m', m, rows * F]];
  for (const [name, t, size] of named) {
    if (t.dtype !== 'f32' || t.size !== size) throw new KernelInputError(K, `${name} must be f32 of ${size} elements, got ${t} (${t.size})`);
  }
  if (new Set(named.map(([, t]) => t.buffer)).size !== named.length) throw new KernelInputError(K, 'dy, wDown, gu, dgu and m must be different buffers');
  const plan = matmulCorePlan(gpu, rows, F, C);
  const call = {
    M: rows, N: F, K: C, batch: 1, transA: false, transB: false, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0,
    aVec4: C % 4 === 0, bVec4: true, cVec4: true, swigluBackward: { gu, m },
  };
  matmulCore(gpu, dy, wDown, dgu, call, plan);
}

export interface RmsnormMatmulDims {
  /** Rows (tokens). */
  rows: number;
  /** The norm's width, K of the product. */
  C: number;
  /** Output columns (the projection's width); at least C. */
  out: number;
  eps: number;
}

/** Whether matmulRmsnorm runs on this adapter for these sizes: variant 2, C % 4 = 0, out ≥ C, unsplit. */
export function rmsnormMatmulFusable(gpu: Gpu, d: Omit<RmsnormMatmulDims, 'eps'>): boolean {
  return matmulVariant(gpu, {}) === 2 && d.C % 4 === 0 && d.out >= d.C && matmulCorePlan(gpu, d.rows, d.out, d.C).splits === 1;
}

/**
 * y = rmsnorm(x)·g · wᵀ ([rows, C] by w [out, C]) with the norm in the matmul's prologue
 * (matmul_rmsnorm): also writes n = x·rstd·g [rows, C] and rstd [rows], what rmsnormForward
 * writes for the backward, so that pass is not recorded.
 */
export function matmulRmsnorm(gpu: Gpu, x: Tensor, g: Tensor, w: Tensor, y: Tensor, n: Tensor, rstd: Tensor, d: RmsnormMatmulDims): void {
  const K = 'matmulRmsnorm';
  for (const k of ['rows', 'C', 'out'] as const) expectPositiveInt(K, k, d[k]);
  if (!(d.eps >= 0) || !Number.isFinite(d.eps)) throw new KernelInputError(K, `eps must be a finite number ≥ 0, got ${d.eps}`);
  if (!rmsnormMatmulFusable(gpu, d)) {
    throw new KernelInputError(K, `needs matmul variant 2, C % 4 = 0, out ≥ C and an unsplit plan for ${d.rows}×${d.out}×${d.C}; use rmsnormForward then matmul`);
  }
  const { rows, C, out } = d;
  const named: [string, Tensor, number][] = [['x', x, rows * C], ['g', g, C], ['w', w, out * C], ['y', y, rows * out], ['n', n, rows * C], ['rstd', rstd, rows]];
  for (const [name, t, size] of named) {
    if (t.dtype !== 'f32' || t.size !== size) throw new KernelInputError(K, `${name} must be f32 of ${size} elements, got ${t} (${t.size})`);
  }
  // The inputs may share a buffer (g and w are views of the parameter arena); each output needs its own.
  for (const [name, t] of named.slice(3)) {
    if (named.some(([other, u]) => other !== name && u.buffer === t.buffer)) throw new KernelInputError(K, `${name} must not share a buffer with x, g, w or the other outputs`);
  }
  const plan = matmulCorePlan(gpu, rows, out, C);
  const call = {
    M: rows, N: out, K: C, batch: 1, transA: false, transB: true, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0,
    aVec4: true, bVec4: true, cVec4: out % 4 === 0, rmsnorm: { g, n, rstd, eps: d.eps },
  };
  matmulCore(gpu, x, w, y, call, plan);
}

/** Float64 reference with matmul's semantics; returns the whole of C (c0's size, or dense). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, c0: ArrayLike<number> | null, opts: MatmulOptions): Float64Array {
  const { M, N, K } = opts;
  const batch = opts.batch ?? 1;
  const sA = opts.strideA ?? M * K;
  const sB = opts.strideB ?? K * N;
  const sC = opts.strideC ?? M * N;
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  const out = new Float64Array(c0 ? c0.length : (batch - 1) * sC + M * N);
  if (c0) for (let i = 0; i < c0.length; i++) out[i] = c0[i];
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const av = opts.aSwiglu
            ? siluTimes(a[z * sA + i * 2 * K + k], a[z * sA + i * 2 * K + K + k])
            : a[z * sA + (opts.transA ? k * M + i : i * K + k)];
          const bv = b[z * sB + (opts.transB ? j * K + k : k * N + j)];
          sum += av * bv;
        }
        const at = z * sC + i * N + j;
        out[at] = alpha * sum + (beta === 0 ? 0 : beta * (c0 ? c0[at] : 0));
      }
    }
  }
  return out;
}

/** silu(g)·u = g·σ(g)·u in float64. */
function siluTimes(g: number, u: number): number {
  return (g / (1 + Math.exp(-g))) * u;
}
