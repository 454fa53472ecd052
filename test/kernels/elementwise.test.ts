import { describe, expect, it } from 'vitest';
import { axpby, axpbyRef, fill } from '../../src/kernels/elementwise.ts';
import { KernelInputError } from '../../src/gpu/errors.ts';
import { expectClose, poisoned, randn, testGpu } from '../helpers/gpu.ts';

describe('elementwise', () => {
  it.each([1, 7, 255, 256, 257, 70_001])('fill and axpby over %i elements', async (n) => {
    const gpu = await testGpu();
    const y = poisoned(gpu, [n]);
    fill(gpu, y, 0.5);
    const xData = randn(n, n);
    const x = gpu.tensor([n], 'f32', 'x', xData);
    axpby(gpu, 2, x, -3, y);
    const out = await gpu.readF32(y);
    expectClose(`axpby n=${n}`, out, axpbyRef(2, xData, -3, new Float64Array(n).fill(0.5)), 1e-6);
    x.release();
    y.release();
  });

  it('folds a grid wider than the dispatch limit into y', async () => {
    const gpu = await testGpu();
    const n = (gpu.limits.maxComputeWorkgroupsPerDimension + 5) * 256;
    const y = poisoned(gpu, [n]);
    fill(gpu, y, 1.25);
    const out = await gpu.readF32(y);
    expect(out.every((v) => v === 1.25)).toBe(true);
    y.release();
  });

  it('one submit for many dispatches', async () => {
    const gpu = await testGpu();
    const y = gpu.tensor([64]);
    const before = gpu.submits;
    for (let i = 0; i < 10; i++) fill(gpu, y, i);
    expect(gpu.pendingDispatches).toBe(10);
    const out = await gpu.readF32(y);
    expect(gpu.submits).toBe(before + 1);
    expect(out[63]).toBe(9);
    y.release();
  });

  it('rejects mismatched sizes before dispatch', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([10]);
    const y = gpu.tensor([11]);
    expect(() => axpby(gpu, 1, x, 1, y)).toThrow(KernelInputError);
    expect(() => axpby(gpu, 1, x, 1, y)).toThrow(/differ in size/);
    expect(gpu.pendingDispatches).toBe(0);
  });
});
