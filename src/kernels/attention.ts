// Causal multi-head attention with grouped-query heads, FlashAttention style (forward and
// backward never store the T×T scores), and float64 CPU references for both directions. Two
// variants: 1 is shaders/attention.wgsl (any D up to 128; a tile row shared by TPR threads),
// 2 is attention-fa2.ts (one thread per row, registers and broadcast tiles; D a multiple of 4
// up to 64), the default where the shape allows. The naive materialising version, the
// benchmark's baseline, is attention-naive.ts.
//
// Layouts: q [B, T, H, D], k and v [B, T, Hkv, D], out [B, T, H, D], lse [B, H, T].
// Query head h uses key/value head floor(h / (H / Hkv)). Scale defaults to 1/sqrt(D).
import code from '../../shaders/attention.wgsl';
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { fa2Problem, recordFa2BackwardSeparate, recordFa2ForwardSeparate, type Fa2Kernel, type Fa2Shape } from './attention-fa2.ts';
import { ceilDiv, expectPositiveInt, expectTensor, grid } from './common.ts';

const SHADER = { name: 'attention', code };

/** Largest head size the kernels take (each thread holds at most 16 output columns). */
export const ATTENTION_MAX_D = 128;
const MAX_DPT4 = 4; // vec4 output columns per thread, as in attention.wgsl
const MAX_SPT = 16; // scores per thread in forward / bwd_dq, as in attention.wgsl
const ROW_WG = 256; // rowdot

type Kernel = keyof AttentionTiles;

export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
  /** Score scale; 1/sqrt(D) when left out. */
  scale?: number;
  /** Forces variant 1's tile sizes (tests use small ones to get many blocks from a small T); implies variant 1. */
  tiles?: Partial<Record<Kernel, { BR: number; BC: number }>>;
  /** 1: attention.wgsl; 2: attention_fa2.wgsl; 'auto' (default): see attentionVariant. */
  variant?: 'auto' | 1 | 2;
  /** Forces variant 2's shapes (tests, benchmarks); implies variant 2. */
  fa2Tiles?: Partial<Record<Fa2Kernel, Fa2Shape>>;
}

/** Tile sizes of one kernel: BR query rows, BC key rows, TPR threads per tile row. */
export interface TileShape {
  BR: number;
  BC: number;
  TPR: number;
}

export interface AttentionTiles {
  forward: TileShape;
  dq: TileShape;
  dkdv: TileShape;
}


const SIZES = [64, 32, 16, 8, 4, 2];
/**
 * Tile edge cap on a software adapter (a CPU Vulkan such as SwiftShader). There workgroup
 * memory is ordinary cache, so big tiles buy no reuse, while compile time grows with the
 * workgroup: a tiny model's three attention kernels took 56 s to compile at 64×32 and 18 s at
 * 16×16 on SwiftShader (loaded 2-core machine), paid by every process that trains.
 */
const SOFTWARE_MAX_TILE = 16;

/** Threads per tile row for head size D: enough that each owns at most MAX_DPT4 vec4 columns. */
function threadsPerRow(D: number): number {
  const dk4 = Math.ceil(D / 4);
  let tpr = 2;
  while (Math.ceil(dk4 / tpr) > MAX_DPT4) tpr *= 2;
  return tpr;
}

/** Workgroup memory, in bytes, that a kernel of attention.wgsl declares for these tiles. */
export function tileBytes(kernel: Kernel, D: number, { BR, BC, TPR }: TileShape): number {
  const ds = Math.ceil(D / 4) + 1; // vec4s per tile row, padded
  switch (kernel) {
    case 'forward': // q tile, k/v tile, probabilities, two partial rows
      return 4 * (4 * BR * ds + 4 * BC * ds + BR * BC + 2 * BR * TPR);
    case 'dq': // q and dout tiles, k/v tile, dS
      return 4 * (8 * BR * ds + 4 * BC * ds + BR * BC);
    case 'dkdv': // k, v, q, dout tiles, P and dS, two row statistics
      return 4 * (8 * BC * ds + 8 * BR * ds + 2 * BR * BC + 2 * BR);
  }
}

function tileProblem(gpu: Gpu, kernel: Kernel, D: number, t: TileShape): string | null {
  const { BR, BC, TPR } = t;
  if (![BR, BC, TPR].every((x) => Number.isInteger(x) && x > 0)) return 'tile sizes must be positive integers';
  if (TPR !== threadsPerRow(D)) return `TPR must be ${threadsPerRow(D)} for D = ${D}`;
  const threads = (kernel === 'dkdv' ? BC : BR) * TPR;
  if (threads > gpu.limits.maxComputeInvocationsPerWorkgroup || threads > gpu.limits.maxComputeWorkgroupSizeX) {
    return `${threads} threads per workgroup exceed this GPU's limit`;
  }
  if (kernel !== 'dkdv' && (BC % TPR !== 0 || BC / TPR > MAX_SPT)) return `BC must be a multiple of ${TPR} up to ${MAX_SPT * TPR}`;
  const bytes = tileBytes(kernel, D, t);
  if (bytes > gpu.limits.maxComputeWorkgroupStorageSize) {
    return `${bytes} bytes of workgroup memory exceed this GPU's ${gpu.limits.maxComputeWorkgroupStorageSize}`;
  }
  return null;
}

/**
 * The largest tiles that fit this GPU's workgroup memory and invocation limits for head size
 * D: most scores per tile first (fewest global reloads), then more threads up to 256, then
 * taller query tiles. On a software adapter, no edge over SOFTWARE_MAX_TILE.
 */
export function attentionTiles(gpu: Gpu, D: number): AttentionTiles {
  const TPR = threadsPerRow(D);
  const sizes = gpu.info?.isSoftware ? SIZES.filter((s) => s <= SOFTWARE_MAX_TILE) : SIZES;
  const pick = (kernel: Kernel): TileShape => {
    let best: TileShape | null = null;
    let bestKey: number[] = [];
    for (const BR of sizes) {
      for (const BC of sizes) {
        const t = { BR, BC, TPR };
        if (tileProblem(gpu, kernel, D, t)) continue;
        const threads = (kernel === 'dkdv' ? BC : BR) * TPR;
        const key = [BR * BC, Math.min(threads, 256), BR];
        if (!best || key[0] > bestKey[0] || (key[0] === bestKey[0] && (key[1] > bestKey[1] || (key[1] === bestKey[1] && key[2] > bestKey[2])))) {
          best = t;
          bestKey = key;
        }
      }
    }
    if (!best) throw new KernelInputError('attention', `no tile shape for D = ${D} fits this GPU's workgroup limits`);
    return best;
  };
  return { forward: pick('forward'), dq: pick('dq'), dkdv: pick('dkdv') };
}

const tileCache = new WeakMap<Gpu, Map<number, AttentionTiles>>();

function tilesFor(gpu: Gpu, kernel: string, dims: AttentionDims): AttentionTiles {
  let perGpu = tileCache.get(gpu);
  if (!perGpu) tileCache.set(gpu, (perGpu = new Map()));
  let tiles = perGpu.get(dims.D);
  if (!tiles) perGpu.set(dims.D, (tiles = attentionTiles(gpu, dims.D)));
  if (!dims.tiles) return tiles;
  const forced = { ...tiles };
  for (const k of ['forward', 'dq', 'dkdv'] as const) {
    const f = dims.tiles[k];
    if (f) forced[k] = { BR: f.BR, BC: f.BC, TPR: tiles[k].TPR };
    const problem = tileProblem(gpu, k, dims.D, forced[k]);
    if (problem) throw new KernelInputError(kernel, `tiles.${k} ${JSON.stringify(forced[k])}: ${problem}`);
  }
  return forced;
}

function constants(D: number, t: TileShape): Record<string, number> {
  const dk4 = Math.ceil(D / 4);
  return { BR: t.BR, BC: t.BC, TPR: t.TPR, DK4: dk4, DPT4: Math.ceil(dk4 / t.TPR) };
}

/** The scores' scale (dims.scale or 1/sqrt(D)), checked finite. */
export function scaleOf(kernel: string, dims: AttentionDims): number {
  const scale = dims.scale ?? 1 / Math.sqrt(dims.D);
  if (!Number.isFinite(scale)) throw new KernelInputError(kernel, `scale must be a finite number, got ${dims.scale}`);
  return scale;
}

function checkDims(kernel: string, dims: AttentionDims): void {
  const { B, T, H, Hkv, D } = dims;
  expectPositiveInt(kernel, 'B', B);
  expectPositiveInt(kernel, 'T', T);
  expectPositiveInt(kernel, 'H', H);
  expectPositiveInt(kernel, 'Hkv', Hkv);
  expectPositiveInt(kernel, 'D', D);
  if (H % Hkv !== 0) throw new KernelInputError(kernel, `H (${H}) must be a multiple of Hkv (${Hkv})`);
  if (D > ATTENTION_MAX_D) {
    throw new KernelInputError(kernel, `head size D = ${D} is over the supported maximum of ${ATTENTION_MAX_D}; use more, smaller heads`);
  }
  if (B * T * H * D > 0xffffffff) throw new KernelInputError(kernel, 'tensor sizes overflow 32-bit indexing');
}

function checkDistinct(kernel: string, outputs: [string, Tensor][], inputs: [string, Tensor][]): void {
  for (let i = 0; i < outputs.length; i++) {
    const [name, t] = outputs[i];
    for (const [other, u] of [...outputs.slice(i + 1), ...inputs]) {
      if (t.buffer === u.buffer) throw new KernelInputError(kernel, `${name} and ${other} must be different buffers`);
    }
  }
}

/** Checks dims, every tensor's size, and that no output shares a buffer (also the naive version's checks). */
export function checkAll(
  kernel: string,
  dims: AttentionDims,
  inputs: [string, Tensor][],
  outputs: [string, Tensor][],
): void {
  checkDims(kernel, dims);
  const { B, T, H, Hkv, D } = dims;
  const sizes: Record<string, number> = {
    q: B * T * H * D,
    k: B * T * Hkv * D,
    v: B * T * Hkv * D,
    out: B * T * H * D,
    dout: B * T * H * D,
    dq: B * T * H * D,
    dk: B * T * Hkv * D,
    dv: B * T * Hkv * D,
    lse: B * H * T,
  };
  for (const [name, t] of [...inputs, ...outputs]) expectTensor(kernel, name, t, sizes[name]);
  checkDistinct(kernel, outputs, inputs);
}

/**
 * The variant these sizes run: variant 2 wherever its shape check passes (D a multiple of 4,
 * at most 64: every preset's head size), else variant 1, which takes any D up to 128.
 * Asking for variant 1's tiles means variant 1, for variant 2's shapes variant 2.
 */
export function attentionVariant(kernel: string, dims: AttentionDims): 1 | 2 {
  const v = dims.variant ?? (dims.fa2Tiles ? 2 : dims.tiles ? 1 : 'auto');
  if (v !== 'auto' && v !== 1 && v !== 2) throw new KernelInputError(kernel, `variant must be 'auto', 1 or 2, got ${String(v)}`);
  if (v === 1) {
    if (dims.fa2Tiles) throw new KernelInputError(kernel, 'fa2Tiles are variant 2 shapes; leave variant out or set it to 2');
    return 1;
  }
  if (dims.tiles && dims.fa2Tiles) throw new KernelInputError(kernel, 'give tiles (variant 1) or fa2Tiles (variant 2), not both');
  const problem = fa2Problem(dims.D);
  if (v === 2) {
    if (problem) throw new KernelInputError(kernel, `variant 2: ${problem}; use variant 1 (or 'auto')`);
    if (dims.tiles) throw new KernelInputError(kernel, 'tiles are variant 1 shapes; use fa2Tiles with variant 2');
    return 2;
  }
  return problem || dims.tiles ? 1 : 2;
}

function params(dims: AttentionDims, scale: number, nblocks: number, nrows = 0): Params {
  return new Params().u32(dims.B).u32(dims.T).u32(dims.H).u32(dims.Hkv).u32(dims.D).f32(scale).u32(nblocks).u32(nrows);
}

/** Causal attention forward: out [B, T, H, D] and the row logsumexp lse [B, H, T]. */
export function attentionForward(gpu: Gpu, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dims: AttentionDims): void {
  const kernel = 'attentionForward';
  checkAll(kernel, dims, [['q', q], ['k', k], ['v', v]], [['out', out], ['lse', lse]]);
  const scale = scaleOf(kernel, dims);
  if (attentionVariant(kernel, dims) === 2) return recordFa2ForwardSeparate(gpu, q, k, v, out, lse, dims, scale);
  const t = tilesFor(gpu, kernel, dims).forward;
  const nqb = ceilDiv(dims.T, t.BR);
  const g = grid(gpu, dims.B * dims.H * nqb);
  const pipeline = gpu.pipeline(SHADER, 'forward', constants(dims.D, t));
  gpu.dispatch(pipeline, params(dims, scale, nqb), [q, k, v, out, lse], g);
}

/**
 * Causal attention backward: dq, dk, dv from the forward's out and lse. Variant 1 records
 * rowdot (D_i = rowsum(dout ∘ out), into a temporary [B, H, T]), then bwd_dq and bwd_dkdv;
 * variant 2 computes D_i inside its bwd_dq.
 */
export function attentionBackward(
  gpu: Gpu,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  dims: AttentionDims,
): void {
  const kernel = 'attentionBackward';
  checkAll(
    kernel,
    dims,
    [['q', q], ['k', k], ['v', v], ['out', out], ['lse', lse], ['dout', dout]],
    [['dq', dq], ['dk', dk], ['dv', dv]],
  );
  const scale = scaleOf(kernel, dims);
  if (attentionVariant(kernel, dims) === 2) return recordFa2BackwardSeparate(gpu, { q, k, v, out, lse, dout, dq, dk, dv }, dims, scale);
  const tiles = tilesFor(gpu, kernel, dims);
  const { B, T, H, Hkv, D } = dims;
  const nrows = B * T * H;
  const nqb = ceilDiv(T, tiles.dq.BR);
  const nkb = ceilDiv(T, tiles.dkdv.BC);
  const gRow = grid(gpu, ceilDiv(nrows, ROW_WG));
  const gDq = grid(gpu, B * H * nqb);
  const gDkdv = grid(gpu, B * Hkv * nkb);
  const pRow = gpu.pipeline(SHADER, 'rowdot');
  const pDq = gpu.pipeline(SHADER, 'bwd_dq', constants(D, tiles.dq));
  const pDkdv = gpu.pipeline(SHADER, 'bwd_dkdv', constants(D, tiles.dkdv));
  const drow = gpu.tensor([B, H, T], 'f32', 'attention.drow');
  gpu.dispatch(pRow, params(dims, scale, 0, nrows), [out, dout, drow], gRow);
  gpu.dispatch(pDq, params(dims, scale, nqb), [q, k, v, dout, lse, drow, dq], gDq);
  gpu.dispatch(pDkdv, params(dims, scale, nkb), [q, k, v, dout, lse, drow, dk, dv], gDkdv);
  drow.release();
}

/**
 * Bytes beyond q, k, v, out and their gradients: the forward's lse [B, H, T] (kept for the
 * backward) and the backward's D_i [B, H, T]; peak is both together.
 */
export function attentionExtraBytes(dims: AttentionDims): { forward: number; backward: number; peak: number } {
  const rows = 4 * dims.B * dims.H * dims.T;
  return { forward: rows, backward: rows, peak: 2 * rows };
}

// ---------------------------------------------------------------------------------------
// Float64 references (scores materialised; clarity over speed).

function refSetup(dims: AttentionDims) {
  checkDims('attentionRef', dims);
  const { B, T, H, Hkv, D } = dims;
  const scale = dims.scale ?? 1 / Math.sqrt(D);
  const group = H / Hkv;
  const qi = (b: number, t: number, h: number) => ((b * T + t) * H + h) * D;
  const ki = (b: number, t: number, hk: number) => ((b * T + t) * Hkv + hk) * D;
  return { B, T, H, Hkv, D, scale, group, qi, ki };
}

/** Probabilities of row (b, h, i) over keys 0..i, and the row's logsumexp. */
function refRow(q: ArrayLike<number>, k: ArrayLike<number>, s: ReturnType<typeof refSetup>, b: number, h: number, i: number) {
  const { D, scale, group, qi, ki } = s;
  const hk = Math.floor(h / group);
  const scores = new Float64Array(i + 1);
  let m = -Infinity;
  for (let j = 0; j <= i; j++) {
    let x = 0;
    for (let d = 0; d < D; d++) x += q[qi(b, i, h) + d] * k[ki(b, j, hk) + d];
    scores[j] = x * scale;
    m = Math.max(m, scores[j]);
  }
  let l = 0;
  for (let j = 0; j <= i; j++) l += Math.exp(scores[j] - m);
  const probs = scores.map((x) => Math.exp(x - m) / l);
  return { probs, lse: m + Math.log(l), hk };
}

export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionDims,
): { out: Float64Array; lse: Float64Array } {
  const s = refSetup(dims);
  const { B, T, H, D, qi, ki } = s;
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const row = refRow(q, k, s, b, h, i);
        lse[(b * H + h) * T + i] = row.lse;
        for (let j = 0; j <= i; j++) {
          for (let d = 0; d < D; d++) out[qi(b, i, h) + d] += row.probs[j] * v[ki(b, j, row.hk) + d];
        }
      }
    }
  }
  return { out, lse };
}

export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  dims: AttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const s = refSetup(dims);
  const { B, T, H, Hkv, D, scale, qi, ki } = s;
  const dq = new Float64Array(B * T * H * D);
  const dk = new Float64Array(B * T * Hkv * D);
  const dv = new Float64Array(B * T * Hkv * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const { probs, hk } = refRow(q, k, s, b, h, i);
        // dP_ij = dout_i · v_j; dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij')
        const dP = new Float64Array(i + 1);
        let rowDot = 0;
        for (let j = 0; j <= i; j++) {
          for (let d = 0; d < D; d++) dP[j] += dout[qi(b, i, h) + d] * v[ki(b, j, hk) + d];
          rowDot += probs[j] * dP[j];
        }
        for (let j = 0; j <= i; j++) {
          const dS = probs[j] * (dP[j] - rowDot);
          for (let d = 0; d < D; d++) {
            dq[qi(b, i, h) + d] += scale * dS * k[ki(b, j, hk) + d];
            dk[ki(b, j, hk) + d] += scale * dS * q[qi(b, i, h) + d];
            dv[ki(b, j, hk) + d] += probs[j] * dout[qi(b, i, h) + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
