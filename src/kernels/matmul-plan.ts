// How a matmul is run on this adapter: which variant, which tile, how many K splits.
// Variant 1 is shaders/matmul.wgsl (4×4 outputs per thread, 64×64 / 32×32 tiles); variant 2
// is shaders/matmul_core.wgsl (up to 8×8 per thread and 128×128 tiles, double-buffered slabs,
// split-K). The grid is sized against the adapter's class: a discrete GPU has ~128 SMs and
// wants at least 2 workgroups on each, an integrated one a few dozen cores.
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { ceilDiv } from './common.ts';

/** Variant 2's tile: WX×WY threads with RM×RN outputs each, TK-deep slabs. */
export interface CoreTile {
  wx: number;
  wy: number;
  rm: number;
  rn: number;
  tk: number;
}

export const CORE_TK = 8;
/** Slab rows are padded by one vec4 (4 floats): conflict-free transposing stores. */
export const CORE_PAD = 4;

export const CORE_TILES = {
  '128x128': { wx: 16, wy: 16, rm: 8, rn: 8, tk: CORE_TK },
  '128x64': { wx: 8, wy: 16, rm: 8, rn: 8, tk: CORE_TK },
  '64x128': { wx: 16, wy: 8, rm: 8, rn: 8, tk: CORE_TK },
  '64x64': { wx: 8, wy: 8, rm: 8, rn: 8, tk: CORE_TK },
  '32x32': { wx: 8, wy: 8, rm: 4, rn: 4, tk: CORE_TK },
} as const satisfies Record<string, CoreTile>;
export type CoreTileName = keyof typeof CORE_TILES;

/** Large tiles first: they read the least per FMA. 32×32 only when nothing larger fills the GPU. */
const TILE_ORDER: CoreTileName[] = ['128x128', '128x64', '64x128', '64x64', '32x32'];

/** Each split sums at least this much of K: shorter splits spend more on partials than they gain. */
export const MIN_K_PER_SPLIT = 128;
/** Partial sums (splits·M·N) at most this share of the inputs (K·(M + N)) count as cheap. */
export const MAX_PARTIAL_SHARE = 0.25;
/** Split-K partial sums for at most this many splits (bounds the scratch buffer). */
export const MAX_SPLITS = 32;

export type AdapterClass = 'discrete' | 'integrated' | 'software';

/**
 * Workgroups a grid should reach to keep the adapter busy: 2 per SM on a 128-SM discrete GPU
 * (RTX 4090 has 128, H100 132; an unknown hardware adapter is treated as one, since too many
 * workgroups cost a small GPU little and too few idle a large one) and 2 per core on a
 * ~40-core integrated GPU (M-series Max). A software adapter (a CPU) keeps the 64 that
 * variant 1 always used (its former MIN_LARGE_WORKGROUPS), so the CPU path is unchanged.
 */
export const WORKGROUP_TARGET: Record<AdapterClass, number> = { discrete: 256, integrated: 80, software: 64 };

const INTEGRATED_VENDORS = /apple|intel|arm|qualcomm|imagination|img-tec|mali|adreno|powervr/i;

export function adapterClass(gpu: Gpu): AdapterClass {
  if (gpu.info.isSoftware) return 'software';
  const text = `${gpu.info.vendor} ${gpu.info.architecture} ${gpu.info.description}`;
  return INTEGRATED_VENDORS.test(text) ? 'integrated' : 'discrete';
}

export interface CorePlan {
  tile: CoreTile;
  name: CoreTileName;
  /** K splits (1 = none) and K per split (a multiple of the slab depth). */
  splits: number;
  kSplit: number;
  /** Workgroups of the product (batch × splits × tiles). */
  workgroups: number;
}

export function coreSharedBytes(t: CoreTile): number {
  return 2 * t.tk * ((t.wy * t.rm + CORE_PAD) + (t.wx * t.rn + CORE_PAD)) * 4;
}

export function coreTileFits(gpu: Gpu, t: CoreTile): boolean {
  const l = gpu.limits;
  return (
    t.wx * t.wy <= l.maxComputeInvocationsPerWorkgroup &&
    t.wx <= l.maxComputeWorkgroupSizeX &&
    t.wy <= l.maxComputeWorkgroupSizeY &&
    coreSharedBytes(t) <= l.maxComputeWorkgroupStorageSize
  );
}

function planFor(name: CoreTileName, M: number, N: number, K: number, batch: number, wantSplits: number): CorePlan {
  const tile = CORE_TILES[name];
  const tiles = ceilDiv(M, tile.wy * tile.rm) * ceilDiv(N, tile.wx * tile.rn) * batch;
  const maxSplits = Math.max(1, Math.min(MAX_SPLITS, Math.floor(K / MIN_K_PER_SPLIT)));
  let splits = Math.max(1, Math.min(wantSplits, maxSplits));
  const kSplit = splits > 1 ? ceilDiv(ceilDiv(K, splits), tile.tk) * tile.tk : K;
  splits = ceilDiv(K, kSplit);
  return { tile, name, splits, kSplit, workgroups: tiles * splits };
}

/**
 * Variant 2's plan for M×N×K (× batch): the largest tile whose grid reaches `target`
 * workgroups unsplit; else the largest tile that does with a split K (each split at least
 * MIN_K_PER_SPLIT deep); else whatever gives the most workgroups.
 * `force` fixes the tile and / or the splits (tests, benchmarks).
 */
export function corePlan(
  gpu: Gpu,
  M: number,
  N: number,
  K: number,
  batch: number,
  target: number,
  force: { tile?: CoreTileName; splits?: number } = {},
): CorePlan {
  const fits = (n: CoreTileName) => coreTileFits(gpu, CORE_TILES[n]);
  if (force.tile !== undefined) {
    if (!(force.tile in CORE_TILES)) throw new KernelInputError('matmul', `unknown tile '${force.tile}'; one of ${Object.keys(CORE_TILES).join(', ')}`);
    if (!fits(force.tile)) throw new KernelInputError('matmul', `tile ${force.tile} does not fit this GPU's workgroup limits`);
  }
  const order = force.tile ? [force.tile] : TILE_ORDER.filter(fits);
  if (order.length === 0) {
    throw new KernelInputError('matmul', 'this GPU cannot run even a 32×32 tile (needs 64 invocations and 2.3 KiB of workgroup memory)');
  }
  if (force.splits !== undefined) {
    if (!Number.isInteger(force.splits) || force.splits < 1) throw new KernelInputError('matmul', `split must be a positive integer, got ${force.splits}`);
    const tile = CORE_TILES[order[0]];
    const kSplit = ceilDiv(ceilDiv(K, force.splits), tile.tk) * tile.tk;
    const splits = ceilDiv(K, kSplit);
    const tiles = ceilDiv(M, tile.wy * tile.rm) * ceilDiv(N, tile.wx * tile.rn) * batch;
    return { tile, name: order[0], splits, kSplit: splits > 1 ? kSplit : K, workgroups: tiles * splits };
  }
  // Unsplit large tiles; then large tiles split where the partial sums are cheap beside the
  // inputs; then 32×32 unsplit; then any split. (A split costs a reduction dispatch and
  // writes and reads splits·M·N partial sums; a 32×32 tile reads twice the inputs per FMA of
  // a 64×64 one.)
  const large = order.filter((n) => n !== '32x32');
  const small = order.filter((n) => n === '32x32');
  const cheapPartials = (p: CorePlan) => p.splits * M * N <= MAX_PARTIAL_SHARE * K * (M + N);
  let best: CorePlan | null = null;
  const attempt = (names: CoreTileName[], split: boolean, accept: (p: CorePlan) => boolean = () => true): CorePlan | null => {
    for (const n of names) {
      const unsplit = planFor(n, M, N, K, batch, 1);
      const plan = split ? planFor(n, M, N, K, batch, ceilDiv(target, unsplit.workgroups)) : unsplit;
      if (!best || plan.workgroups > best.workgroups) best = plan;
      if (plan.workgroups >= target && accept(plan)) return plan;
    }
    return null;
  };
  const chosen = attempt(large, false) ?? attempt(large, true, cheapPartials) ?? attempt(small, false) ?? attempt(order, true);
  if (chosen) return chosen;
  return best!;
}
