import { describe, it } from 'vitest';
import { swigluBackward, swigluBackwardRef, swigluForward, swigluForwardRef } from '../../src/kernels/swiglu.ts';
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
