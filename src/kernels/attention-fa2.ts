// Variant 2 of causal attention (shaders/attention_fa2.wgsl): one thread per row with the
// row's operands and accumulators in registers, the other side's rows in workgroup-memory
// tiles read as broadcasts. attention.ts checks the tensors, picks the variant (this one
// where `fa2Problem` finds nothing wrong with the shape) and calls the recorders here.
import code from '../../shaders/attention_fa2.wgsl';
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import type { AttentionDims } from './attention.ts';
import { ceilDiv, grid } from './common.ts';
import { WORKGROUP_TARGET, adapterClass } from './matmul-plan.ts';

const SHADER = { name: 'attention_fa2', code };

/** Largest head size variant 2 takes: q, the output and their partners fit the shader's register arrays (MAX_DK4 = 16). */
export const FA2_MAX_D = 64;
const MAX_KEY_TILE = 64; // MAX_BC in the shader: forward's per-thread scores
/**
 * Workgroup memory a variant 2 kernel's two row tiles aim at: 16 KiB lets 6 workgroups share
 * a 100 KiB SM (RTX 3080/4090), about what the register file allows at D = 64 (each thread
 * holds 2–3 rows of D floats), so shared memory is not the tighter limit.
 */
export const FA2_TILE_BYTES = 16 * 1024;
const ROWS = [64, 32];
const TILE_ROWS = [64, 32, 16];
/**
 * Rows and tile rows on a software adapter (a CPU Vulkan such as SwiftShader), as variant 1's
 * SOFTWARE_MAX_TILE: workgroup memory is ordinary cache there, so taller tiles buy no reuse,
 * while compile time grows with the workgroup. A tiny round's three kernels at 16/16 took
 * 2.3 CPU-s to compile instead of 7.1 (64/32 tiles), and 5 training steps 3.2 CPU-s instead of
 * 4.7 (SwiftShader, this 2-core machine) — paid by every process that trains.
 */
const SOFTWARE_ROWS = [16];

export type Fa2Kernel = 'forward' | 'dq' | 'dkdv';

/**
 * One kernel's shape: `rows` rows owned by the workgroup's threads (query rows in forward /
 * dq, one thread each; key rows in dkdv, two threads each) and `tile` rows of the other side
 * per workgroup-memory tile.
 */
export interface Fa2Shape {
  rows: number;
  tile: number;
  /**
   * forward / dq: threads per query row, each taking tile / split keys of every tile. dkdv:
   * workgroups per key block, each taking 1/split of its queries; their partial dK/dV are
   * summed in order by bwd_dq, which then runs after bwd_dkdv. 1 when left out.
   */
  split?: number;
}

/** Threads per workgroup of a variant 2 kernel. */
export function fa2Threads(kernel: Fa2Kernel, s: Fa2Shape): number {
  return kernel === 'dkdv' ? 2 * s.rows : s.rows * (s.split ?? 1);
}

/**
 * Query rows under which forward and dq split each row's keys between 2 threads on a
 * hardware adapter: a 128-SM GPU holds ~384 threads per SM at variant 2's ~200 registers
 * (64 Ki registers per SM), 49,152 in all; fewer rows than that leave it part idle. At the
 * presets' step shapes: small (8·4·256 = 8,192 rows) splits, base and 1b do not.
 */
export const FA2_SPLIT_BELOW_ROWS = 128 * 384;

/**
 * Most workgroups a dkdv key block splits into (query ranges). Each split adds a partial
 * [dK | dV] written by bwd_dkdv and read back by bwd_dq's sum, so 4 bounds that traffic at
 * 4× the output's; more would also leave the last key blocks (a query tile or two per head)
 * with empty splits.
 */
export const FA2_DKDV_MAX_SPLIT = 4;

export type Fa2Tiles = Record<Fa2Kernel, Fa2Shape>;

/** Workgroup memory, bytes, of a variant 2 kernel: two tiles of `tile` rows (+ row statistics in dkdv). */
export function fa2TileBytes(kernel: Fa2Kernel, D: number, s: Fa2Shape): number {
  return 2 * s.tile * D * 4 + (kernel === 'dkdv' ? 2 * s.tile * 4 : 0);
}

/** Why variant 2 cannot run head size D (null: it can). */
export function fa2Problem(D: number): string | null {
  if (D % 4 !== 0) return `head size D = ${D} is not a multiple of 4 (variant 2 reads rows as vec4)`;
  if (D > FA2_MAX_D) return `head size D = ${D} is over variant 2's maximum of ${FA2_MAX_D}`;
  return null;
}

function shapeProblem(gpu: Gpu, kernel: Fa2Kernel, D: number, s: Fa2Shape): string | null {
  const split = s.split ?? 1;
  if (![s.rows, s.tile, split].every((x) => Number.isInteger(x) && x > 0)) return 'rows, tile and split must be positive integers';
  if (kernel === 'dkdv') {
    if (split > FA2_DKDV_MAX_SPLIT) return `dkdv splits a key block's queries at most ${FA2_DKDV_MAX_SPLIT} ways`;
  } else {
    if (s.tile % split !== 0) return `split ${split} must divide the tile's ${s.tile} keys`;
    if ((split - 1) * s.rows > s.tile) return `a split's partial rows ((split − 1)·rows = ${(split - 1) * s.rows}) must fit the ${s.tile}-row tiles they are merged through`;
  }
  const threads = fa2Threads(kernel, s);
  if (threads > gpu.limits.maxComputeInvocationsPerWorkgroup || threads > gpu.limits.maxComputeWorkgroupSizeX) {
    return `${threads} threads per workgroup exceed this GPU's limit`;
  }
  if (kernel !== 'dkdv' && s.tile > MAX_KEY_TILE) return `a key tile holds at most ${MAX_KEY_TILE} rows`;
  const bytes = fa2TileBytes(kernel, D, s);
  if (bytes > gpu.limits.maxComputeWorkgroupStorageSize) {
    return `${bytes} bytes of workgroup memory exceed this GPU's ${gpu.limits.maxComputeWorkgroupStorageSize}`;
  }
  return null;
}

/**
 * Variant 2's shapes for these sizes: 64 rows per workgroup when that still gives the
 * adapter class's workgroup target (2 per SM of a 128-SM GPU), else 32 (short sequences,
 * few heads); tiles as tall as fit FA2_TILE_BYTES (and the device), at most 64 rows; on a
 * hardware adapter, forward and dq split each row's keys between 2 threads under
 * FA2_SPLIT_BELOW_ROWS query rows, and dkdv splits each key block's queries over as many
 * workgroups (≤ FA2_DKDV_MAX_SPLIT) as reach the workgroup target. A software adapter takes
 * 16 rows and 16-row tiles and never splits (no extra dispatch work to compile or run).
 */
export function fa2Tiles(gpu: Gpu, dims: Pick<AttentionDims, 'B' | 'T' | 'H' | 'Hkv' | 'D'>): Fa2Tiles {
  const target = WORKGROUP_TARGET[adapterClass(gpu)];
  const [rowChoices, tileChoices] = gpu.info.isSoftware ? [SOFTWARE_ROWS, SOFTWARE_ROWS] : [ROWS, TILE_ROWS];
  const pick = (kernel: Fa2Kernel, heads: number): Fa2Shape => {
    const rows = rowChoices.find((n) => dims.B * heads * ceilDiv(dims.T, n) >= target) ?? rowChoices[rowChoices.length - 1];
    const fewRows = kernel !== 'dkdv' && !gpu.info.isSoftware && dims.B * dims.H * dims.T < FA2_SPLIT_BELOW_ROWS;
    for (const tile of tileChoices) {
      // The budget is for the two row tiles; dkdv's row statistics (8 bytes a row) come on top.
      if (2 * tile * dims.D * 4 > FA2_TILE_BYTES) continue;
      for (const s of fewRows ? [{ rows, tile, split: 2 }, { rows, tile }] : [{ rows, tile }]) {
        if (!shapeProblem(gpu, kernel, dims.D, s)) return s;
      }
    }
    throw new KernelInputError('attention', `no variant 2 tile for D = ${dims.D} fits this GPU's workgroup limits`);
  };
  const dkdv = pick('dkdv', dims.Hkv);
  if (!gpu.info.isSoftware) {
    // Key blocks too few for the target (small: 8·2·8 = 128 on a 128-SM GPU): split their queries.
    const split = Math.min(FA2_DKDV_MAX_SPLIT, ceilDiv(target, dims.B * dims.Hkv * ceilDiv(dims.T, dkdv.rows)));
    if (split > 1) dkdv.split = split;
  }
  return { forward: pick('forward', dims.H), dq: pick('dq', dims.H), dkdv };
}

function tilesFor(gpu: Gpu, kernel: string, dims: AttentionDims): Fa2Tiles {
  const tiles = fa2Tiles(gpu, dims);
  const forced = dims.fa2Tiles;
  if (!forced) return tiles;
  for (const k of ['forward', 'dq', 'dkdv'] as const) {
    const f = forced[k];
    if (!f) continue;
    tiles[k] = f.split === undefined ? { rows: f.rows, tile: f.tile } : { rows: f.rows, tile: f.tile, split: f.split };
    const problem = shapeProblem(gpu, k, dims.D, tiles[k]);
    if (problem) throw new KernelInputError(kernel, `fa2Tiles.${k} ${JSON.stringify(tiles[k])}: ${problem}`);
  }
  return tiles;
}

// forward / dq: BQ query rows over BC-key tiles; dkdv: BC key rows over BQ-query tiles.
function constants(kernel: Fa2Kernel, D: number, s: Fa2Shape): Record<string, number> {
  const rows: Record<string, number> = kernel === 'dkdv' ? { BC: s.rows, BQ: s.tile } : { BQ: s.rows, BC: s.tile, KS: s.split ?? 1 };
  return { ...rows, DK4: D / 4 };
}

/**
 * Where variant 2 finds its rows, in vec4s: q, k and v in one buffer `src` at offsets with row
 * strides (a row is one token; heads D apart in it), and the same for the gradients (dq in
 * one buffer, dk and dv in another). `rope`: the (cos, sin) table rope.ts uploads, to rotate
 * q and k on load and dq, dk back on the way out (D a multiple of 8), or null.
 */
export interface Fa2Layout {
  src: Tensor;
  qOff: number;
  qStride: number;
  kOff: number;
  vOff: number;
  kvStride: number;
  rope: Tensor | null;
}

/** Where bwd_dq writes dq and bwd_dkdv dk and dv (vec4 offsets and row strides). */
export interface Fa2GradLayout {
  dq: Tensor;
  dqOff: number;
  dqStride: number;
  dkv: Tensor;
  dkOff: number;
  dvOff: number;
  dkvStride: number;
}

/** dkdv's query split: `splits` workgroups per key block, their partials `partStride` vec4s apart (1 and 0: none). */
interface QuerySplit {
  splits: number;
  partStride: number;
}
const NO_SPLIT: QuerySplit = { splits: 1, partStride: 0 };

function params(dims: AttentionDims, scale: number, nblocks: number, io: Fa2Layout, g?: Fa2GradLayout, qs: QuerySplit = NO_SPLIT): Params {
  return new Params()
    .u32(dims.B).u32(dims.T).u32(dims.H).u32(dims.Hkv).u32(dims.D).f32(scale).u32(nblocks)
    .u32(io.qOff).u32(io.qStride).u32(io.kOff).u32(io.vOff).u32(io.kvStride)
    .u32(g?.dqOff ?? 0).u32(g?.dqStride ?? 0).u32(g?.dkOff ?? 0).u32(g?.dvOff ?? 0).u32(g?.dkvStride ?? 0)
    .u32(qs.splits).u32(qs.partStride);
}

function pipelineFor(gpu: Gpu, entry: string, kernel: Fa2Kernel, D: number, s: Fa2Shape, io: Fa2Layout): GPUComputePipeline {
  return gpu.pipeline(SHADER, entry, { ...constants(kernel, D, s), ...(io.rope ? { ROPE: 1 } : {}) });
}

/** Records variant 2's forward for tensors attention.ts has checked. */
export function recordFa2Forward(gpu: Gpu, io: Fa2Layout, out: Tensor, lse: Tensor, dims: AttentionDims, scale: number): void {
  const s = tilesFor(gpu, 'attentionForward', dims).forward;
  const nqb = ceilDiv(dims.T, s.rows);
  const pipeline = pipelineFor(gpu, 'forward', 'forward', dims.D, s, io);
  // Without RoPE the table binding is never read; src stands in for it.
  gpu.dispatch(pipeline, params(dims, scale, nqb, io), [io.src, io.rope ?? io.src, out, lse], grid(gpu, dims.B * dims.H * nqb));
}

/**
 * Records variant 2's backward for tensors attention.ts has checked: bwd_dq (which also
 * writes D_i = rowsum(dout ∘ out) into a temporary [B, H, T]), then bwd_dkdv. With dkdv's
 * query split (S > 1) the order turns: bwd_dkdv writes S partial [dk | dv] slices into a
 * temporary (computing D_i itself), then bwd_dq sums them into dk and dv, which must
 * therefore share dq's buffer.
 */
export function recordFa2Backward(
  gpu: Gpu,
  io: Fa2Layout,
  t: { out: Tensor; lse: Tensor; dout: Tensor },
  g: Fa2GradLayout,
  dims: AttentionDims,
  scale: number,
): void {
  const tiles = tilesFor(gpu, 'attentionBackward', dims);
  const { B, T, H, Hkv, D } = dims;
  const nqb = ceilDiv(T, tiles.dq.rows);
  const nkb = ceilDiv(T, tiles.dkdv.rows);
  const pDq = pipelineFor(gpu, 'bwd_dq', 'dq', D, tiles.dq, io);
  const pDkdv = pipelineFor(gpu, 'bwd_dkdv', 'dkdv', D, tiles.dkdv, io);
  const drow = gpu.tensor([B, H, T], 'f32', 'attention.drow');
  const tab = io.rope ?? io.src;
  const splits = tiles.dkdv.split ?? 1;
  const dqGrid = grid(gpu, B * H * nqb);
  const dkdvGrid = grid(gpu, B * Hkv * nkb * splits);
  // Bindings an entry point declares but this path never reads (without a split: bwd_dq's
  // partials, bwd_dkdv's forward output) are bound to src, as the RoPE table is without RoPE.
  if (splits === 1) {
    gpu.dispatch(pDq, params(dims, scale, nqb, io, g), [io.src, tab, t.out, t.dout, t.lse, drow, g.dq, io.src], dqGrid);
    gpu.dispatch(pDkdv, params(dims, scale, nkb, io, g), [io.src, tab, t.dout, t.lse, drow, g.dkv, io.src], dkdvGrid);
    drow.release();
    return;
  }
  if (g.dq.buffer !== g.dkv.buffer) throw new Error('attention_fa2: a dkdv query split needs dq, dk and dv in one buffer');
  const row4 = Hkv * (D / 4); // a token's dk (or dv) row, vec4s
  const n4 = B * T * row4;
  const parts = gpu.tensor([splits * 2 * n4 * 4], 'f32', 'attention.dkv_parts');
  const partLayout: Fa2GradLayout = { ...g, dkv: parts, dkOff: 0, dvOff: n4, dkvStride: row4 };
  const split = { splits, partStride: 2 * n4 };
  gpu.dispatch(pDkdv, params(dims, scale, nkb, io, partLayout, split), [io.src, tab, t.dout, t.lse, drow, parts, t.out], dkdvGrid);
  gpu.dispatch(pDq, params(dims, scale, nqb, io, g, split), [io.src, tab, t.out, t.dout, t.lse, drow, g.dq, parts], dqGrid);
  drow.release();
  parts.release();
}

/**
 * Separate q [B, T, H, D], k and v [B, T, Hkv, D] (attentionForward / attentionBackward):
 * variant 2 reads the three from one buffer, so they are copied back to back into a
 * temporary (copies, not dispatches; the fused block path hands its projection's rows over
 * as they are: attention-qkv.ts).
 */
function separateLayout(gpu: Gpu, q: Tensor, k: Tensor, v: Tensor, dims: AttentionDims): Fa2Layout {
  const { B, T, H, Hkv, D } = dims;
  const nq = B * T * H * D;
  const nk = B * T * Hkv * D;
  const src = gpu.tensor([nq + 2 * nk], 'f32', 'attention.qkv');
  gpu.copy(q, src, 4 * nq);
  gpu.copy(k, src, 4 * nk, 0, 4 * nq);
  gpu.copy(v, src, 4 * nk, 0, 4 * (nq + nk));
  const dk4 = D / 4;
  return { src, qOff: 0, qStride: H * dk4, kOff: nq / 4, vOff: (nq + nk) / 4, kvStride: Hkv * dk4, rope: null };
}

/** Variant 2's forward over separate q, k, v. */
export function recordFa2ForwardSeparate(gpu: Gpu, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dims: AttentionDims, scale: number): void {
  const io = separateLayout(gpu, q, k, v, dims);
  recordFa2Forward(gpu, io, out, lse, dims, scale);
  io.src.release(); // reused only after this submit (BufferPool)
}

/**
 * Variant 2's backward over separate tensors: dk and dv come out of one temporary, copied to
 * theirs; with dkdv's query split dq comes out of it too (bwd_dq writes all three).
 */
export function recordFa2BackwardSeparate(
  gpu: Gpu,
  t: { q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor; dout: Tensor; dq: Tensor; dk: Tensor; dv: Tensor },
  dims: AttentionDims,
  scale: number,
): void {
  const { B, T, H, Hkv, D } = dims;
  const nq = B * T * H * D;
  const nk = B * T * Hkv * D;
  const withDq = (tilesFor(gpu, 'attentionBackward', dims).dkdv.split ?? 1) > 1;
  const io = separateLayout(gpu, t.q, t.k, t.v, dims);
  const dq0 = withDq ? nq : 0; // floats before dk in the temporary
  const grads = gpu.tensor([dq0 + 2 * nk], 'f32', withDq ? 'attention.dqkv' : 'attention.dkv');
  const dk4 = D / 4;
  const g: Fa2GradLayout = {
    dq: withDq ? grads : t.dq, dqOff: 0, dqStride: H * dk4,
    dkv: grads, dkOff: dq0 / 4, dvOff: (dq0 + nk) / 4, dkvStride: Hkv * dk4,
  };
  recordFa2Backward(gpu, io, t, g, dims, scale);
  if (withDq) gpu.copy(grads, t.dq, 4 * nq);
  gpu.copy(grads, t.dk, 4 * nk, 4 * dq0);
  gpu.copy(grads, t.dv, 4 * nk, 4 * (dq0 + nk));
  io.src.release();
  grads.release();
}
