import { describe, expect, it } from 'vitest';
import {
  crossEntropyBackward,
  crossEntropyBackwardRef,
  crossEntropyChunk,
  crossEntropyMean,
  crossEntropyForward,
  crossEntropyForwardRef,
  crossEntropyScale,
  uploadTargets,
} from '../../src/kernels/crossentropy.ts';
import { expectClose, finiteDiff, poisoned, randInts, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

/** Targets with every fifth one ignored (−1). */
function targetsFor(N: number, V: number, seed: number): Int32Array {
  const t = randInts(N, V, seed);
  for (let i = 2; i < N; i += 5) t[i] = -1;
  return t;
}

describe('crossentropy', () => {
  it.each([
    [1, 1],
    [7, 33],
    [65, 127],
    [33, 1000],
    [3, 5000],
    [2, 50257],
    [300, 7], // more rows than one workgroup of the mean kernel
  ])('forward and backward, N=%i V=%i', async (N, V) => {
    const gpu = await testGpu();
    const seed = N * 31 + V;
    const x = randn(N * V, seed, 3);
    const tgt = targetsFor(N, V, seed + 1);
    const logits = gpu.tensor([N, V], 'f32', 'logits', x);
    const targets = uploadTargets(gpu, tgt, V);
    const losses = poisoned(gpu, [N], 'losses');
    const mean = poisoned(gpu, [1], 'mean');
    const dlogits = poisoned(gpu, [N, V], 'dlogits');
    crossEntropyForward(gpu, logits, targets, losses, mean, { N, V });
    crossEntropyBackward(gpu, logits, targets, dlogits, { N, V, targetsCpu: tgt });
    const ref = crossEntropyForwardRef(x, tgt, { N, V });
    expectClose(`crossentropy losses N=${N} V=${V}`, await gpu.readF32(losses), ref.losses, 1e-5);
    expectClose(`crossentropy mean N=${N} V=${V}`, await gpu.readF32(mean), [ref.mean], 1e-5);
    expectClose(`crossentropy dlogits N=${N} V=${V}`, await gpu.readF32(dlogits), crossEntropyBackwardRef(x, tgt, { N, V }), 1e-5);
    // In place: the gradient overwrites the logits; an explicit scale.
    crossEntropyBackward(gpu, logits, targets, logits, { N, V, scale: 0.5 });
    expectClose(`crossentropy dlogits in place N=${N} V=${V}`, await gpu.readF32(logits), crossEntropyBackwardRef(x, tgt, { N, V, scale: 0.5 }), 1e-5);
    for (const t of [logits, targets, losses, mean, dlogits]) t.release();
  });

  it('large logits stay finite; all-ignored batch gives mean 0 and zero gradient', async () => {
    const gpu = await testGpu();
    const N = 4;
    const V = 300;
    const x = randn(N * V, 71, 5).map((v) => v + 80); // exp(x) would overflow f32 without the max shift
    const tgt = Int32Array.from([3, 299, 0, -1]);
    const logits = gpu.tensor([N, V], 'f32', 'logits', x);
    const targets = uploadTargets(gpu, tgt, V);
    const losses = poisoned(gpu, [N]);
    const mean = poisoned(gpu, [1]);
    const dlogits = poisoned(gpu, [N, V]);
    crossEntropyForward(gpu, logits, targets, losses, mean, { N, V });
    crossEntropyBackward(gpu, logits, targets, dlogits, { N, V, targetsCpu: tgt });
    const ref = crossEntropyForwardRef(x, tgt, { N, V });
    expectClose('crossentropy losses, logits near 80', await gpu.readF32(losses), ref.losses, 1e-5);
    expectClose('crossentropy dlogits, logits near 80', await gpu.readF32(dlogits), crossEntropyBackwardRef(x, tgt, { N, V }), 1e-5);
    const none = new Int32Array(N).fill(-1);
    const ignored = uploadTargets(gpu, none, V);
    crossEntropyForward(gpu, logits, ignored, losses, mean, { N, V });
    crossEntropyBackward(gpu, logits, ignored, dlogits, { N, V, targetsCpu: none });
    expect(Array.from(await gpu.readF32(mean))).toEqual([0]);
    expect(Array.from(await gpu.readF32(losses))).toEqual([0, 0, 0, 0]);
    expect((await gpu.readF32(dlogits)).every((v) => v === 0)).toBe(true);
    for (const t of [logits, targets, losses, mean, dlogits, ignored]) t.release();
  });

  it('reference backward matches finite differences of the mean loss', () => {
    const dims = { N: 4, V: 5 };
    const x = Float64Array.from(randn(20, 81, 2));
    const tgt = [1, -1, 4, 0];
    const loss = (xv: Float64Array) => crossEntropyForwardRef(xv, tgt, dims).mean;
    const fd = Array.from(x, (_, i) => finiteDiff(loss, x, i));
    expect(crossEntropyScale(tgt)).toBeCloseTo(1 / 3, 15);
    expectClose('crossentropy ref dlogits vs finite diff', crossEntropyBackwardRef(x, tgt, dims), fd, 1e-6);
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    rejects(gpu, () => uploadTargets(gpu, [0, 5], 5), /target 5 at position 1/);
    rejects(gpu, () => uploadTargets(gpu, [-2], 5), /target -2/);
    const logits = gpu.tensor([3, 5]);
    const targets = uploadTargets(gpu, [0, -1, 4], 5);
    const losses = gpu.tensor([3]);
    const mean = gpu.tensor([1]);
    rejects(gpu, () => crossEntropyForward(gpu, logits, targets, losses, mean, { N: 3, V: 6 }), /logits must hold 18/);
    rejects(gpu, () => crossEntropyForward(gpu, logits, gpu.tensor([3]), losses, mean, { N: 3, V: 5 }), /targets must be i32/);
    rejects(gpu, () => crossEntropyForward(gpu, logits, targets, losses, gpu.tensor([2]), { N: 3, V: 5 }), /lossMean must hold 1/);
    rejects(gpu, () => crossEntropyBackward(gpu, logits, targets, gpu.tensor([3, 5]), { N: 3, V: 5 }), /give either scale or targetsCpu/);
    rejects(gpu, () => crossEntropyBackward(gpu, logits, targets, gpu.tensor([3, 5]), { N: 3, V: 5, targetsCpu: [0, 9, 1] }), /target 9/);
    rejects(gpu, () => crossEntropyBackward(gpu, logits, targets, gpu.tensor([3, 4]), { N: 3, V: 5, scale: 1 }), /dlogits must hold 15/);
    rejects(gpu, () => crossEntropyForward(gpu, tooSmall(gpu, [3, 5]), targets, losses, mean, { N: 3, V: 5 }), /too small/);
    rejects(gpu, () => crossEntropyBackward(gpu, logits, targets, tooSmall(gpu, [3, 5]), { N: 3, V: 5, scale: 1 }), /too small/);
  });
});

describe('crossEntropyChunk (the fused head: padded vocabulary, row chunks)', () => {
  it.each([
    [13, 37, 64, 5],
    [9, 300, 320, 9],
    [70, 5, 64, 32],
  ])('N=%i V=%i stride=%i chunk rows=%i: losses and in-place gradient match the reference; padding masked', async (N, V, stride, chunk) => {
    const gpu = await testGpu();
    const logits = randn(N * V, N + V, 4);
    const targets = randInts(N, V, N * V);
    for (let i = 0; i < N; i += 3) targets[i] = -1;
    // padded rows, garbage in the padding columns: masked out of the softmax
    const padded = new Float32Array(N * stride);
    for (let n = 0; n < N; n++) {
      padded.set(logits.subarray(n * V, (n + 1) * V), n * stride);
      for (let j = V; j < stride; j++) padded[n * stride + j] = j % 2 ? 1e30 : -3;
    }
    const targetsT = gpu.tensor([N], 'i32', 'targets', targets);
    const losses = poisoned(gpu, [N], 'losses');
    const lossMean = poisoned(gpu, [1], 'loss mean');
    const scale = 0.37;
    const tag = `N=${N} V=${V} stride=${stride} chunk=${chunk}`;
    const grad = new Float32Array(N * stride);
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const rows = Math.min(chunk, N - r0);
      const part = gpu.tensor([rows, stride], 'f32', 'chunk', padded.subarray(r0 * stride, (r0 + rows) * stride));
      crossEntropyChunk(gpu, part, targetsT, losses, { rows, V, stride, rowOffset: r0, scale: null });
      expect(Array.from(await gpu.readF32(part)), 'loss-only leaves the logits').toEqual(Array.from(padded.subarray(r0 * stride, (r0 + rows) * stride)));
      crossEntropyChunk(gpu, part, targetsT, losses, { rows, V, stride, rowOffset: r0, scale });
      grad.set(await gpu.readF32(part), r0 * stride);
      part.release();
    }
    crossEntropyMean(gpu, losses, targetsT, lossMean, { N, V });
    const ref = crossEntropyForwardRef(logits, targets, { N, V });
    expectClose(`ce chunk losses ${tag}`, await gpu.readF32(losses), ref.losses, 1e-5);
    expectClose(`ce chunk mean ${tag}`, await gpu.readF32(lossMean), [ref.mean], 1e-5);
    const dref = crossEntropyBackwardRef(logits, targets, { N, V, scale });
    const dgot = new Float32Array(N * V);
    for (let n = 0; n < N; n++) {
      dgot.set(grad.subarray(n * stride, n * stride + V), n * V);
      for (let j = V; j < stride; j++) expect(grad[n * stride + j]).toBe(0);
    }
    expectClose(`ce chunk dlogits ${tag}`, dgot, dref, 1e-5);
    rejects(gpu, () => crossEntropyChunk(gpu, targetsT, targetsT, losses, { rows: 1, V, stride: V - 1, rowOffset: 0, scale }), /stride/);
    for (const t of [targetsT, losses, lossMean]) t.release();
  });
});
