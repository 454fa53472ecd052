// Variant 2 of matmul (shaders/matmul_core.wgsl) against the float64 reference, every tile ×
// layout on odd shapes, vec4 and scalar, split-K included; and the plan's choices on named
// adapter classes. Tiny shapes: SwiftShader runs these on the CPU. Nearly all of this file's
// time is compiling pipelines (~0.5 s per 32×32 variant, 1–2 s per larger tile), so a case
// whose loads and stores another case already runs takes that case's variant (layout, vec4
// flags, split) rather than compiling a twin: 20 pipelines, was 24.
import { describe, expect, it } from 'vitest';
import { KernelInputError } from '../../src/gpu/errors.ts';
import {
  matmul, matmulCorePlan, matmulRef, matmulRmsnorm, matmulSwigluBackward, matmulVariant, rmsnormMatmulFusable, swigluBackwardFusable,
  type MatmulOptions,
} from '../../src/kernels/matmul.ts';
import { rmsnormForwardRef } from '../../src/kernels/rmsnorm.ts';
import { Gpu } from '../../src/gpu/gpu.ts';
import { MIN_K_PER_SPLIT, WORKGROUP_TARGET, corePlan, type CoreTileName } from '../../src/kernels/matmul-plan.ts';
import { SplitKGroup, splitKSlot } from '../../src/kernels/matmul-split-group.ts';
import { swigluBackwardRef, swigluForwardRef, swigluPackedBackward, swigluPackedForward } from '../../src/kernels/swiglu.ts';
import { Tensor } from '../../src/gpu/tensor.ts';
import { expectClose, poisoned, randn, testGpu } from '../helpers/gpu.ts';

const gpu = await testGpu();
const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
let seed = 101;

async function run(opts: MatmulOptions, aData: Float32Array, bData: Float32Array, c0: Float32Array | null): Promise<Float32Array> {
  const { M, N } = opts;
  const sizeC = (opts.batch ?? 1) * M * N;
  const a = gpu.tensor([aData.length], 'f32', 'A', aData);
  const b = gpu.tensor([bData.length], 'f32', 'B', bData);
  const c = c0 ? gpu.tensor([sizeC], 'f32', 'C', c0) : poisoned(gpu, [sizeC], 'C');
  matmul(gpu, a, b, c, opts);
  const out = await gpu.readF32(c);
  a.release();
  b.release();
  c.release();
  return out;
}

async function check(opts: MatmulOptions): Promise<Float32Array> {
  const { M, N, K } = opts;
  const batch = opts.batch ?? 1;
  const aData = randn((batch - 1) * (opts.strideA ?? M * K) + M * K, seed++);
  const bData = randn((batch - 1) * (opts.strideB ?? K * N) + K * N, seed++);
  const c0 = (opts.beta ?? 0) !== 0 ? randn(batch * M * N, seed++) : null;
  const out = await run(opts, aData, bData, c0);
  const name = `${opts.coreTile ?? 'auto'} split ${opts.split ?? 'auto'} M=${M} N=${N} K=${K} ${opts.transA ? 'T' : 'N'}${opts.transB ? 'T' : 'N'} b${batch}`;
  expectClose(name, out, matmulRef(aData, bData, c0, opts), 1e-5);
  return out;
}

describe('matmul variant 2 (core)', () => {
  // Every layout on one tile (32×32 compiles fastest on SwiftShader): odd shapes take the
  // scalar loads, aligned ones vec4; each spans more than one tile along M and N.
  it('every layout, odd and aligned shapes (32×32 tile)', async () => {
    for (const [transA, transB] of LAYOUTS) await check({ M: 37, N: 35, K: 29, transA, transB, variant: 2, coreTile: '32x32' });
    await check({ M: 36, N: 40, K: 24, transB: true, variant: 2, coreTile: '32x32' });
  });

  // The larger tiles, one training layout each, over more than one tile along M and N.
  it.each([
    ['128x128', false, true, 132, 136, 24],
    ['128x64', false, false, 131, 67, 13],
    ['64x128', true, false, 67, 131, 13],
    ['64x64', false, true, 68, 65, 20],
  ] as const)('tile %s (transA %s, transB %s) M=%i N=%i K=%i', async (coreTile, transA, transB, M, N, K) => {
    await check({ M, N, K, transA, transB, variant: 2, coreTile });
  });

  it('split-K in the three training layouts, splits that do and do not divide K; batches, alpha and beta', async () => {
    await check({ M: 9, N: 11, K: 70, variant: 2, coreTile: '32x32', split: 3 });
    await check({ M: 12, N: 8, K: 64, transB: true, variant: 2, coreTile: '32x32', split: 4 });
    await check({ M: 12, N: 8, K: 64, transA: true, variant: 2, coreTile: '32x32', split: 4 });
    // More splits asked than slabs: the plan keeps every split non-empty.
    await check({ M: 5, N: 6, K: 17, variant: 2, coreTile: '32x32', split: 8 });
    // Batched (padded strides) and alpha / beta through the reduction (K = 41: the scalar
    // variant above; vec4 A in a split runs in the grouped test).
    await check({ M: 9, N: 11, K: 40, batch: 3, strideA: 9 * 40 + 5, strideB: 40 * 11 + 3, variant: 2, coreTile: '32x32', split: 2 });
    await check({ M: 9, N: 11, K: 41, alpha: -2, beta: 0.25, batch: 2, variant: 2, coreTile: '32x32', split: 3 });
  });

  it('batched (broadcast weight), alpha and beta without split', async () => {
    await check({ M: 33, N: 20, K: 40, batch: 3, strideB: 0, transB: true, variant: 2, coreTile: '32x32' });
    await check({ M: 36, N: 40, K: 24, alpha: 0.5, beta: 1, transB: true, variant: 2, coreTile: '32x32' });
  });

  it('split-K results are bit-identical across runs (partials added in split order)', async () => {
    const opts: MatmulOptions = { M: 10, N: 12, K: 96, transB: true, variant: 2, coreTile: '32x32', split: 6 };
    const aData = randn(10 * 96, 7);
    const bData = randn(12 * 96, 8);
    const first = await run(opts, aData, bData, null);
    const second = await run(opts, aData, bData, null);
    expect(Buffer.from(second.buffer).equals(Buffer.from(first.buffer))).toBe(true);
  });

  it('grouped split-K reductions (one dispatch): the same bits as one reduction each, overlapping C kept in order', async () => {
    // Three products into views of one output buffer (as weight gradients in the gradient
    // arena), the third accumulating into the first's C (alpha −0.5, beta 2): its reduction
    // must follow the first's. A group with room for all three, twice over (the arena is
    // reused), and one with room for two (the third reduces on its own). The layouts and
    // sizes reuse the split variants above (Aᵀ·B and A·Bᵀ, all vec4).
    const shapes: MatmulOptions[] = [
      { M: 12, N: 12, K: 70, transA: true, variant: 2, coreTile: '32x32', split: 3 },
      { M: 16, N: 8, K: 64, transB: true, variant: 2, coreTile: '32x32', split: 4, batch: 2 },
      { M: 12, N: 12, K: 40, transA: true, variant: 2, coreTile: '32x32', split: 2, alpha: -0.5, beta: 2 },
    ];
    const inputs = shapes.map((o) => {
      const batch = o.batch ?? 1;
      return [randn(batch * o.M * o.K, seed++), randn(batch * o.K * o.N, seed++)];
    });
    const at = [0, 256, 0]; // the third writes the first's C
    const c0 = randn(256 + 2 * 16 * 8, seed++);
    const outBytes = 4 * c0.length;
    const runAll = async (group: SplitKGroup | undefined): Promise<Float32Array> => {
      const out = gpu.tensor([c0.length], 'f32', 'C arena', c0);
      const made = shapes.map((o, i) => {
        const a = gpu.tensor([inputs[i][0].length], 'f32', 'A', inputs[i][0]);
        const b = gpu.tensor([inputs[i][1].length], 'f32', 'B', inputs[i][1]);
        const c = new Tensor(gpu, out.buffer, [(o.batch ?? 1) * o.M * o.N], 'f32', `C${i}`, 4 * at[i], true);
        matmul(gpu, a, b, c, { ...o, splitGroup: group });
        return [a, b];
      });
      group?.finish();
      const got = await gpu.readF32(out);
      for (const t of [...made.flat(), out]) t.release();
      expect(got.length * 4).toBe(outBytes);
      return got;
    };
    const alone = await runAll(undefined);
    // float64 reference of the same sequence
    const ref = Float64Array.from(c0);
    shapes.forEach((o, i) => {
      const size = (o.batch ?? 1) * o.M * o.N;
      const r = matmulRef(inputs[i][0], inputs[i][1], ref.subarray(at[i], at[i] + size), o);
      ref.set(r, at[i]);
    });
    expectClose('split-K, three products in one buffer', alone, ref, 1e-5);
    const slots = shapes.map((o) => splitKSlot((o.batch ?? 1) * o.split! * o.M * o.N));
    const group = new SplitKGroup(gpu, 'test split-K group', slots[0] + slots[1] + slots[2]);
    const grouped = await runAll(group);
    const again = await runAll(group);
    console.log(`grouped split-K: ${group.dispatches} reduce dispatches over 2 passes of 3 split products (one flush for the overlap)`);
    expect(group.dispatches).toBe(4); // per pass: [0, 1] together, then [2] after its overlap with 0
    const short = new SplitKGroup(gpu, 'test split-K group, short', slots[0] + slots[1]);
    const partly = await runAll(short);
    expect(short.dispatches).toBe(1); // [0, 1]; the third found no room and reduced alone
    for (const got of [grouped, again, partly]) expect(Buffer.from(got.buffer).equals(Buffer.from(alone.buffer))).toBe(true);
    group.destroy();
    short.destroy();
  });

  it('aSwiglu: SwiGLU in the A prologue against the reference, and bit for bit against swigluPackedForward then matmul', async () => {
    // Rows, columns and slabs past the tile edges; vec4 loads (F % 4 = 0 in every preset);
    // N % 4 = 0 so the unfused matmul is the first test's aligned A·Bᵀ variant.
    for (const [M, N, K] of [[37, 36, 28]]) {
      const opts: MatmulOptions = { M, N, K, transB: true, beta: 1, variant: 2, coreTile: '32x32', aSwiglu: true };
      const guData = randn(M * 2 * K, seed++);
      const bData = randn(N * K, seed++);
      const c0 = randn(M * N, seed++);
      const fused = await run(opts, guData, bData, c0);
      expectClose(`aSwiglu M=${M} N=${N} K=${K}`, fused, matmulRef(guData, bData, c0, opts), 1e-5);
      const gu = gpu.tensor([M, 2 * K], 'f32', 'gate|up', guData);
      const m = gpu.tensor([M, K], 'f32', 'm');
      swigluPackedForward(gpu, gu, m, { N: M, F: K });
      const unfused = await run({ ...opts, aSwiglu: false }, await gpu.readF32(m), bData, c0);
      expect(Buffer.from(fused.buffer).equals(Buffer.from(unfused.buffer))).toBe(true);
      gu.release();
      m.release();
    }
    expect(() => matmul(gpu, gpu.tensor([8]), gpu.tensor([4]), gpu.tensor([4]), { M: 2, N: 2, K: 2, transA: true, variant: 2, aSwiglu: true })).toThrow(/aSwiglu needs variant 2, batch 1 and A not transposed/);
  });

  it('matmulSwigluBackward: the SwiGLU backward as the dm matmul epilogue, against the reference and the two-pass path', async () => {
    // The same device described as discrete (variant 2 chosen by 'auto', as on a GPU).
    const disc = new Gpu(gpu.device, gpu.adapter, { ...gpu.info, vendor: 'test-discrete', isSoftware: false }, gpu.features);
    const [rows, C, F] = [37, 36, 44]; // rows past the tile edge; K = C not a multiple of the slab
    expect(swigluBackwardFusable(disc, { rows, C, F })).toBe(true);
    const dyData = randn(rows * C, seed++);
    const wData = randn(C * F, seed++);
    const guData = randn(rows * 2 * F, seed++);
    const dy = disc.tensor([rows, C], 'f32', 'dy', dyData);
    const w = disc.tensor([C, F], 'f32', 'wDown', wData);
    const gu = disc.tensor([rows, 2 * F], 'f32', 'gate|up', guData);
    const [dgu, m, dgu2, m2, dm] = [[rows, 2 * F], [rows, F], [rows, 2 * F], [rows, F], [rows, F]].map((sh) => poisoned(disc, sh, 'out'));
    matmulSwigluBackward(disc, dy, w, gu, dgu, m, { rows, C, F });
    matmul(disc, dy, w, dm, { M: rows, N: F, K: C }); // the two-pass path
    swigluPackedBackward(disc, gu, dm, dgu2, m2, { N: rows, F });
    const [gotDgu, gotM, twoDgu, twoM] = [await disc.readF32(dgu), await disc.readF32(m), await disc.readF32(dgu2), await disc.readF32(m2)];
    const dmRef = matmulRef(dyData, wData, null, { M: rows, N: F, K: C });
    const gate = new Float64Array(rows * F);
    const up = new Float64Array(rows * F);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < F; j++) {
        gate[r * F + j] = guData[r * 2 * F + j];
        up[r * F + j] = guData[r * 2 * F + F + j];
      }
    }
    const { dgate, dup } = swigluBackwardRef(gate, up, dmRef);
    const dguRef = new Float64Array(rows * 2 * F);
    for (let r = 0; r < rows; r++) {
      dguRef.set(dgate.subarray(r * F, (r + 1) * F), r * 2 * F);
      dguRef.set(dup.subarray(r * F, (r + 1) * F), r * 2 * F + F);
    }
    expectClose('swiglu-backward epilogue dgate|dup', gotDgu, dguRef, 1e-5);
    expectClose('swiglu-backward epilogue m', gotM, swigluForwardRef(gate, up), 1e-5);
    expect(Buffer.from(gotDgu.buffer).equals(Buffer.from(twoDgu.buffer))).toBe(true);
    expect(Buffer.from(gotM.buffer).equals(Buffer.from(twoM.buffer))).toBe(true);
    for (const t of [dy, w, gu, dgu, m, dgu2, m2, dm]) t.release();
    expect(swigluBackwardFusable(gpu, { rows, C, F })).toBe(false); // the software adapter keeps two passes
  });

  it('matmulRmsnorm: RMSNorm in the prologue, against the reference (y, n, rstd)', async () => {
    const disc = new Gpu(gpu.device, gpu.adapter, { ...gpu.info, vendor: 'test-discrete', isSoftware: false }, gpu.features);
    // rows past the tile edge, K = C not a multiple of the slab, out not a multiple of 4 (scalar C stores)
    const [rows, C, out, eps] = [37, 36, 45, 1e-5];
    expect(rmsnormMatmulFusable(disc, { rows, C, out })).toBe(true);
    const xData = randn(rows * C, seed++, 3);
    const gData = randn(C, seed++);
    const wData = randn(out * C, seed++);
    const x = disc.tensor([rows, C], 'f32', 'x', xData);
    const g = disc.tensor([C], 'f32', 'g', gData);
    const w = disc.tensor([out, C], 'f32', 'w', wData);
    const [y, n, rstd] = [[rows, out], [rows, C], [rows]].map((sh) => poisoned(disc, sh, 'out'));
    matmulRmsnorm(disc, x, g, w, y, n, rstd, { rows, C, out, eps });
    const ref = rmsnormForwardRef(xData, gData, { N: rows, C, eps });
    const yRef = matmulRef(ref.y, wData, null, { M: rows, N: out, K: C, transB: true });
    expectClose('rmsnorm prologue y', await disc.readF32(y), yRef, 1e-5);
    expectClose('rmsnorm prologue n', await disc.readF32(n), ref.y, 1e-6);
    expectClose('rmsnorm prologue rstd', await disc.readF32(rstd), ref.rstd, 1e-6);
    for (const t of [x, g, w, y, n, rstd]) t.release();
    expect(rmsnormMatmulFusable(gpu, { rows, C, out })).toBe(false); // the software adapter keeps two passes
    expect(rmsnormMatmulFusable(disc, { rows, C: 34, out })).toBe(false); // C % 4
    expect(rmsnormMatmulFusable(disc, { rows, C, out: C - 1 })).toBe(false); // n's columns need out ≥ C
  });

  it('plans: tiles and splits from the shape and the adapter class', () => {
    const discrete = WORKGROUP_TARGET.discrete;
    // The head's input gradient at `small`: 2048×256×50257 → 128×128 tiles split along K.
    const head = corePlan(gpu, 2048, 256, 50257, 1, discrete);
    expect(head.name).toBe('128x128');
    expect(head.workgroups).toBeGreaterThanOrEqual(2 * 128);
    expect(head.kSplit % head.tile.tk).toBe(0);
    expect((head.splits - 1) * head.kSplit).toBeLessThan(50257);
    // A weight gradient 256×256×2048: split, each split at least MIN_K_PER_SPLIT deep.
    const wgrad = corePlan(gpu, 256, 256, 2048, 1, discrete);
    expect(wgrad.workgroups).toBeGreaterThanOrEqual(2 * 128);
    expect(wgrad.kSplit).toBeGreaterThanOrEqual(MIN_K_PER_SPLIT);
    // Large outputs: the largest tile, no split.
    expect(corePlan(gpu, 4096, 4096, 4096, 1, discrete)).toMatchObject({ name: '128x128', splits: 1 });
    // A short K cannot be split: the most workgroups the shape allows.
    expect(corePlan(gpu, 64, 64, 64, 1, discrete)).toMatchObject({ name: '32x32', splits: 1, workgroups: 4 });
    // The class sets the target: 512³ fills a CPU's 64 with 64×64 tiles; a discrete GPU's 256
    // takes 32×32 tiles (a 4-way split of 64×64 would write partials twice the inputs' size).
    expect(corePlan(gpu, 512, 512, 512, 1, WORKGROUP_TARGET.software)).toMatchObject({ name: '64x64', splits: 1 });
    expect(corePlan(gpu, 512, 512, 512, 1, discrete)).toMatchObject({ name: '32x32', splits: 1 });
    // This adapter (SwiftShader) runs variant 1 by default; variant 2 when asked, f32 only.
    expect(matmulVariant(gpu, {})).toBe(gpu.info.isSoftware ? 1 : 2);
    expect(matmulVariant(gpu, { split: 2 })).toBe(2);
    expect(matmulVariant(gpu, { tile: 'small' })).toBe(1);
    expect(matmulCorePlan(gpu, 100, 100, 100, 1, { coreTile: '64x64', split: 1 })).toMatchObject({ name: '64x64', splits: 1 });
  });

  it('rejects bad variant options before dispatch', () => {
    const a = gpu.tensor([16], 'f32', 'A');
    const b = gpu.tensor([16], 'f32', 'B');
    const c = gpu.tensor([16], 'f32', 'C');
    const before = gpu.pendingDispatches;
    const bad = (opts: Partial<MatmulOptions>, message: RegExp) => {
      const call = (g: Gpu) => matmul(g, a, b, c, { M: 4, N: 4, K: 4, ...opts });
      expect(() => call(gpu)).toThrow(KernelInputError);
      expect(() => call(gpu)).toThrow(message);
    };
    bad({ variant: 3 as unknown as 2 }, /variant must be/);
    bad({ split: 0 }, /split must be a positive integer/);
    bad({ coreTile: '16x16' as CoreTileName }, /unknown tile/);
    expect(gpu.pendingDispatches).toBe(before);
    a.release();
    b.release();
    c.release();
  });
});
