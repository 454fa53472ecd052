import { describe, expect, it } from 'vitest';
import {
  swigluBackward, swigluBackwardRef, swigluForward, swigluForwardRef, swigluPackedBackward, swigluPackedForward,
} from '../../src/kernels/swiglu.ts';
import { expectClose, finiteDiff, poisoned, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

describe('swiglu', () => {
  it.each([
    [1, 1],
    [7, 33],
    [65, 127],
    [33, 1000],
    [3, 5000],
  ])('forward and backward, N=%i F=%i', async (N, F) => {
    const gpu = await testGpu();
    const n = N * F;
    const g = randn(n, n, 3); // wide enough to reach both tails of σ
    const u = randn(n, n + 1);
    const d = randn(n, n + 2);
    if (n > 2) {
      g[0] = 100; // exp(−g) would be tiny; exp(g) would overflow in a naive σ
      g[1] = -100;
    }
    const gate = gpu.tensor([N, F], 'f32', 'gate', g);
    const up = gpu.tensor([N, F], 'f32', 'up', u);
    const dout = gpu.tensor([N, F], 'f32', 'dout', d);
    const out = poisoned(gpu, [N, F]);
    const dgate = poisoned(gpu, [N, F]);
    const dup = poisoned(gpu, [N, F]);
    swigluForward(gpu, gate, up, out, { N, F });
    swigluBackward(gpu, gate, up, dout, dgate, dup, { N, F });
    const ref = swigluBackwardRef(g, u, d);
    expectClose(`swiglu out N=${N} F=${F}`, await gpu.readF32(out), swigluForwardRef(g, u), 1e-5);
    expectClose(`swiglu dgate N=${N} F=${F}`, await gpu.readF32(dgate), ref.dgate, 1e-5);
    expectClose(`swiglu dup N=${N} F=${F}`, await gpu.readF32(dup), ref.dup, 1e-5);
    for (const t of [gate, up, dout, out, dgate, dup]) t.release();
  });

  it.each([
    [1, 3],
    [7, 33],
    [9, 700],
  ])('packed gate|up forward and backward match the unfused kernels bit for bit, N=%i F=%i', async (N, F) => {
    const gpu = await testGpu();
    const n = N * F;
    const g = randn(n, n + 5, 3);
    const u = randn(n, n + 6);
    const d = randn(n, n + 7);
    const gu = new Float32Array(2 * n);
    for (let r = 0; r < N; r++) {
      gu.set(g.subarray(r * F, (r + 1) * F), r * 2 * F);
      gu.set(u.subarray(r * F, (r + 1) * F), r * 2 * F + F);
    }
    const guT = gpu.tensor([N, 2 * F], 'f32', 'gu', gu);
    const dm = gpu.tensor([N, F], 'f32', 'dm', d);
    const m = poisoned(gpu, [N, F], 'm');
    const mBack = poisoned(gpu, [N, F], 'm recomputed');
    const dgu = poisoned(gpu, [N, 2 * F], 'dgu');
    swigluPackedForward(gpu, guT, m, { N, F });
    swigluPackedBackward(gpu, guT, dm, dgu, mBack, { N, F });
    // the unfused kernels on the same numbers
    const gate = gpu.tensor([N, F], 'f32', 'gate', g);
    const up = gpu.tensor([N, F], 'f32', 'up', u);
    const out = poisoned(gpu, [N, F]);
    const dgate = poisoned(gpu, [N, F]);
    const dup = poisoned(gpu, [N, F]);
    swigluForward(gpu, gate, up, out, { N, F });
    swigluBackward(gpu, gate, up, dm, dgate, dup, { N, F });
    const tag = `N=${N} F=${F}`;
    const ref = swigluBackwardRef(g, u, d);
    const packedGrad = await gpu.readF32(dgu);
    const dgPacked = new Float32Array(n);
    const duPacked = new Float32Array(n);
    for (let r = 0; r < N; r++) {
      dgPacked.set(packedGrad.subarray(r * 2 * F, r * 2 * F + F), r * F);
      duPacked.set(packedGrad.subarray(r * 2 * F + F, (r + 1) * 2 * F), r * F);
    }
    expectClose(`swiglu packed m ${tag}`, await gpu.readF32(m), swigluForwardRef(g, u), 1e-5);
    expectClose(`swiglu packed dgate ${tag}`, dgPacked, ref.dgate, 1e-5);
    expectClose(`swiglu packed dup ${tag}`, duPacked, ref.dup, 1e-5);
    const unfusedOut = Array.from(await gpu.readF32(out));
    expect(Array.from(await gpu.readF32(m)), `m ${tag}`).toEqual(unfusedOut);
    expect(Array.from(await gpu.readF32(mBack)), `m recomputed ${tag}`).toEqual(unfusedOut);
    expect(Array.from(dgPacked), `dgate ${tag}`).toEqual(Array.from(await gpu.readF32(dgate)));
    expect(Array.from(duPacked), `dup ${tag}`).toEqual(Array.from(await gpu.readF32(dup)));
    rejects(gpu, () => swigluPackedBackward(gpu, guT, dm, dgu, dm, { N, F }), /must not share|different buffers/);
    rejects(gpu, () => swigluPackedForward(gpu, guT, dgate, { N, F: F + 1 }), /gu must hold/);
    for (const t of [guT, dm, m, mBack, dgu, gate, up, out, dgate, dup]) t.release();
  });

  it('reference backward matches finite differences', () => {
    const n = 12;
    const g = Float64Array.from(randn(n, 41, 2));
    const u = Float64Array.from(randn(n, 42));
    const R = Float64Array.from(randn(n, 43));
    const loss = (gv: Float64Array, uv: Float64Array) => swigluForwardRef(gv, uv).reduce((s, v, i) => s + v * R[i], 0);
    const ref = swigluBackwardRef(g, u, R);
    expectClose('swiglu ref dgate vs finite diff', ref.dgate, Array.from(g, (_, i) => finiteDiff((gv) => loss(gv, u), g, i)), 1e-6);
    expectClose('swiglu ref dup vs finite diff', ref.dup, Array.from(u, (_, i) => finiteDiff((uv) => loss(g, uv), u, i)), 1e-6);
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([4, 6]);
    const b = gpu.tensor([4, 6]);
    const c = gpu.tensor([4, 6]);
    const d = gpu.tensor([4, 6]);
    rejects(gpu, () => swigluForward(gpu, a, b, c, { N: 4, F: 7 }), /gate must hold 28/);
    rejects(gpu, () => swigluForward(gpu, a, gpu.tensor([23]), c, { N: 4, F: 6 }), /up must hold 24/);
    rejects(gpu, () => swigluForward(gpu, a, b, a, { N: 4, F: 6 }), /different buffers/);
    rejects(gpu, () => swigluBackward(gpu, a, b, c, d, d, { N: 4, F: 6 }), /different buffers/);
    rejects(gpu, () => swigluBackward(gpu, a, b, c, d, gpu.tensor([4, 6], 'i32'), { N: 4, F: 6 }), /dup must be f32/);
    rejects(gpu, () => swigluBackward(gpu, a, b, c, d, tooSmall(gpu, [4, 6]), { N: 4, F: 6 }), /too small/);
  });
});
