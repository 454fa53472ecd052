// Records variant 2 of matmul (shaders/matmul_core.wgsl) for operands matmul.ts has checked:
// one dispatch, or with split-K a dispatch writing partial sums to a pooled scratch buffer
// plus a reduction that adds them in split order (bit-identical on every run).
import code from '../../shaders/matmul_core.wgsl';
import reduceCode from '../../shaders/matmul_reduce.wgsl';
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { ceilDiv, grid } from './common.ts';
import type { CorePlan } from './matmul-plan.ts';
import type { SplitKGroup } from './matmul-split-group.ts';

const SHADER = { name: 'matmul_core', code };
const REDUCE = { name: 'matmul_reduce', code: reduceCode };
const REDUCE_WORKGROUP = 256;
const KERNEL = 'matmul';

/** What matmul.ts has checked and resolved (strides are 0 for a single batch). */
export interface CoreCall {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
  strideC: number;
  alpha: number;
  beta: number;
  aVec4: boolean;
  bVec4: boolean;
  cVec4: boolean;
  /** A is [M, 2K] rows [gate | up] and op(A) = silu(gate)·up (not with transA). */
  aSwiglu?: boolean;
  /** The SwiGLU backward as the epilogue (matmul_swiglu_backward): c is dgate|dup; unsplit only. */
  swigluBackward?: { gu: Tensor; m: Tensor };
  /** RMSNorm in the prologue (matmul_rmsnorm): C = rmsnorm(A)·g·op(B), and n = A·rstd·g, rstd written; unsplit only. */
  rmsnorm?: { g: Tensor; n: Tensor; rstd: Tensor; eps: number };
  /** With split-K: leave the reduction to this group (matmul-split-group.ts). */
  group?: SplitKGroup;
}

export function matmulCore(gpu: Gpu, a: Tensor, b: Tensor, c: Tensor, call: CoreCall, plan: CorePlan): void {
  const { M, N, K, batch } = call;
  const { tile, splits } = plan;
  const rows = tile.wy * tile.rm;
  const cols = tile.wx * tile.rn;
  const workgroups: [number, number, number] = [ceilDiv(N, cols), ceilDiv(M, rows), batch * splits];
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((w) => w > max)) {
    throw new KernelInputError(
      KERNEL,
      `M=${M}, N=${N}, batch=${batch} (${splits} K split(s)) need ${workgroups.join('×')} workgroups of ${rows}×${cols} outputs, ` +
        `over this GPU's limit of ${max} per dimension; split the batch or the rows into several calls`,
    );
  }
  const split = splits > 1;
  const constants = {
    TRANS_A: call.transA ? 1 : 0,
    TRANS_B: call.transB ? 1 : 0,
    A_VEC4: call.aVec4 ? 1 : 0,
    B_VEC4: call.bVec4 ? 1 : 0,
    // The scratch slices are dense M×N: quads are aligned when N is a multiple of 4.
    C_VEC4: (split ? N % 4 === 0 : call.cVec4) ? 1 : 0,
    SPLIT: split ? 1 : 0,
    A_SWIGLU: call.aSwiglu ? 1 : 0,
    A_NORM: call.rmsnorm ? 1 : 0,
    WX: tile.wx,
    WY: tile.wy,
    RM: tile.rm,
    RN: tile.rn,
    TK: tile.tk,
  };
  const params = new Params()
    .u32(M).u32(N).u32(K).u32(call.strideA).u32(call.strideB).u32(call.strideC)
    .f32(call.alpha).f32(call.beta).u32(plan.kSplit).u32(splits).f32(call.rmsnorm?.eps ?? 0);
  // Binding 4 is the RMSNorm weight, read only by matmul_rmsnorm; B stands in elsewhere.
  const epilogue = call.swigluBackward;
  if (epilogue) {
    if (split) throw new KernelInputError(KERNEL, 'the SwiGLU-backward epilogue runs unsplit only (swigluBackwardFusable)');
    gpu.dispatch(gpu.pipeline(SHADER, 'matmul_swiglu_backward', constants), params, [a, b, c, b, epilogue.gu, epilogue.m], workgroups);
    return;
  }
  const norm = call.rmsnorm;
  if (norm) {
    if (split || batch !== 1) throw new KernelInputError(KERNEL, 'the RMSNorm prologue runs unsplit, batch 1 only (rmsnormMatmulFusable)');
    gpu.dispatch(gpu.pipeline(SHADER, 'matmul_rmsnorm', constants), params, [a, b, c, norm.g, norm.n, norm.rstd], workgroups);
    return;
  }
  const pipeline = gpu.pipeline(SHADER, 'matmul', constants);
  if (!split) {
    gpu.dispatch(pipeline, params, [a, b, c, b], workgroups);
    return;
  }
  const elements = batch * splits * M * N;
  const slice = call.group?.reserve(elements);
  if (slice) {
    gpu.dispatch(pipeline, params, [a, b, slice, b], workgroups);
    const { strideC, alpha, beta } = call;
    call.group!.add({ partials: slice, c, M, N, batch, splits, strideC, alpha, beta });
    return;
  }
  call.group?.beforeOwnReduce(c, (batch - 1) * call.strideC + M * N);
  const partials = gpu.tensor([elements], 'f32', 'matmul split-K partials');
  try {
    gpu.dispatch(pipeline, params, [a, b, partials, b], workgroups);
    const reduceParams = new Params().u32(M).u32(N).u32(batch).u32(splits).u32(call.strideC).f32(call.alpha).f32(call.beta);
    gpu.dispatch(gpu.pipeline(REDUCE, 'reduce'), reduceParams, [partials, c], grid(gpu, ceilDiv(batch * M * N, REDUCE_WORKGROUP)));
  } finally {
    // Reused only after this submit (BufferPool), so the recorded dispatches keep it.
    partials.release();
  }
}
