import { describe, expect, it } from 'vitest';
import {
  embeddingBackward,
  embeddingBackwardIndex,
  embeddingBackwardRef,
  embeddingForward,
  embeddingForwardRef,
  uploadEmbeddingIndex,
  uploadTokens,
} from '../../src/kernels/embedding.ts';
import { expectClose, finiteDiff, poisoned, randInts, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

/** dtable as the GPU computes it: f32 sums over each token's positions in ascending order. */
function sequentialF32(tokens: Int32Array, dout: Float32Array, V: number, C: number, start?: Float32Array): Float32Array {
  const out = new Float32Array(V * C);
  for (let v = 0; v < V; v++) {
    for (let c = 0; c < C; c++) {
      let acc = 0;
      let seen = false;
      for (let n = 0; n < tokens.length; n++) {
        if (tokens[n] === v) {
          acc = Math.fround(acc + dout[n * C + c]);
          seen = true;
        }
      }
      const old = start ? start[v * C + c] : 0;
      out[v * C + c] = start ? (seen ? Math.fround(old + acc) : old) : acc;
    }
  }
  return out;
}

describe('embedding', () => {
  it.each([
    [1, 1, 1],
    [7, 33, 65],
    [33, 7, 1000],
    [127, 1000, 33],
    [65, 5000, 127],
  ])('forward and backward, N=%i V=%i C=%i', async (N, V, C) => {
    const gpu = await testGpu();
    const seed = N * 7 + V * 13 + C;
    const tok = randInts(N, V, seed);
    const tab = randn(V * C, seed + 1);
    const d = randn(N * C, seed + 2);
    const dims = { N, V, C };
    const tokens = uploadTokens(gpu, tok, V);
    const table = gpu.tensor([V, C], 'f32', 'table', tab);
    const dout = gpu.tensor([N, C], 'f32', 'dout', d);
    const out = poisoned(gpu, [N, C]);
    const dtable = poisoned(gpu, [V, C]);
    const index = uploadEmbeddingIndex(gpu, embeddingBackwardIndex(tok, V));
    embeddingForward(gpu, tokens, table, out, dims);
    embeddingBackward(gpu, index, dout, dtable, dims);
    expectClose(`embedding out N=${N} V=${V} C=${C}`, await gpu.readF32(out), embeddingForwardRef(tok, tab, dims), 1e-5);
    expectClose(`embedding dtable N=${N} V=${V} C=${C}`, await gpu.readF32(dtable), embeddingBackwardRef(tok, d, dims), 1e-5);
    for (const t of [tokens, table, dout, out, dtable, index.tensor]) t.release();
  });

  it('backward is exact and repeatable when tokens repeat (N=200 over V=5), also accumulating', async () => {
    const gpu = await testGpu();
    const N = 200;
    const V = 5;
    const C = 300;
    const tok = randInts(N, V - 1, 51); // token V−1 never occurs: its row must be zeroed / kept
    const d = randn(N * C, 52);
    const start = randn(V * C, 53);
    const dims = { N, V, C };
    const index = uploadEmbeddingIndex(gpu, embeddingBackwardIndex(tok, V));
    const dout = gpu.tensor([N, C], 'f32', 'dout', d);
    const a = poisoned(gpu, [V, C]);
    const b = poisoned(gpu, [V, C]);
    const acc = gpu.tensor([V, C], 'f32', 'acc', start);
    embeddingBackward(gpu, index, dout, a, dims);
    embeddingBackward(gpu, index, dout, b, dims);
    embeddingBackward(gpu, index, dout, acc, dims, { accumulate: true });
    const outA = await gpu.readF32(a);
    const outB = await gpu.readF32(b);
    const outAcc = await gpu.readF32(acc);
    const ref = embeddingBackwardRef(tok, d, dims);
    expectClose('embedding dtable repeated tokens', outA, ref, 1e-5);
    expectClose('embedding dtable accumulated', outAcc, ref.map((v, i) => v + start[i]), 1e-5);
    expect(Array.from(outA)).toEqual(Array.from(sequentialF32(tok, d, V, C)));
    expect(Array.from(outB)).toEqual(Array.from(outA));
    expect(Array.from(outAcc)).toEqual(Array.from(sequentialF32(tok, d, V, C, start)));
    expect(outA.subarray((V - 1) * C).every((v) => v === 0)).toBe(true);
    for (const t of [index.tensor, dout, a, b, acc]) t.release();
  });

  it('builds the counting-sort index', () => {
    const idx = embeddingBackwardIndex([3, 1, 3, 0, 3, 1], 5);
    expect(Array.from(idx.rowToken)).toEqual([0, 1, 3]);
    expect(Array.from(idx.rowStart)).toEqual([0, 1, 3, 6]);
    expect(Array.from(idx.order)).toEqual([3, 1, 5, 0, 2, 4]);
  });

  it('reference backward matches finite differences', () => {
    const dims = { N: 6, V: 4, C: 3 };
    const tok = Int32Array.from([2, 0, 2, 3, 2, 0]);
    const tab = Float64Array.from(randn(12, 61));
    const R = Float64Array.from(randn(18, 62));
    const loss = (t: Float64Array) => embeddingForwardRef(tok, t, dims).reduce((s, v, i) => s + v * R[i], 0);
    const fd = Array.from(tab, (_, i) => finiteDiff(loss, tab, i));
    expectClose('embedding ref dtable vs finite diff', embeddingBackwardRef(tok, R, dims), fd, 1e-6);
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    rejects(gpu, () => uploadTokens(gpu, [0, 1, 5], 5), /token id 5 at position 2 is outside the vocabulary \[0, 5\)/);
    rejects(gpu, () => uploadTokens(gpu, [0, -1], 5), /token id -1/);
    rejects(gpu, () => embeddingBackwardIndex([0, 7], 5), /token id 7/);
    const tokens = uploadTokens(gpu, [0, 1, 2], 5);
    const table = gpu.tensor([5, 4]);
    const out = gpu.tensor([3, 4]);
    rejects(gpu, () => embeddingForward(gpu, tokens, table, out, { N: 3, V: 6, C: 4 }), /table must hold 24/);
    rejects(gpu, () => embeddingForward(gpu, gpu.tensor([3]), table, out, { N: 3, V: 5, C: 4 }), /tokens must be i32/);
    rejects(gpu, () => embeddingForward(gpu, tokens, table, table, { N: 5, V: 5, C: 4 }), /tokens must hold 5/);
    const index = uploadEmbeddingIndex(gpu, embeddingBackwardIndex([0, 1, 2], 5));
    const dtable = gpu.tensor([5, 4]);
    rejects(gpu, () => embeddingBackward(gpu, index, out, dtable, { N: 3, V: 6, C: 4 }), /index was built for/);
    rejects(gpu, () => embeddingBackward(gpu, index, out, gpu.tensor([5, 5]), { N: 3, V: 5, C: 4 }), /dtable must hold 20/);
    rejects(gpu, () => embeddingBackward(gpu, index, out, out, { N: 3, V: 5, C: 4 }), /dtable must hold 20/);
    rejects(gpu, () => embeddingForward(gpu, tokens, tooSmall(gpu, [5, 4]), out, { N: 3, V: 5, C: 4 }), /too small/);
    rejects(gpu, () => embeddingBackward(gpu, index, out, tooSmall(gpu, [5, 4]), { N: 3, V: 5, C: 4 }), /too small/);
  });
});
