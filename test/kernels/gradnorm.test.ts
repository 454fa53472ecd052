import { describe, expect, it } from 'vitest';
import { globalGradNorm, globalGradNormRef } from '../../src/kernels/gradnorm.ts';
import { expectClose, poisoned, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

describe('gradnorm', () => {
  it.each([
    [[1], 10],
    [[7, 33, 65, 127], 1000],
    [[1, 4096, 4097, 5000, 127], 1],
    [[70_001, 33, 1000], 0.5],
  ])('norm and clip scale over tensors of sizes %j, maxNorm %f', async (sizes, maxNorm) => {
    const gpu = await testGpu();
    const data = sizes.map((n, i) => randn(n, n * 17 + i, 0.1 + i));
    const grads = data.map((d, i) => gpu.tensor([d.length], 'f32', `g${i}`, d));
    const out = poisoned(gpu, [2], 'out');
    globalGradNorm(gpu, grads, out, { maxNorm });
    const got = await gpu.readF32(out);
    const ref = globalGradNormRef(data, maxNorm);
    expectClose(`gradnorm norm sizes=${sizes.join(',')}`, [got[0]], [ref[0]], 1e-5);
    expectClose(`gradnorm scale sizes=${sizes.join(',')} maxNorm=${maxNorm}`, [got[1]], [ref[1]], 1e-5);
    if (ref[0] > maxNorm) expect(got[1]).toBeLessThan(1);
    else expect(got[1]).toBe(1);
    // Deterministic: the same bits again.
    const again = poisoned(gpu, [2]);
    globalGradNorm(gpu, grads, again, { maxNorm });
    expect(Array.from(await gpu.readF32(again))).toEqual(Array.from(got));
    for (const t of [...grads, out, again]) t.release();
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    const g = gpu.tensor([10]);
    const out = gpu.tensor([2]);
    rejects(gpu, () => globalGradNorm(gpu, [g], gpu.tensor([3]), { maxNorm: 1 }), /out must hold 2/);
    rejects(gpu, () => globalGradNorm(gpu, [g, gpu.tensor([4], 'i32')], out, { maxNorm: 1 }), /grads\[1\] must be f32/);
    rejects(gpu, () => globalGradNorm(gpu, [], out, { maxNorm: 1 }), /no gradient tensors/);
    rejects(gpu, () => globalGradNorm(gpu, [g], out, { maxNorm: 0 }), /maxNorm must be a positive number/);
    rejects(gpu, () => globalGradNorm(gpu, [g, out], out, { maxNorm: 1 }), /out must not be/);
    rejects(gpu, () => globalGradNorm(gpu, [g, tooSmall(gpu, [100])], out, { maxNorm: 1 }), /too small/);
  });
});
