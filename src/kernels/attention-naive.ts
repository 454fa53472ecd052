// Naive causal attention: materialises the [B, H, T, T] scores (scores → softmax → P·v, and
// P and dP/dS in the backward). Same contract and checks as attention.ts's flash kernels; it
// is the benchmark's baseline (test/bench/attention.ts) and a second opinion in the tests.
import naiveCode from '../../shaders/attention_naive.wgsl';
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { checkAll, scaleOf, type AttentionDims } from './attention.ts';
import { ceilDiv, grid } from './common.ts';

const NAIVE = { name: 'attention_naive', code: naiveCode };
const NAIVE_WG = 256;

function naiveParams(dims: AttentionDims, scale: number, n: number): Params {
  return new Params().u32(dims.B).u32(dims.T).u32(dims.H).u32(dims.Hkv).u32(dims.D).f32(scale).u32(n).u32(0);
}

function checkMatrix(gpu: Gpu, kernel: string, dims: AttentionDims): number {
  const n = dims.B * dims.H * dims.T * dims.T;
  if (n > 0xffffffff) throw new KernelInputError(kernel, `the ${dims.B}×${dims.H}×${dims.T}×${dims.T} score matrix overflows 32-bit indexing`);
  gpu.checkBindingSize(4 * n, `${kernel}: score matrix`);
  return n;
}

/** Naive causal attention forward (scores → softmax → P·v); same contract as attentionForward. */
export function attentionNaiveForward(gpu: Gpu, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dims: AttentionDims): void {
  const kernel = 'attentionNaiveForward';
  checkAll(kernel, dims, [['q', q], ['k', k], ['v', v]], [['out', out], ['lse', lse]]);
  const scale = scaleOf(kernel, dims);
  const n = checkMatrix(gpu, kernel, dims);
  const { B, T, H, D } = dims;
  const rows = B * H * T;
  const nOut = B * T * H * D;
  const gS = grid(gpu, ceilDiv(n, NAIVE_WG));
  const gRows = grid(gpu, rows);
  const gOut = grid(gpu, ceilDiv(nOut, NAIVE_WG));
  const s = gpu.tensor([B, H, T, T], 'f32', 'attention.scores');
  gpu.dispatch(gpu.pipeline(NAIVE, 'scores'), naiveParams(dims, scale, n), [q, k, s], gS);
  gpu.dispatch(gpu.pipeline(NAIVE, 'softmax'), naiveParams(dims, scale, rows), [s, lse], gRows);
  gpu.dispatch(gpu.pipeline(NAIVE, 'pv'), naiveParams(dims, scale, nOut), [s, v, out], gOut);
  s.release();
}

/** Naive causal attention backward (P and dP/dS materialised); same contract as attentionBackward. */
export function attentionNaiveBackward(
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
  const kernel = 'attentionNaiveBackward';
  checkAll(
    kernel,
    dims,
    [['q', q], ['k', k], ['v', v], ['out', out], ['lse', lse], ['dout', dout]],
    [['dq', dq], ['dk', dk], ['dv', dv]],
  );
  const scale = scaleOf(kernel, dims);
  const n = checkMatrix(gpu, kernel, dims);
  const { B, T, H, Hkv, D } = dims;
  const rows = B * H * T;
  const nQ = B * T * H * D;
  const nKv = B * T * Hkv * D;
  const gS = grid(gpu, ceilDiv(n, NAIVE_WG));
  const gRows = grid(gpu, rows);
  const gQ = grid(gpu, ceilDiv(nQ, NAIVE_WG));
  const gKv = grid(gpu, ceilDiv(nKv, NAIVE_WG));
  const P = gpu.tensor([B, H, T, T], 'f32', 'attention.P');
  const dS = gpu.tensor([B, H, T, T], 'f32', 'attention.dS');
  gpu.dispatch(gpu.pipeline(NAIVE, 'probs'), naiveParams(dims, scale, n), [q, k, lse, P], gS);
  gpu.dispatch(gpu.pipeline(NAIVE, 'dprobs'), naiveParams(dims, scale, n), [dout, v, dS], gS);
  gpu.dispatch(gpu.pipeline(NAIVE, 'softmax_bwd'), naiveParams(dims, scale, rows), [P, dS], gRows);
  gpu.dispatch(gpu.pipeline(NAIVE, 'dq'), naiveParams(dims, scale, nQ), [dS, k, dq], gQ);
  gpu.dispatch(gpu.pipeline(NAIVE, 'dkv'), naiveParams(dims, scale, nKv), [dS, q, dk], gKv);
  gpu.dispatch(gpu.pipeline(NAIVE, 'dkv'), naiveParams(dims, 1, nKv), [P, dout, dv], gKv);
  P.release();
  dS.release();
}

/**
 * Bytes beyond the tensors for the naive version: lse and the [B, H, T, T] scores in the
 * forward, P and dP/dS in the backward (the forward's scores are freed by then); peak is lse
 * plus the backward's two matrices.
 */
export function attentionNaiveExtraBytes(dims: AttentionDims): { forward: number; backward: number; peak: number } {
  const rows = 4 * dims.B * dims.H * dims.T;
  const mat = rows * dims.T;
  return { forward: rows + mat, backward: 2 * mat, peak: rows + 2 * mat };
}
