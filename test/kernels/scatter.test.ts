import { describe, expect, it } from 'vitest';
import { scatterAdd, scatterAddRef, uploadIndices } from '../../src/kernels/scatter.ts';
import { KernelInputError } from '../../src/gpu/errors.ts';
import { expectClose, randn, rejects, testGpu } from '../helpers/gpu.ts';

/** `n` distinct indices in [0, size), shuffled (deterministic). */
function distinctIndices(n: number, size: number, seed: number): Uint32Array {
  const all = Uint32Array.from({ length: size }, (_, i) => i);
  const r = randn(size, seed);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor((Math.abs(r[i] * 1e4) % 1) * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, n);
}

describe('scatterAdd', () => {
  it.each([
    [1, 1],
    [100, 1000],
    [70_000, 300_000],
  ])('%i unique indices into %i elements matches the reference', async (n, size) => {
    const gpu = await testGpu();
    const start = randn(size, size);
    const idx = distinctIndices(n, size, n + 3);
    const vals = randn(n, n + 5);
    const target = gpu.tensor([size], 'f32', 'target', start);
    const indices = uploadIndices(gpu, idx, size);
    const values = gpu.tensor([n], 'f32', 'values', vals);
    scatterAdd(gpu, target, indices, values, -0.75);
    const out = await gpu.readF32(target);
    expectClose(`scatterAdd n=${n} size=${size}`, out, scatterAddRef(start, idx, vals, -0.75), 1e-6);
    // Untouched elements are untouched, bit for bit.
    const touched = new Uint8Array(size);
    for (const i of idx) touched[i] = 1;
    let changed = 0;
    for (let i = 0; i < size; i++) if (!touched[i] && out[i] !== start[i]) changed++;
    expect(changed).toBe(0);
    for (const t of [target, indices, values]) t.release();
  });

  it('does nothing for an empty index list', async () => {
    const gpu = await testGpu();
    const target = gpu.tensor([4], 'f32', 'target', [1, 2, 3, 4]);
    scatterAdd(gpu, target, uploadIndices(gpu, new Uint32Array(0), 4), gpu.tensor([0]), 1);
    expect(Array.from(await gpu.readF32(target))).toEqual([1, 2, 3, 4]);
  });

  it('uploadIndices rejects out-of-range and duplicate indices before anything is recorded', async () => {
    const gpu = await testGpu();
    await gpu.sync();
    const before = gpu.pendingDispatches;
    expect(() => uploadIndices(gpu, Uint32Array.from([0, 5, 10]), 10)).toThrow(KernelInputError);
    expect(() => uploadIndices(gpu, Uint32Array.from([0, 5, 10]), 10)).toThrow(/index 10 at position 2 is out of range/);
    expect(() => uploadIndices(gpu, Uint32Array.from([3, 1, 7, 1]), 10)).toThrow(/index 1 appears more than once/);
    expect(() => uploadIndices(gpu, Uint32Array.from([2, 2]), 10)).toThrow(/appears more than once/);
    expect(() => uploadIndices(gpu, Uint32Array.from([0]), 0)).toThrow(/size must be a positive integer/);
    expect(gpu.pendingDispatches).toBe(before);
  });

  it('rejects bad inputs before dispatch', async () => {
    const gpu = await testGpu();
    const target = gpu.tensor([100]);
    const indices = uploadIndices(gpu, Uint32Array.from([1, 2, 3]), 100);
    const values = gpu.tensor([3]);
    rejects(gpu, () => scatterAdd(gpu, target, indices, gpu.tensor([4]), 1), /values must hold 3/);
    rejects(gpu, () => scatterAdd(gpu, target, indices, values, Number.NaN), /scale must be finite/);
    rejects(gpu, () => scatterAdd(gpu, gpu.tensor([50]), indices, values, 1), /checked against 100 elements/);
    rejects(gpu, () => scatterAdd(gpu, target, gpu.tensor([3], 'u32', 'raw', [1, 2, 3]), values, 1), /uploadIndices/);
    rejects(gpu, () => scatterAdd(gpu, target, indices, gpu.tensor([3], 'u32'), 1), /values must be f32/);
    rejects(gpu, () => scatterAdd(gpu, values, indices, values, 1), /checked against|different buffers/);
  });
});
