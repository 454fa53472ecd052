// Causal attention straight off the fused q|k|v projection (variant 2 only): q, k and v are
// read where the projection wrote them, rows [q (H·D) | k (Hkv·D) | v (Hkv·D)] per token,
// with RoPE applied to q and k as they are loaded; the backward writes the projection's
// packed gradient [RoPE⁻¹(dq) | RoPE⁻¹(dk) | dv] directly. This replaces rope.ts's
// ropeQkvForward + attentionForward and attentionBackward + ropeQkvBackward: two dispatches
// fewer per layer, and q, k, v are never stored apart from the projection's output. With
// `rope: false` the rows come rotated already (a software adapter's ropeQkvPacked pass).
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { attentionVariant, checkAll, scaleOf, type AttentionDims } from './attention.ts';
import { fa2Problem, recordFa2Backward, recordFa2Forward, type Fa2GradLayout, type Fa2Layout } from './attention-fa2.ts';
import { expectTensor } from './common.ts';
import { ropeTableTensor } from './rope.ts';

export interface AttentionQkvDims extends AttentionDims {
  /** RoPE frequency base (rope.ts); default 10000. */
  ropeBase?: number;
  /** Position of the first time step; default 0. */
  posOffset?: number;
  /** false: q and k in the rows are rotated already, and the gradient comes out unrotated (ropeQkvPacked either side); default true. */
  rope?: boolean;
}

/** Why attention cannot run off the packed projection (with RoPE on load) at head size D (null: it can). */
export function attentionQkvProblem(D: number, rope = true): string | null {
  const problem = fa2Problem(D);
  if (problem) return problem;
  if (rope && D % 8 !== 0) return `head size D = ${D} is not a multiple of 8 (RoPE pairs quads D/2 apart)`;
  return null;
}

/**
 * Whether the fused block path runs attention off the projection with RoPE inside
 * (attentionQkvForward/Backward) on this adapter: where attentionQkvProblem allows, on
 * hardware adapters. A software adapter (SwiftShader) runs RoPE as a pass either side
 * (ropeQkvPacked, `rope: false` here): there a dispatch costs little, while the rotation code
 * made each training process compile its attention kernels ~0.5 s longer
 * (test/bench/RESULTS.md, issue 20: ≤ 121 dispatches), and every CI training process pays that.
 */
export function attentionQkvChosen(gpu: Gpu, D: number): boolean {
  return !gpu.info.isSoftware && attentionQkvProblem(D) === null;
}

function layout(gpu: Gpu, kernel: string, qkv: Tensor, dims: AttentionQkvDims): Fa2Layout {
  const { B, T, H, Hkv, D } = dims;
  checkAll(kernel, dims, [], []);
  const rope = dims.rope ?? true;
  const problem = attentionQkvProblem(D, rope);
  if (problem) throw new KernelInputError(kernel, `${problem}; use ropeQkvForward/Backward with attentionForward/Backward`);
  if (dims.variant === 1 || dims.tiles) throw new KernelInputError(kernel, 'runs variant 2 only (leave variant and tiles out)');
  attentionVariant(kernel, dims);
  const base = dims.ropeBase ?? 10000;
  const posOffset = dims.posOffset ?? 0;
  if (!(base > 0) || !Number.isFinite(base)) throw new KernelInputError(kernel, `ropeBase must be a positive number, got ${base}`);
  if (!Number.isInteger(posOffset) || posOffset < 0) throw new KernelInputError(kernel, `posOffset must be a non-negative integer, got ${posOffset}`);
  expectTensor(kernel, 'qkv', qkv, B * T * (H + 2 * Hkv) * D);
  const dk4 = D / 4;
  const stride = (H + 2 * Hkv) * dk4;
  return {
    src: qkv, qOff: 0, qStride: stride, kOff: H * dk4, vOff: (H + Hkv) * dk4, kvStride: stride,
    rope: rope ? ropeTableTensor(gpu, T, D, base, posOffset) : null,
  };
}

function distinct(kernel: string, tensors: [string, Tensor][]): void {
  for (let i = 0; i < tensors.length; i++) {
    for (let j = i + 1; j < tensors.length; j++) {
      if (tensors[i][1].buffer === tensors[j][1].buffer) {
        throw new KernelInputError(kernel, `${tensors[i][0]} and ${tensors[j][0]} must be different buffers`);
      }
    }
  }
}

/** out [B, T, H, D] and lse [B, H, T] of attention over RoPE(q), RoPE(k), v taken from qkv [B·T, (H + 2·Hkv)·D]. */
export function attentionQkvForward(gpu: Gpu, qkv: Tensor, out: Tensor, lse: Tensor, dims: AttentionQkvDims): void {
  const kernel = 'attentionQkvForward';
  const io = layout(gpu, kernel, qkv, dims);
  checkAll(kernel, dims, [], [['out', out], ['lse', lse]]);
  distinct(kernel, [['qkv', qkv], ['out', out], ['lse', lse]]);
  recordFa2Forward(gpu, io, out, lse, dims, scaleOf(kernel, dims));
}

/** dqkv [B·T, (H + 2·Hkv)·D] = [RoPE⁻¹(dq) | RoPE⁻¹(dk) | dv]: the fused projection's output gradient (with `rope: false`, [dq | dk | dv]). */
export function attentionQkvBackward(gpu: Gpu, qkv: Tensor, out: Tensor, lse: Tensor, dout: Tensor, dqkv: Tensor, dims: AttentionQkvDims): void {
  const kernel = 'attentionQkvBackward';
  const io = layout(gpu, kernel, qkv, dims);
  checkAll(kernel, dims, [['out', out], ['lse', lse], ['dout', dout]], []);
  expectTensor(kernel, 'dqkv', dqkv, qkv.size);
  distinct(kernel, [['dqkv', dqkv], ['qkv', qkv], ['out', out], ['lse', lse], ['dout', dout]]);
  const g: Fa2GradLayout = { dq: dqkv, dqOff: io.qOff, dqStride: io.qStride, dkv: dqkv, dkOff: io.kOff, dvOff: io.vOff, dkvStride: io.kvStride };
  recordFa2Backward(gpu, io, { out, lse, dout }, g, dims, scaleOf(kernel, dims));
}
