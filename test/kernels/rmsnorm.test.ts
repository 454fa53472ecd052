import { describe, expect, it, vi } from 'vitest';
import {
  rmsnormBackward, rmsnormBackwardRef, rmsnormDweightReduce, rmsnormForward, rmsnormForwardRef, rmsnormRowBlocks,
  rmsnormUsesSubgroups,
} from '../../src/kernels/rmsnorm.ts';
import { Tensor } from '../../src/gpu/tensor.ts';
import { expectClose, finiteDiff, poisoned, randn, rejects, testGpu } from '../helpers/gpu.ts';

describe('rmsnorm', () => {
  it.each([
    [1, 1],
    [7, 33],
    [33, 7],
    [65, 127],
    [127, 65],
    [33, 1000],
    [3, 5000],
  ])('forward and backward, N=%i C=%i', async (N, C) => {
    const gpu = await testGpu();
    const seed = N * 1000 + C;
    const xData = randn(N * C, seed);
    const wData = randn(C, seed + 1, 0.5).map((v) => v + 1);
    const dyData = randn(N * C, seed + 2);
    const x = gpu.tensor([N, C], 'f32', 'x', xData);
    const w = gpu.tensor([C], 'f32', 'w', wData);
    const dy = gpu.tensor([N, C], 'f32', 'dy', dyData);
    const y = poisoned(gpu, [N, C], 'y');
    const rstd = poisoned(gpu, [N], 'rstd');
    const dx = poisoned(gpu, [N, C], 'dx');
    const dw = poisoned(gpu, [C], 'dw');
    const dims = { N, C, eps: 1e-5 };
    rmsnormForward(gpu, x, w, y, rstd, dims);
    rmsnormBackward(gpu, x, w, rstd, dy, dx, dw, dims);
    const ref = rmsnormForwardRef(xData, wData, dims);
    const bref = rmsnormBackwardRef(xData, wData, dyData, dims);
    expectClose(`rmsnorm y N=${N} C=${C}`, await gpu.readF32(y), ref.y, 1e-5);
    expectClose(`rmsnorm rstd N=${N} C=${C}`, await gpu.readF32(rstd), ref.rstd, 1e-5);
    // C=1 is ill-conditioned for dx: dx = r·w·dy·(1 − x²r²) = r·w·dy·eps/(x² + eps), the
    // difference of two nearly equal O(1) terms, so f32 rounding of those terms (~1e-8
    // absolute) is large relative to the tiny result. Elsewhere the bound is 1e-5.
    expectClose(`rmsnorm dx N=${N} C=${C}`, await gpu.readF32(dx), bref.dx, C === 1 ? 1e-3 : 1e-5);
    expectClose(`rmsnorm dweight N=${N} C=${C}`, await gpu.readF32(dw), bref.dweight, 1e-5);
    for (const t of [x, w, dy, y, rstd, dx, dw]) t.release();
  });

  it('accumulates dweight and dx, deterministically', async () => {
    const gpu = await testGpu();
    const N = 70;
    const C = 300;
    const xData = randn(N * C, 11);
    const wData = randn(C, 12);
    const dyData = randn(N * C, 13);
    const dx0 = randn(N * C, 14);
    const dw0 = randn(C, 15);
    const x = gpu.tensor([N, C], 'f32', 'x', xData);
    const w = gpu.tensor([C], 'f32', 'w', wData);
    const dy = gpu.tensor([N, C], 'f32', 'dy', dyData);
    const y = gpu.tensor([N, C]);
    const rstd = gpu.tensor([N]);
    const dx = gpu.tensor([N, C], 'f32', 'dx', dx0);
    const dw = gpu.tensor([C], 'f32', 'dw', dw0);
    const dims = { N, C };
    rmsnormForward(gpu, x, w, y, rstd, dims);
    rmsnormBackward(gpu, x, w, rstd, dy, dx, dw, dims, { accumulate: true, accumulateDx: true });
    const bref = rmsnormBackwardRef(xData, wData, dyData, dims);
    const outDx = await gpu.readF32(dx);
    const outDw = await gpu.readF32(dw);
    expectClose('rmsnorm dx accumulated', outDx, bref.dx.map((v, i) => v + dx0[i]), 1e-5);
    expectClose('rmsnorm dweight accumulated', outDw, bref.dweight.map((v, i) => v + dw0[i]), 1e-5);
    // Same inputs, same bits.
    const dw2 = poisoned(gpu, [C]);
    const dx2 = poisoned(gpu, [N, C]);
    rmsnormBackward(gpu, x, w, rstd, dy, dx2, dw2, dims);
    rmsnormBackward(gpu, x, w, rstd, dy, dx2, dw, dims);
    const a = await gpu.readF32(dw2);
    const b = await gpu.readF32(dw);
    expect(Array.from(a)).toEqual(Array.from(b));
    for (const t of [x, w, dy, y, rstd, dx, dw, dw2, dx2]) t.release();
  });

  it('reference backward matches finite differences', () => {
    const dims = { N: 3, C: 5, eps: 1e-5 };
    const x = Float64Array.from(randn(15, 21));
    const w = Float64Array.from(randn(5, 22));
    const R = Float64Array.from(randn(15, 23));
    const loss = (xv: Float64Array, wv: Float64Array) => rmsnormForwardRef(xv, wv, dims).y.reduce((s, v, i) => s + v * R[i], 0);
    const { dx, dweight } = rmsnormBackwardRef(x, w, R, dims);
    const fdx = Array.from(x, (_, i) => finiteDiff((xv) => loss(xv, w), x, i));
    const fdw = Array.from(w, (_, i) => finiteDiff((wv) => loss(x, wv), w, i));
    expectClose('rmsnorm ref dx vs finite diff', dx, fdx, 1e-6);
    expectClose('rmsnorm ref dweight vs finite diff', dweight, fdw, 1e-6);
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([4, 8]);
    const w = gpu.tensor([8]);
    const y = gpu.tensor([4, 8]);
    const rstd = gpu.tensor([4]);
    const wrong = gpu.tensor([7]);
    const dims = { N: 4, C: 8 };
    rejects(gpu, () => rmsnormForward(gpu, x, wrong, y, rstd, dims), /weight must hold 8/);
    rejects(gpu, () => rmsnormForward(gpu, x, w, y, rstd, { N: 4, C: 9 }), /x must hold 36/);
    rejects(gpu, () => rmsnormForward(gpu, x, w, x, rstd, dims), /different buffers/);
    rejects(gpu, () => rmsnormForward(gpu, x, w, y, rstd, { N: 0, C: 8 }), /N must be a positive integer/);
    rejects(gpu, () => rmsnormForward(gpu, x, w, y, gpu.tensor([4], 'i32'), dims), /rstd must be f32/);
    const small = gpu.device.createBuffer({ size: 16, usage: 0x80 | 0x04 | 0x08 });
    const tooSmall = new Tensor(gpu, small, [4, 8], 'f32', 'tooSmall');
    rejects(gpu, () => rmsnormForward(gpu, tooSmall, w, y, rstd, dims), /too small/);
    rejects(gpu, () => rmsnormBackward(gpu, x, w, rstd, y, tooSmall, w, dims), /too small|different buffers/);
    rejects(gpu, () => rmsnormBackward(gpu, x, w, rstd, y, gpu.tensor([4, 8]), wrong, dims), /dweight must hold 8/);
    small.destroy();
  });
});

describe('rmsnormDweightReduce (several norms, one dispatch)', () => {
  it.each([
    [70, 64, 128], // partial slots of 3·64 and 2·320 floats start 256-byte aligned
    [33, 320, 384],
  ])('N=%i C=%i stride=%i: equals the one-norm backward bit for bit, overwrite and accumulate', async (N, C, stride) => {
    const gpu = await testGpu();
    const rb = rmsnormRowBlocks(N);
    const count = 3;
    const partials = poisoned(gpu, [count, rb, C], 'partials');
    const dweights = gpu.tensor([(count - 1) * stride + C], 'f32', 'dweights', new Float32Array((count - 1) * stride + C).fill(0.5));
    const expected: number[][] = [];
    for (let n = 0; n < count; n++) {
      const x = gpu.tensor([N, C], 'f32', 'x', randn(N * C, 10 * n + 1));
      const w = gpu.tensor([C], 'f32', 'w', randn(C, 10 * n + 2));
      const dy = gpu.tensor([N, C], 'f32', 'dy', randn(N * C, 10 * n + 3));
      const y = poisoned(gpu, [N, C], 'y');
      const rstd = poisoned(gpu, [N], 'rstd');
      rmsnormForward(gpu, x, w, y, rstd, { N, C });
      const dx = poisoned(gpu, [N, C], 'dx');
      const dwAlone = gpu.tensor([C], 'f32', 'dw alone', new Float32Array(C).fill(0.5));
      rmsnormBackward(gpu, x, w, rstd, dy, dx, dwAlone, { N, C }, { accumulate: true });
      const slot = new Tensor(gpu, partials.buffer, [rb, C], 'f32', 'slot', n * rb * C * 4, true);
      rmsnormBackward(gpu, x, w, rstd, dy, poisoned(gpu, [N, C], 'dx2'), poisoned(gpu, [C], 'unused'), { N, C }, { partials: slot });
      expected.push(Array.from(await gpu.readF32(dwAlone)));
    }
    rmsnormDweightReduce(gpu, partials, dweights, { N, C, count, stride, accumulate: true });
    const got = await gpu.readF32(dweights);
    for (let n = 0; n < count; n++) expect(Array.from(got.subarray(n * stride, n * stride + C)), `norm ${n}`).toEqual(expected[n]);
    // the gaps between the strided dweights are left alone
    if (stride > C) expect(got[C]).toBe(0.5);
    rejects(gpu, () => rmsnormDweightReduce(gpu, partials, dweights, { N, C, count, stride: C - 1 }), /stride/);
  });
});

describe('rmsnormForward subgroup variant (issue 20)', () => {
  it.each([
    [1, 1],
    [7, 33],
    [65, 127],
    [33, 1000],
    [3, 5000],
  ])('N=%i C=%i: forced on, matches the float64 reference', async (N, C) => {
    const gpu = await testGpu();
    // SwiftShader offers subgroups; a device here without them is a regression, not a skip.
    expect(gpu.features.subgroups, `${gpu.info.description}: the device was not granted 'subgroups'`).toBe(true);
    expect(gpu.device.features.has('subgroups')).toBe(true); // requested at device creation, not only offered
    const seed = N * 1000 + C + 7;
    const xData = randn(N * C, seed);
    const wData = randn(C, seed + 1, 0.5).map((v) => v + 1);
    const x = gpu.tensor([N, C], 'f32', 'x', xData);
    const w = gpu.tensor([C], 'f32', 'w', wData);
    const y = poisoned(gpu, [N, C], 'y');
    const rstd = poisoned(gpu, [N], 'rstd');
    const dims = { N, C, eps: 1e-5 };
    const shaders = vi.spyOn(gpu, 'pipeline');
    rmsnormForward(gpu, x, w, y, rstd, dims, { subgroups: true });
    expect(shaders.mock.calls.map(([shader, entry]) => `${shader.name}:${entry}`)).toEqual(['rmsnorm_subgroups:rmsnorm_forward_sg']);
    shaders.mockRestore();
    const ref = rmsnormForwardRef(xData, wData, dims);
    expectClose(`rmsnorm subgroups y N=${N} C=${C}`, await gpu.readF32(y), ref.y, 1e-5);
    expectClose(`rmsnorm subgroups rstd N=${N} C=${C}`, await gpu.readF32(rstd), ref.rstd, 1e-5);
    for (const t of [x, w, y, rstd]) t.release();
  });

  it('the lid-order fallback (subgroups that are not aligned blocks) gives the same answer', async () => {
    const gpu = await testGpu();
    expect(gpu.features.subgroups, `${gpu.info.description}: the device was not granted 'subgroups'`).toBe(true);
    const N = 9;
    const C = 700;
    const xData = randn(N * C, 41);
    const wData = randn(C, 42);
    const x = gpu.tensor([N, C], 'f32', 'x', xData);
    const w = gpu.tensor([C], 'f32', 'w', wData);
    const y = poisoned(gpu, [N, C], 'y');
    const rstd = poisoned(gpu, [N], 'rstd');
    rmsnormForward(gpu, x, w, y, rstd, { N, C }, { subgroups: true, subgroupLidOrder: true });
    const ref = rmsnormForwardRef(xData, wData, { N, C });
    expectClose('rmsnorm subgroups lid-order y', await gpu.readF32(y), ref.y, 1e-5);
    expectClose('rmsnorm subgroups lid-order rstd', await gpu.readF32(rstd), ref.rstd, 1e-5);
    for (const t of [x, w, y, rstd]) t.release();
  });

  it("'auto' picks it on hardware granted subgroups only; true without the feature is refused", async () => {
    expect(rmsnormUsesSubgroups({ subgroups: true }, { isSoftware: false })).toBe(true);
    expect(rmsnormUsesSubgroups({ subgroups: true }, { isSoftware: true })).toBe(false);
    expect(rmsnormUsesSubgroups({ subgroups: false }, { isSoftware: false })).toBe(false);
    expect(rmsnormUsesSubgroups({ subgroups: true }, { isSoftware: false }, false)).toBe(false);
    expect(rmsnormUsesSubgroups({ subgroups: true }, { isSoftware: true }, true)).toBe(true);
    expect(() => rmsnormUsesSubgroups({ subgroups: false }, { isSoftware: false }, true)).toThrow(/needs a device granted the 'subgroups' feature/);
    // this machine's software adapter: the default forward compiles today's shader
    const gpu = await testGpu();
    const N = 4;
    const C = 8;
    const x = gpu.tensor([N, C], 'f32', 'x', randn(N * C, 31));
    const w = gpu.tensor([C], 'f32', 'w', randn(C, 32));
    const y = gpu.tensor([N, C]);
    const rstd = gpu.tensor([N]);
    const shaders = vi.spyOn(gpu, 'pipeline');
    rmsnormForward(gpu, x, w, y, rstd, { N, C });
    const used = shaders.mock.calls.map(([shader]) => shader.name);
    shaders.mockRestore();
    expect(used).toEqual([gpu.info.isSoftware ? 'rmsnorm' : gpu.features.subgroups ? 'rmsnorm_subgroups' : 'rmsnorm']);
    await gpu.readF32(y);
    for (const t of [x, w, y, rstd]) t.release();
  });
});
