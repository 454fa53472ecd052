import { describe, expect, it } from 'vitest';
import { ropeBackward, ropeForward, ropeQkvBackward, ropeQkvForward, ropeQkvPacked, ropeRef } from '../../src/kernels/rope.ts';
import { expectClose, finiteDiff, poisoned, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

describe('rope', () => {
  it.each([
    [1, 1, 1, 2, 0],
    [2, 7, 3, 16, 0],
    [1, 33, 2, 64, 0],
    [3, 65, 1, 8, 100],
    [1, 127, 5, 128, 0],
    [1, 9, 2, 34, 4000],
  ])('forward and backward, B=%i T=%i H=%i D=%i posOffset=%i', async (B, T, H, D, posOffset) => {
    const gpu = await testGpu();
    const n = B * T * H * D;
    const dims = { B, T, H, D, posOffset, base: 10000 };
    const xData = randn(n, n + posOffset);
    const dyData = randn(n, n + posOffset + 1);
    const x = gpu.tensor([B, T, H, D], 'f32', 'x', xData);
    const dy = gpu.tensor([B, T, H, D], 'f32', 'dy', dyData);
    const y = poisoned(gpu, [B, T, H, D], 'y');
    const dx = poisoned(gpu, [B, T, H, D], 'dx');
    ropeForward(gpu, x, y, dims);
    ropeBackward(gpu, dy, dx, dims);
    const tag = `B=${B} T=${T} H=${H} D=${D} pos=${posOffset}`;
    expectClose(`rope y ${tag}`, await gpu.readF32(y), ropeRef(xData, dims, 1), 1e-5);
    expectClose(`rope dx ${tag}`, await gpu.readF32(dx), ropeRef(dyData, dims, -1), 1e-5);
    // The backward undoes the forward.
    const back = poisoned(gpu, [B, T, H, D], 'back');
    ropeBackward(gpu, y, back, dims);
    expectClose(`rope backward∘forward ${tag}`, await gpu.readF32(back), xData, 1e-5);
    for (const t of [x, dy, y, dx, back]) t.release();
  });

  // Packed rows [q (H·D) | k (Hkv·D) | v (Hkv·D)] of the fused projection, split per part.
  const unpack = (qkv: ArrayLike<number>, N: number, widths: number[]) => {
    const W = widths.reduce((a, b) => a + b, 0);
    let start = 0;
    return widths.map((w) => {
      const out = new Float64Array(N * w);
      for (let n = 0; n < N; n++) for (let j = 0; j < w; j++) out[n * w + j] = qkv[n * W + start + j];
      start += w;
      return out;
    });
  };

  it.each([
    [2, 7, 4, 2, 8, 0],
    [1, 33, 3, 3, 16, 5],
    [2, 5, 4, 1, 64, 0],
  ])('packed q|k|v forward and backward, B=%i T=%i H=%i Hkv=%i D=%i posOffset=%i', async (B, T, H, Hkv, D, posOffset) => {
    const gpu = await testGpu();
    const N = B * T;
    const W = (H + 2 * Hkv) * D;
    const dims = { B, T, H, Hkv, D, posOffset, base: 10000 };
    const packedData = randn(N * W, 7 + N);
    const [qIn, kIn, vIn] = unpack(packedData, N, [H * D, Hkv * D, Hkv * D]);
    const qkv = gpu.tensor([N, W], 'f32', 'qkv', packedData);
    const q = poisoned(gpu, [N, H * D], 'q');
    const k = poisoned(gpu, [N, Hkv * D], 'k');
    const v = poisoned(gpu, [N, Hkv * D], 'v');
    ropeQkvForward(gpu, qkv, q, k, v, dims);
    const tag = `B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D}`;
    expectClose(`rope qkv q ${tag}`, await gpu.readF32(q), ropeRef(qIn, { B, T, H, D, posOffset }, 1), 1e-5);
    expectClose(`rope qkv k ${tag}`, await gpu.readF32(k), ropeRef(kIn, { B, T, H: Hkv, D, posOffset }, 1), 1e-5);
    expect(Array.from(await gpu.readF32(v)), `rope qkv v ${tag}`).toEqual(Array.from(Float32Array.from(vIn)));
    // The unfused kernel on the same q gives the same bits.
    const qAlone = gpu.tensor([N, H * D], 'f32', 'q alone', Float32Array.from(qIn));
    const qRot = poisoned(gpu, [N, H * D], 'q rotated');
    ropeForward(gpu, qAlone, qRot, { B, T, H, D, posOffset });
    expect(Array.from(await gpu.readF32(q)), `rope qkv q vs unfused ${tag}`).toEqual(Array.from(await gpu.readF32(qRot)));
    // backward: packed gradient of the projection
    const [dqData, dkData, dvData] = [randn(N * H * D, 1), randn(N * Hkv * D, 2), randn(N * Hkv * D, 3)];
    const dq = gpu.tensor([N, H * D], 'f32', 'dq', dqData);
    const dk = gpu.tensor([N, Hkv * D], 'f32', 'dk', dkData);
    const dv = gpu.tensor([N, Hkv * D], 'f32', 'dv', dvData);
    const dqkv = poisoned(gpu, [N, W], 'dqkv');
    ropeQkvBackward(gpu, dq, dk, dv, dqkv, dims);
    const [dqOut, dkOut, dvOut] = unpack(await gpu.readF32(dqkv), N, [H * D, Hkv * D, Hkv * D]);
    expectClose(`rope qkv dq ${tag}`, dqOut, ropeRef(dqData, { B, T, H, D, posOffset }, -1), 1e-5);
    expectClose(`rope qkv dk ${tag}`, dkOut, ropeRef(dkData, { B, T, H: Hkv, D, posOffset }, -1), 1e-5);
    expect(Array.from(dvOut), `rope qkv dv ${tag}`).toEqual(Array.from(dvData));
    rejects(gpu, () => ropeQkvForward(gpu, qkv, q, k, v, { ...dims, Hkv: Hkv + 1 }), /qkv must hold/);
    rejects(gpu, () => ropeQkvBackward(gpu, dq, dk, dv, q, dims), /qkv must hold/);
    for (const t of [qkv, q, k, v, qAlone, qRot, dq, dk, dv, dqkv]) t.release();
  });

  it('packed rows in and out (ropeQkvPacked), both directions: the reference, and the same bits as ropeQkvForward', async () => {
    const gpu = await testGpu();
    const [B, T, H, Hkv, D, posOffset] = [2, 7, 4, 2, 8, 3];
    const N = B * T;
    const W = (H + 2 * Hkv) * D;
    const dims = { B, T, H, Hkv, D, posOffset, base: 10000 };
    const data = randn(N * W, 17);
    const [qIn, kIn, vIn] = unpack(data, N, [H * D, Hkv * D, Hkv * D]);
    const src = gpu.tensor([N, W], 'f32', 'qkv', data);
    const fwd = poisoned(gpu, [N, W], 'rotated');
    const bwd = poisoned(gpu, [N, W], 'rotated back');
    ropeQkvPacked(gpu, src, fwd, dims, 1);
    ropeQkvPacked(gpu, src, bwd, dims, -1);
    for (const [sign, t] of [[1, fwd], [-1, bwd]] as const) {
      const [q, k, v] = unpack(await gpu.readF32(t), N, [H * D, Hkv * D, Hkv * D]);
      expectClose(`packed rope q sign ${sign}`, q, ropeRef(qIn, { B, T, H, D, posOffset }, sign), 1e-5);
      expectClose(`packed rope k sign ${sign}`, k, ropeRef(kIn, { B, T, H: Hkv, D, posOffset }, sign), 1e-5);
      expect(Array.from(v)).toEqual(Array.from(vIn));
    }
    const [q, k, v] = [poisoned(gpu, [N, H * D], 'q'), poisoned(gpu, [N, Hkv * D], 'k'), poisoned(gpu, [N, Hkv * D], 'v')];
    ropeQkvForward(gpu, src, q, k, v, dims);
    const [fq, fk] = unpack(await gpu.readF32(fwd), N, [H * D, Hkv * D, Hkv * D]);
    expect(Array.from(fq)).toEqual(Array.from(await gpu.readF32(q)));
    expect(Array.from(fk)).toEqual(Array.from(await gpu.readF32(k)));
    rejects(gpu, () => ropeQkvPacked(gpu, src, src, dims, 1), /different buffers/);
    rejects(gpu, () => ropeQkvPacked(gpu, src, q, dims, 1), /dst must hold/);
    for (const t of [src, fwd, bwd, q, k, v]) t.release();
  });

  it('reference backward matches finite differences', () => {
    const dims = { B: 2, T: 3, H: 2, D: 6, base: 100, posOffset: 2 };
    const n = 2 * 3 * 2 * 6;
    const x = Float64Array.from(randn(n, 31));
    const R = Float64Array.from(randn(n, 32));
    const loss = (xv: Float64Array) => ropeRef(xv, dims, 1).reduce((s, v, i) => s + v * R[i], 0);
    const fd = Array.from(x, (_, i) => finiteDiff(loss, x, i));
    expectClose('rope ref dx vs finite diff', ropeRef(R, dims, -1), fd, 1e-6);
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([1, 2, 3, 5]);
    const y = gpu.tensor([1, 2, 3, 5]);
    rejects(gpu, () => ropeForward(gpu, x, y, { B: 1, T: 2, H: 3, D: 5 }), /D must be even/);
    const x4 = gpu.tensor([1, 2, 3, 4]);
    const y4 = gpu.tensor([1, 2, 3, 4]);
    rejects(gpu, () => ropeForward(gpu, x4, y, { B: 1, T: 2, H: 3, D: 4 }), /y must hold 24/);
    rejects(gpu, () => ropeForward(gpu, x4, x4, { B: 1, T: 2, H: 3, D: 4 }), /different buffers/);
    rejects(gpu, () => ropeBackward(gpu, x4, y4, { B: 1, T: 2, H: 3, D: 4, posOffset: -1 }), /posOffset/);
    rejects(gpu, () => ropeBackward(gpu, x4, gpu.tensor([24], 'i32'), { B: 1, T: 2, H: 3, D: 4 }), /y must be f32/);
    rejects(gpu, () => ropeForward(gpu, tooSmall(gpu, [1, 2, 3, 4]), y4, { B: 1, T: 2, H: 3, D: 4 }), /too small/);
  });
});
