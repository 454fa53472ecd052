import { describe, expect, it } from 'vitest';
import { KernelInputError } from '../../src/gpu/errors.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { LARGE_TILE, SMALL_TILE, matmul, matmulRef, matmulTile, type MatmulOptions } from '../../src/kernels/matmul.ts';
import { expectClose, poisoned, randn, testGpu } from '../helpers/gpu.ts';

const gpu = await testGpu();
const TRANS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

let seed = 1;

/** Runs one matmul on fresh random inputs (C poisoned unless beta ≠ 0) and checks it. */
async function check(opts: MatmulOptions, label = ''): Promise<number> {
  const { M, N, K } = opts;
  const batch = opts.batch ?? 1;
  const sA = opts.strideA ?? M * K;
  const sB = opts.strideB ?? K * N;
  const sizeA = (batch - 1) * sA + M * K;
  const sizeB = (batch - 1) * sB + K * N;
  const sizeC = batch * M * N;
  const aData = randn(sizeA, seed++);
  const bData = randn(sizeB, seed++);
  const a = gpu.tensor([sizeA], 'f32', 'A', aData);
  const b = gpu.tensor([sizeB], 'f32', 'B', bData);
  let c: Tensor;
  let c0: Float32Array | null = null;
  if ((opts.beta ?? 0) !== 0) {
    c0 = randn(sizeC, seed++);
    c = gpu.tensor([sizeC], 'f32', 'C', c0);
  } else {
    c = poisoned(gpu, [sizeC], 'C');
  }
  matmul(gpu, a, b, c, opts);
  const out = await gpu.readF32(c);
  const flags = `${opts.transA ? 'T' : 'N'}${opts.transB ? 'T' : 'N'}`;
  const name = `${label}M=${M} N=${N} K=${K} ${flags}${batch > 1 ? ` batch=${batch} strides ${sA}/${sB}` : ''}`;
  const rel = expectClose(name, out, matmulRef(aData, bData, c0, opts), 1e-5);
  a.release();
  b.release();
  c.release();
  return rel;
}

describe('matmul', () => {
  it.each([
    [1, 1, 1],
    [1, 7, 33],
    [7, 1, 65],
    [7, 7, 7],
    [33, 65, 127],
    [65, 33, 127],
    [127, 1, 7],
  ])('M=%i N=%i K=%i, every transpose (unaligned: scalar loads)', async (M, N, K) => {
    for (const [transA, transB] of TRANS) await check({ M, N, K, transA, transB });
  });

  it.each([
    [64, 64, 64],
    [68, 36, 32],
    [4, 4, 4],
  ])('M=%i N=%i K=%i, every transpose (aligned: vec4 loads)', async (M, N, K) => {
    for (const [transA, transB] of TRANS) await check({ M, N, K, transA, transB });
  });

  it('mixed alignment: vec4 for some operands, scalar for others', async () => {
    // K=33 makes A (NN) and B (NT) scalar while N=36 keeps C (and B in NN) vec4; and so on.
    await check({ M: 68, N: 36, K: 33 });
    await check({ M: 68, N: 36, K: 33, transB: true });
    await check({ M: 65, N: 36, K: 32, transA: true });
    await check({ M: 64, N: 33, K: 32, transA: true, transB: true });
  });

  it.each(['large', 'small'] as const)('larger than one %s tile in every dimension', async (tile) => {
    for (const [transA, transB] of TRANS) {
      await check({ M: 133, N: 130, K: 71, transA, transB, tile }, `${tile} tile `);
    }
    await check({ M: 136, N: 132, K: 96, tile }, `${tile} tile `);
  });

  it('batched with a broadcast weight (strideB = 0) and a broadcast A (strideA = 0)', async () => {
    await check({ M: 33, N: 20, K: 40, batch: 3, strideB: 0, transB: true });
    await check({ M: 16, N: 24, K: 12, batch: 4, strideB: 0 });
    await check({ M: 9, N: 13, K: 7, batch: 5, strideA: 0, transA: true });
    await check({ M: 65, N: 7, K: 5, batch: 2 });
  });

  it('batched with padded strides (stride > matrix size, not a multiple of 4)', async () => {
    await check({ M: 12, N: 8, K: 16, batch: 3, strideA: 12 * 16 + 5, strideB: 16 * 8 + 3 });
  });

  it('alpha and beta accumulate onto existing C', async () => {
    await check({ M: 33, N: 65, K: 17, alpha: 1, beta: 1 });
    await check({ M: 64, N: 64, K: 32, alpha: 0.5, beta: 1, transB: true });
    await check({ M: 7, N: 9, K: 11, alpha: -2, beta: 0.25, transA: true, batch: 2 });
    await check({ M: 20, N: 12, K: 8, alpha: 3, beta: 0 });
  });

  it('beta = 0 overwrites NaN in C', async () => {
    const a = gpu.tensor([4 * 5], 'f32', 'A', randn(20, 99));
    const b = gpu.tensor([5 * 6], 'f32', 'B', randn(30, 98));
    const c = poisoned(gpu, [4 * 6], 'C');
    matmul(gpu, a, b, c, { M: 4, N: 6, K: 5, alpha: 2 });
    const out = await gpu.readF32(c);
    expect(out.every(Number.isFinite)).toBe(true);
    a.release();
    b.release();
    c.release();
  });

  it('picks the tile from the limits and the grid size', () => {
    expect(matmulTile(gpu, 1024, 1024)).toEqual(LARGE_TILE);
    expect(matmulTile(gpu, 64, 64)).toEqual(SMALL_TILE);
    expect(matmulTile(gpu, 64, 64, 64)).toEqual(LARGE_TILE);
    expect(matmulTile(gpu, 1024, 1024, 1, 'small')).toEqual(SMALL_TILE);
  });

  const hasF16 = gpu.features.f16;
  it.skipIf(!hasF16)(`f16 storage, f32 accumulation${hasF16 ? '' : ' (skipped: this adapter lacks shader-f16)'}`, async () => {
    for (const [M, N, K, transA, transB] of [
      [65, 33, 127, false, true],
      [64, 64, 64, true, false],
      [7, 9, 5, false, false],
    ] as const) {
      const aData = roundF16(randn(M * K, seed++));
      const bData = roundF16(randn(K * N, seed++));
      const a = gpu.tensor([M * K], 'f16', 'A', toF16Bits(aData));
      const b = gpu.tensor([K * N], 'f16', 'B', toF16Bits(bData));
      const c = gpu.tensor([M * N], 'f16', 'C', new Uint16Array(M * N).fill(0x7e00)); // NaN
      matmul(gpu, a, b, c, { M, N, K, transA, transB, dtype: 'f16' });
      const out = fromF16Bits((await gpu.read(c)) as Uint16Array);
      // Inputs are exact in f16; the error is the f16 rounding of the output (2⁻¹¹ relative).
      expectClose(`f16 M=${M} N=${N} K=${K}`, out, matmulRef(aData, bData, null, { M, N, K, transA, transB }), 1e-3);
      a.release();
      b.release();
      c.release();
    }
  });

  describe('rejects bad input before dispatch', () => {
    function expectRejected(call: (g: Gpu) => void, message: RegExp): void {
      const before = gpu.pendingDispatches;
      expect(() => call(gpu)).toThrow(KernelInputError);
      expect(() => call(gpu)).toThrow(message);
      expect(gpu.pendingDispatches).toBe(before);
    }

    it('mismatched shapes, dtypes and sizes', async () => {
      await gpu.sync();
      const a = gpu.tensor([6 * 4], 'f32', 'A');
      const b = gpu.tensor([4 * 5], 'f32', 'B');
      const c = gpu.tensor([6 * 5], 'f32', 'C');
      const i = gpu.tensor([6 * 4], 'i32', 'I');
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 5 }), /A must hold 30 elements for 6×5/);
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 4, K: 4 }), /B must hold 16 elements for 4×4/);
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 4, batch: 2 }), /A must hold 48 elements for 2 batches/);
      expectRejected((g) => matmul(g, i, b, c, { M: 6, N: 5, K: 4 }), /A must be f32/);
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 0 }), /K must be a positive integer/);
      expectRejected((g) => matmul(g, a, b, c, { M: 6.5, N: 5, K: 4 }), /M must be a positive integer/);
      expectRejected((g) => matmul(g, a, b, a, { M: 6, N: 4, K: 4, strideB: 0 }), /must not share a buffer with A/);
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 4, alpha: Number.NaN }), /alpha must be a finite/);
      if (!gpu.features.f16) {
        expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 4, dtype: 'f16' }), /shader-f16/);
      }
      for (const t of [a, b, c, i]) t.release();
    });

    it('buffers too small for the given strides and batch', async () => {
      const a = gpu.tensor([100], 'f32', 'A');
      const b = gpu.tensor([20], 'f32', 'B');
      const c = gpu.tensor([90], 'f32', 'C');
      // 3 batches of 6×4 with stride 40 need 2·40 + 24 = 104 elements of A.
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 4, batch: 3, strideA: 40, strideB: 0 }), /A must hold at least 104/);
      // C batches may not overlap.
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 4, batch: 3, strideA: 0, strideB: 0, strideC: 10 }), /overlap/);
      expectRejected((g) => matmul(g, a, b, c, { M: 6, N: 5, K: 4, batch: 3, strideA: -1, strideB: 0 }), /strideA must be/);
      // A size over the device's binding limit.
      const huge = Math.floor(gpu.maxBindingBytes / 4) + 1;
      expectRejected((g) => matmul(g, a, b, c, { M: huge, N: 1, K: 1, strideB: 0 }), /this GPU allows at most/);
      for (const t of [a, b, c]) t.release();
    });

    it('a grid over the per-dimension workgroup limit', async () => {
      const max = gpu.limits.maxComputeWorkgroupsPerDimension;
      const a = gpu.tensor([1], 'f32', 'A');
      const b = gpu.tensor([1], 'f32', 'B');
      const c = gpu.tensor([max + 1], 'f32', 'C');
      expectRejected(
        (g) => matmul(g, a, b, c, { M: 1, N: 1, K: 1, batch: max + 1, strideA: 0, strideB: 0 }),
        new RegExp(`over this GPU's limit of ${max}`),
      );
      for (const t of [a, b, c]) t.release();
    });
  });
});

// f16 helpers: round-to-nearest-even conversion of f32 values to half bits and back.
function toF16Bits(x: Float32Array): Uint16Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i];
    const bits = u[0];
    const sign = (bits >>> 16) & 0x8000;
    const exp = ((bits >>> 23) & 0xff) - 127 + 15;
    let mant = bits & 0x7fffff;
    if (exp >= 31) {
      out[i] = sign | 0x7c00;
    } else if (exp <= 0) {
      if (exp < -10) {
        out[i] = sign;
      } else {
        mant |= 0x800000;
        const shift = 14 - exp;
        let h = mant >>> shift;
        const rem = mant & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && h & 1)) h++;
        out[i] = sign | h;
      }
    } else {
      let h = (exp << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
      out[i] = sign | h;
    }
  }
  return out;
}

function fromF16Bits(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const sign = h[i] & 0x8000 ? -1 : 1;
    const exp = (h[i] >>> 10) & 0x1f;
    const mant = h[i] & 0x3ff;
    out[i] =
      exp === 0 ? sign * mant * 2 ** -24 : exp === 31 ? (mant ? Number.NaN : sign * Infinity) : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

function roundF16(x: Float32Array): Float32Array {
  return fromF16Bits(toF16Bits(x));
}
