// RMSNorm over activations [N, C] with a weight [C]:
//   y = x · rstd · w,  rstd = 1 / sqrt(mean(x²) + eps), saved per row [N] for the backward.
// Backward: dx = rstd·w·dy − x · rstd³/C · Σ_c dy·w·x, and dweight = Σ_n dy·x·rstd,
// reduced deterministically in two stages without atomics: one dispatch (a workgroup per
// 32-row block) writes dx and the block's partial sums into a scratch [rowBlocks, C], then
// one thread per column sums the row blocks in order (or the caller reduces several norms at
// once: rmsnormDweightReduce). Same inputs → same bits, every run.
import code from '../../shaders/rmsnorm.wgsl';
import subgroupCode from '../../shaders/rmsnorm_subgroups.wgsl';
import type { AdapterSummary, Gpu, GpuFeatures } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectPositiveInt, expectTensor, grid, threadsPerRow } from './common.ts';

const SHADER = { name: 'rmsnorm', code };
/** Compiled only when the subgroup variant runs: `enable subgroups;` fails without the feature. */
const SUBGROUP_SHADER = { name: 'rmsnorm_subgroups', code: subgroupCode };
const WG = 256;
/** Rows per workgroup in the dweight partial sums (ROWS in rmsnorm.wgsl). */
const ROWS = 32;

export interface RmsnormDims {
  N: number;
  C: number;
  /** Added to mean(x²) before the square root; default 1e-5. */
  eps?: number;
}

export interface RmsnormBackwardOptions {
  /** dweight += this batch's gradient instead of dweight = (micro-batch accumulation). */
  accumulate?: boolean;
  /** dx += the gradient instead of dx = (e.g. adding into a residual stream's gradient). */
  accumulateDx?: boolean;
  /**
   * Write the dweight partial sums [rmsnormRowBlocks(N), C] here and leave the reduce to the
   * caller (rmsnormDweightReduce, several norms in one dispatch); dweight is then untouched.
   */
  partials?: Tensor;
}

/** Row blocks of the dweight partial sums for N rows. */
export const rmsnormRowBlocks = (N: number): number => ceilDiv(N, ROWS);

export interface RmsnormReduceDims {
  N: number;
  C: number;
  /** Norms reduced together. */
  count: number;
  /** Elements from one norm's dweight to the next in `dweights`. */
  stride: number;
  accumulate?: boolean;
}

/**
 * dweight_n (+)= Σ over row blocks of partials[n] for count norms at once: partials
 * [count, rowBlocks, C] (each filled by rmsnormBackward's `partials`), dweight n at element
 * n·stride of `dweights`. The same sums in the same order as the one-norm reduce.
 */
export function rmsnormDweightReduce(gpu: Gpu, partials: Tensor, dweights: Tensor, dims: RmsnormReduceDims): void {
  const K = 'rmsnormDweightReduce';
  const { N, C, count, stride } = dims;
  for (const k of ['N', 'C', 'count', 'stride'] as const) expectPositiveInt(K, k, dims[k]);
  if (stride < C) throw new KernelInputError(K, `stride ${stride} must be ≥ C = ${C}`);
  const rowBlocks = rmsnormRowBlocks(N);
  expectTensor(K, 'partials', partials, count * rowBlocks * C);
  expectTensor(K, 'dweights', dweights, (count - 1) * stride + C);
  distinct(K, { partials, dweights });
  const params = new Params().u32(N).u32(C).f32(0).u32(dims.accumulate ? 2 : 0).u32(rowBlocks).u32(0).u32(count).u32(stride);
  gpu.dispatch(gpu.pipeline(SHADER, 'rmsnorm_dw_reduce'), params, [partials, dweights], grid(gpu, ceilDiv(count * C, WG)));
}

function checkDims(kernel: string, dims: RmsnormDims): number {
  expectPositiveInt(kernel, 'N', dims.N);
  expectPositiveInt(kernel, 'C', dims.C);
  const eps = dims.eps ?? 1e-5;
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new KernelInputError(kernel, `eps must be a finite number ≥ 0, got ${eps}`);
  return eps;
}

function distinct(kernel: string, named: Record<string, Tensor>): void {
  const seen = new Map<GPUBuffer, string>();
  for (const [name, t] of Object.entries(named)) {
    const other = seen.get(t.buffer);
    if (other) throw new KernelInputError(kernel, `${name} and ${other} must be different buffers`);
    seen.set(t.buffer, name);
  }
}

/** true: the subgroup variant (the device must have the feature); false: today's; 'auto': see rmsnormUsesSubgroups. */
export type SubgroupChoice = boolean | 'auto';

export interface RmsnormForwardOptions {
  /** Which row sum the forward uses; default 'auto'. */
  subgroups?: SubgroupChoice;
  /** Tests only: the subgroup variant sums in lid order, as when subgroups are not aligned blocks. */
  subgroupLidOrder?: boolean;
}

/**
 * Whether rmsnormForward runs its subgroup variant. 'auto' picks it on a hardware adapter
 * granted `subgroups`; software adapters keep the shared-memory tree, so they compile what
 * they always did (shader compile time dominates on SwiftShader).
 */
export function rmsnormUsesSubgroups(
  features: Pick<GpuFeatures, 'subgroups'>,
  info: Pick<AdapterSummary, 'isSoftware'>,
  choice: SubgroupChoice = 'auto',
): boolean {
  if (choice === 'auto') return features.subgroups && !info.isSoftware;
  if (choice && !features.subgroups) {
    throw new KernelInputError(
      'rmsnormForward',
      "subgroups: true needs a device granted the 'subgroups' feature (this adapter does not offer it); use 'auto' or false",
    );
  }
  return choice;
}

export function rmsnormForward(
  gpu: Gpu,
  x: Tensor,
  weight: Tensor,
  y: Tensor,
  rstd: Tensor,
  dims: RmsnormDims,
  options: RmsnormForwardOptions = {},
): void {
  const K = 'rmsnormForward';
  const eps = checkDims(K, dims);
  const { N, C } = dims;
  expectTensor(K, 'x', x, N * C);
  expectTensor(K, 'weight', weight, C);
  expectTensor(K, 'y', y, N * C);
  expectTensor(K, 'rstd', rstd, N);
  distinct(K, { x, weight, y, rstd });
  const params = new Params().u32(N).u32(C).f32(eps).u32(0).u32(0).u32(0).u32(1).u32(C);
  if (rmsnormUsesSubgroups(gpu.features, gpu.info, options.subgroups)) {
    // one row per workgroup
    gpu.dispatch(gpu.pipeline(SUBGROUP_SHADER, 'rmsnorm_forward_sg', options.subgroupLidOrder ? { LID_ORDER: 1 } : undefined), params, [x, weight, y, rstd], grid(gpu, N));
    return;
  }
  const tpr = threadsPerRow(C, WG);
  gpu.dispatch(gpu.pipeline(SHADER, 'rmsnorm_forward', { TPR: tpr }), params, [x, weight, y, rstd], grid(gpu, ceilDiv(N, WG / tpr)));
}

export function rmsnormBackward(
  gpu: Gpu,
  x: Tensor,
  weight: Tensor,
  rstd: Tensor,
  dy: Tensor,
  dx: Tensor,
  dweight: Tensor,
  dims: RmsnormDims,
  options: RmsnormBackwardOptions = {},
): void {
  const K = 'rmsnormBackward';
  checkDims(K, dims);
  const { N, C } = dims;
  expectTensor(K, 'x', x, N * C);
  expectTensor(K, 'weight', weight, C);
  expectTensor(K, 'rstd', rstd, N);
  expectTensor(K, 'dy', dy, N * C);
  expectTensor(K, 'dx', dx, N * C);
  expectTensor(K, 'dweight', dweight, C);
  distinct(K, { x, weight, rstd, dy, dx, dweight });
  const rowBlocks = ceilDiv(N, ROWS);
  const colBlocks = ceilDiv(C, WG);
  gpu.checkBindingSize(rowBlocks * C * 4, `${K} scratch`);
  const flags = (options.accumulateDx ? 1 : 0) | (options.accumulate ? 2 : 0);
  const params = new Params().u32(N).u32(C).f32(0).u32(flags).u32(rowBlocks).u32(colBlocks).u32(1).u32(C);
  if (options.partials) {
    expectTensor(K, 'partials', options.partials, rowBlocks * C);
    distinct(K, { x, weight, rstd, dy, dx, partials: options.partials });
  }

  const tpr = threadsPerRow(C, WG);
  const partial = options.partials ?? gpu.tensor([rowBlocks, C], 'f32', 'rmsnorm dweight partials');
  // dx and the dweight partial sums in one pass (a workgroup per row block)
  gpu.dispatch(gpu.pipeline(SHADER, 'rmsnorm_backward', { TPR: tpr }), params, [x, weight, rstd, dy, dx, partial], grid(gpu, rowBlocks));
  if (options.partials) return;
  gpu.dispatch(gpu.pipeline(SHADER, 'rmsnorm_dw_reduce'), params, [partial, dweight], grid(gpu, colBlocks));
  partial.release(); // reusable only after this submit (BufferPool)
}

// ---- float64 references ----

export function rmsnormForwardRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dims: RmsnormDims,
): { y: Float64Array; rstd: Float64Array } {
  const { N, C } = dims;
  const eps = dims.eps ?? 1e-5;
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c] * r * weight[c];
  }
  return { y, rstd };
}

/** Gradients of sum(y ∘ dy) with respect to x and weight (rstd recomputed in float64). */
export function rmsnormBackwardRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dy: ArrayLike<number>,
  dims: RmsnormDims,
): { dx: Float64Array; dweight: Float64Array } {
  const { N, C } = dims;
  const { rstd } = rmsnormForwardRef(x, weight, dims);
  const dx = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[n * C + c] * weight[c] * x[n * C + c];
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dx[i] = r * weight[c] * dy[i] - x[i] * ((r * r * r) / C) * dot;
      dweight[c] += dy[i] * x[i] * r;
    }
  }
  return { dx, dweight };
}
