// Attention straight off the fused projection's rows [q | k | v] with RoPE on load
// (attention-qkv.ts, attention_fa2.wgsl with ROPE): against the float64 references of RoPE
// and attention composed, and the input checks. One shape with forced small tiles (partial
// tiles, rows that skip tiles, a 2-way key split) keeps the pipelines compiled to three.
import { describe, expect, it } from 'vitest';
import { attentionBackwardRef, attentionForwardRef } from '../../src/kernels/attention.ts';
import { attentionQkvBackward, attentionQkvForward, attentionQkvProblem, type AttentionQkvDims } from '../../src/kernels/attention-qkv.ts';
import { ropeRef } from '../../src/kernels/rope.ts';
import { expectClose, poisoned, randn, rejects, testGpu } from '../helpers/gpu.ts';

const BOUND = 1e-5;

/** Columns [from, from + width) of every row of an [N, W] matrix. */
function columns(x: ArrayLike<number>, N: number, W: number, from: number, width: number): Float64Array {
  const out = new Float64Array(N * width);
  for (let n = 0; n < N; n++) for (let j = 0; j < width; j++) out[n * width + j] = x[n * W + from + j];
  return out;
}

describe('attention off the packed q|k|v projection, RoPE on load', () => {
  it('forward and backward against RoPE then attention (float64), T=37 GQA D=16, posOffset 3, small tiles, keys split 2 ways', async () => {
    const gpu = await testGpu();
    const dims: AttentionQkvDims = {
      B: 2, T: 37, H: 4, Hkv: 2, D: 16, ropeBase: 500, posOffset: 3,
      fa2Tiles: { forward: { rows: 8, tile: 8, split: 2 }, dq: { rows: 8, tile: 8, split: 2 }, dkdv: { rows: 8, tile: 8 } },
    };
    const { B, T, H, Hkv, D } = dims;
    const N = B * T;
    const W = (H + 2 * Hkv) * D;
    const x = randn(N * W, 41);
    const doutData = randn(N * H * D, 42);
    const qkv = gpu.tensor([N, W], 'f32', 'qkv', x);
    const dout = gpu.tensor([N, H * D], 'f32', 'dout', doutData);
    const out = poisoned(gpu, [N, H * D], 'out');
    const lse = poisoned(gpu, [B, H, T], 'lse');
    const dqkv = poisoned(gpu, [N, W], 'dqkv');
    attentionQkvForward(gpu, qkv, out, lse, dims);
    attentionQkvBackward(gpu, qkv, out, lse, dout, dqkv, dims);

    const rope = { B, T, D, base: dims.ropeBase, posOffset: dims.posOffset };
    const q = ropeRef(columns(x, N, W, 0, H * D), { ...rope, H }, 1);
    const k = ropeRef(columns(x, N, W, H * D, Hkv * D), { ...rope, H: Hkv }, 1);
    const v = columns(x, N, W, (H + Hkv) * D, Hkv * D);
    const f = attentionForwardRef(q, k, v, dims);
    const g = attentionBackwardRef(q, k, v, doutData, dims);
    expectClose('qkv out', await gpu.readF32(out), f.out, BOUND);
    expectClose('qkv lse', await gpu.readF32(lse), f.lse, BOUND);
    const d = await gpu.readF32(dqkv);
    expectClose('qkv dq (RoPE⁻¹)', columns(d, N, W, 0, H * D), ropeRef(g.dq, { ...rope, H }, -1), BOUND);
    expectClose('qkv dk (RoPE⁻¹)', columns(d, N, W, H * D, Hkv * D), ropeRef(g.dk, { ...rope, H: Hkv }, -1), BOUND);
    expectClose('qkv dv', columns(d, N, W, (H + Hkv) * D, Hkv * D), g.dv, BOUND);
    // dK/dV split over queries 3 ways (same pipelines; the split is a uniform): bwd_dkdv's
    // partials, RoPE⁻¹ on each, summed by bwd_dq into the packed gradient.
    const dqkv3 = poisoned(gpu, [N, W], 'dqkv split');
    attentionQkvBackward(gpu, qkv, out, lse, dout, dqkv3, { ...dims, fa2Tiles: { ...dims.fa2Tiles, dkdv: { rows: 8, tile: 8, split: 3 } } });
    const d3 = await gpu.readF32(dqkv3);
    expectClose('qkv split dq (RoPE⁻¹)', columns(d3, N, W, 0, H * D), ropeRef(g.dq, { ...rope, H }, -1), BOUND);
    expectClose('qkv split dk (RoPE⁻¹)', columns(d3, N, W, H * D, Hkv * D), ropeRef(g.dk, { ...rope, H: Hkv }, -1), BOUND);
    expectClose('qkv split dv', columns(d3, N, W, (H + Hkv) * D, Hkv * D), g.dv, BOUND);
    for (const t of [qkv, dout, out, lse, dqkv, dqkv3]) t.release();
  });

  it('rejects head sizes, variants and tensors it cannot take, before dispatch', async () => {
    expect(attentionQkvProblem(64)).toBeNull();
    expect(attentionQkvProblem(12)).toMatch(/multiple of 8/);
    expect(attentionQkvProblem(128)).toMatch(/maximum of 64/);
    const gpu = await testGpu();
    const d: AttentionQkvDims = { B: 1, T: 5, H: 4, Hkv: 2, D: 8 };
    const qkv = gpu.tensor([5, 64]);
    const out = gpu.tensor([5, 32]);
    const lse = gpu.tensor([1, 4, 5]);
    const dout = gpu.tensor([5, 32]);
    const dqkv = gpu.tensor([5, 64]);
    await gpu.sync();
    const before = gpu.pendingDispatches;
    rejects(gpu, () => attentionQkvForward(gpu, qkv, out, lse, { ...d, D: 12, H: 2, Hkv: 1 }), /multiple of 8/);
    rejects(gpu, () => attentionQkvForward(gpu, qkv, out, lse, { ...d, variant: 1 }), /variant 2 only/);
    rejects(gpu, () => attentionQkvForward(gpu, out, out, lse, d), /qkv must hold/);
    rejects(gpu, () => attentionQkvForward(gpu, qkv, out, lse, { ...d, posOffset: -1 }), /posOffset/);
    rejects(gpu, () => attentionQkvBackward(gpu, qkv, out, lse, dout, qkv, d), /dqkv and qkv must be different/);
    rejects(gpu, () => attentionQkvBackward(gpu, qkv, out, lse, dout, out, d), /dqkv must hold/);
    expect(gpu.pendingDispatches).toBe(before);
    for (const t of [qkv, out, lse, dout, dqkv]) t.release();
  });
});
