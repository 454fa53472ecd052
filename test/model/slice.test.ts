// The GPU LayerSlice against the float64 reference (src/model/reference.ts): loss and every
// parameter gradient of the whole model (tied and untied, some targets ignored), two chained
// pipeline stages against the whole, gradient accumulation over micro-batches, memory
// accounting, and input errors that record nothing.
import { describe, expect, it } from 'vitest';
import { KernelInputError } from '../../src/gpu/errors.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { Tensor } from '../../src/gpu/tensor.ts';
import { ConfigError, type ModelConfig, Rng, initParameters, parameterLayout, preset } from '../../src/model/config.ts';
import { referenceBackward, referenceSliceBackward } from '../../src/model/reference.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { expectClose, randInts, testGpu } from '../helpers/gpu.ts';

const micro = (tied: boolean): ModelConfig => ({
  vocabSize: 37, dim: 32, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 48, seqLen: 12,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: tied, initStd: 0.2,
});
const B = 2;
const T = 9;
const BOUND = 1e-4;

/** The seeded init with norm weights perturbed away from 1 (a dropped or transposed weight shows). */
function params(cfg: ModelConfig, seed: number, from = 0, to = cfg.layers): Map<string, Float32Array> {
  const init = initParameters(cfg, parameterLayout(cfg, from, to), seed);
  for (const spec of parameterLayout(cfg, from, to)) {
    if (spec.init.kind !== 'ones') continue;
    const rng = new Rng(seed + spec.name.length);
    const a = init.get(spec.name)!;
    for (let i = 0; i < a.length; i++) a[i] += 0.3 * rng.nextNormal();
  }
  return init;
}

function batch(cfg: ModelConfig, b: number, t: number, seed: number): { tokens: Int32Array; targets: Int32Array } {
  const n = b * t;
  const tokens = randInts(n, cfg.vocabSize, seed);
  const targets = randInts(n, cfg.vocabSize, seed + 1);
  for (let i = 0; i < n; i += 4) targets[i] = -1; // some ignored
  return { tokens, targets };
}

/** Runs fn and checks it recorded no submit. */
function noSubmit(gpu: Gpu, fn: () => void): void {
  const before = gpu.submits;
  fn();
  expect(gpu.submits).toBe(before);
}

function compareGrads(label: string, got: Map<string, Float32Array>, ref: Map<string, ArrayLike<number>>, skip: string[] = []): void {
  for (const [name, r] of ref) {
    if (skip.includes(name)) continue;
    expectClose(`${label} ${name}`, got.get(name)!, r, BOUND);
  }
}

describe('LayerSlice', () => {
  it.each([false, true])('whole model: loss and every gradient match the reference (tied=%s)', async (tied) => {
    const gpu = await testGpu();
    const cfg = micro(tied);
    const p = params(cfg, 7);
    const { tokens, targets } = batch(cfg, B, T, 11);
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.setParameters(p);
    // poison the gradients: a backward without accumulate must overwrite every element
    for (const g of slice.grads.values()) gpu.write(g, new Float32Array(g.size).fill(Number.NaN));
    noSubmit(gpu, () => {
      slice.forward({ tokens, targets });
      slice.backward();
    });
    expect(() => slice.backward()).toThrow(/already run for this forward/);
    expect(slice.output).toBeNull();
    expect(slice.inputGrad).toBeNull();
    const loss = (await gpu.readF32(slice.loss!))[0];
    const ref = referenceBackward(cfg, p, tokens, targets, B, T);
    console.log(`tied=${tied} loss: gpu ${loss.toFixed(7)} ref ${ref.loss.toFixed(7)}`);
    expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(BOUND);
    const grads = await slice.readGradients();
    expect([...grads.keys()]).toEqual(parameterLayout(cfg).map((s) => s.name));
    compareGrads(`tied=${tied}`, grads, ref.grads);
    slice.destroy();
  });

  it.each([false, true])('two chained stages equal the whole model (tied=%s)', async (tied) => {
    const gpu = await testGpu();
    const cfg = micro(tied);
    const L = cfg.layers;
    const k = 1;
    const p = params(cfg, 21);
    const { tokens, targets } = batch(cfg, B, T, 23);
    const shape = { batch: B, seqLen: T };
    const s0 = LayerSlice.create(gpu, cfg, 0, k, shape);
    const s1 = LayerSlice.create(gpu, cfg, k, L, shape);
    const pick = (from: number, to: number) => new Map(parameterLayout(cfg, from, to).map((s) => [s.name, p.get(s.name)!]));
    s0.setParameters(pick(0, k));
    s1.setParameters(pick(k, L));
    expect(s0.loss).toBeNull();
    expect(s1.output).toBeNull();
    noSubmit(gpu, () => {
      s0.forward({ tokens });
      s1.forward({ x: s0.output!, targets });
      s1.backward();
      s0.backward({ dOut: s1.inputGrad! });
    });
    const loss = (await gpu.readF32(s1.loss!))[0];
    const whole = referenceBackward(cfg, p, tokens, targets, B, T);
    expect(Math.abs(loss - whole.loss) / whole.loss).toBeLessThan(BOUND);
    const g0 = await s0.readGradients();
    const g1 = await s1.readGradients();
    const label = `split tied=${tied}`;
    compareGrads(`${label} stage0`, g0, new Map([...whole.grads].filter(([n]) => g0.has(n))), ['embedding']);
    compareGrads(`${label} stage1`, g1, new Map([...whole.grads].filter(([n]) => g1.has(n))), ['embedding']);
    if (tied) {
      // config.ts: the tied matrix's gradient is the sum of the two stages' parts
      expect(parameterLayout(cfg, k, L).find((s) => s.name === 'embedding')?.tiedCopy).toBe(true);
      const sum = g0.get('embedding')!.map((v, i) => v + g1.get('embedding')![i]);
      expectClose(`${label} embedding (stage0 + stage1)`, sum, whole.grads.get('embedding')!, BOUND);
    } else {
      expectClose(`${label} embedding`, g0.get('embedding')!, whole.grads.get('embedding')!, BOUND);
    }
    // the hand-off activations and their gradient against the reference stages
    const ref1 = referenceSliceBackward(cfg, k, L, p, { x: await gpu.readF32(s0.output!), targets }, B, T);
    expectClose(`${label} inputGrad`, await gpu.readF32(s1.inputGrad!), ref1.dx!, BOUND);
    // and against the single GPU slice [0, L)
    const one = LayerSlice.create(gpu, cfg, 0, L, shape);
    one.setParameters(p);
    one.forward({ tokens, targets });
    one.backward();
    expect(Math.abs((await gpu.readF32(one.loss!))[0] - loss) / loss).toBeLessThan(1e-6);
    const gw = await one.readGradients();
    for (const [name, g] of gw) {
      const parts = [g0.get(name), g1.get(name)].filter((x) => x !== undefined);
      const split = parts.length === 1 ? parts[0] : parts[0].map((v, i) => v + parts[1][i]);
      expectClose(`${label} vs GPU whole: ${name}`, split, g, 1e-5);
    }
    one.destroy();
    s0.destroy();
    s1.destroy();
  });

  it('accumulates two micro-batches with lossScale 0.5 into the gradient of the mean loss', async () => {
    const gpu = await testGpu();
    const cfg = micro(true);
    const p = params(cfg, 31);
    const b1 = batch(cfg, B, T, 33);
    const b2 = batch(cfg, B, T, 35);
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.setParameters(p);
    noSubmit(gpu, () => {
      slice.forward(b1);
      slice.backward({ accumulate: false, lossScale: 0.5 });
      slice.forward(b2);
      slice.backward({ accumulate: true, lossScale: 0.5 });
    });
    const r1 = referenceBackward(cfg, p, b1.tokens, b1.targets, B, T);
    const r2 = referenceBackward(cfg, p, b2.tokens, b2.targets, B, T);
    const mean = new Map([...r1.grads].map(([n, g]) => [n, g.map((v, i) => 0.5 * (v + r2.grads.get(n)![i]))]));
    compareGrads('accumulate', await slice.readGradients(), mean);
    const loss = (await gpu.readF32(slice.loss!))[0];
    expect(Math.abs(loss - r2.loss) / r2.loss).toBeLessThan(BOUND);
    slice.destroy();
  });

  it('tiny preset, B=2, T=16: loss and every gradient match the reference', async () => {
    const gpu = await testGpu();
    const cfg = preset('tiny');
    const [b, t] = [2, 16];
    const p = params(cfg, 41);
    const { tokens, targets } = batch(cfg, b, t, 43);
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: b, seqLen: t });
    slice.setParameters(p);
    slice.forward({ tokens, targets });
    slice.backward();
    const ref = referenceBackward(cfg, p, tokens, targets, b, t);
    const loss = (await gpu.readF32(slice.loss!))[0];
    console.log(`tiny loss: gpu ${loss.toFixed(7)} ref ${ref.loss.toFixed(7)}`);
    expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(BOUND);
    compareGrads('tiny', await slice.readGradients(), ref.grads);
    slice.destroy();
  });

  it('fused path (packed q|k|v, gate|up) equals the split path and the reference, accumulating too', async () => {
    const gpu = await testGpu();
    const cfg = micro(false);
    const p = params(cfg, 51);
    const b1 = batch(cfg, B, T, 53);
    const b2 = batch(cfg, B, T, 55);
    const run = async (fused: boolean) => {
      const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T, fused });
      expect(slice.fused).toBe(fused);
      slice.setParameters(p);
      slice.forward(b1);
      slice.backward({ lossScale: 0.5 });
      slice.forward(b2);
      slice.backward({ accumulate: true, lossScale: 0.5 });
      const out = { loss: (await gpu.readF32(slice.loss!))[0], grads: await slice.readGradients(), mem: slice.memory() };
      slice.destroy();
      return out;
    };
    const fused = await run(true);
    const split = await run(false);
    console.log(`fused loss ${fused.loss.toFixed(7)} split ${split.loss.toFixed(7)}`);
    expect(Math.abs(fused.loss - split.loss) / split.loss).toBeLessThan(1e-6);
    compareGrads('fused vs split', fused.grads, split.grads);
    const r1 = referenceBackward(cfg, p, b1.tokens, b1.targets, B, T);
    const r2 = referenceBackward(cfg, p, b2.tokens, b2.targets, B, T);
    compareGrads('fused vs reference', fused.grads, new Map([...r1.grads].map(([n, g]) => [n, g.map((v, i) => 0.5 * (v + r2.grads.get(n)![i]))])));
    // Sizes off the arena's 64-float alignment cannot be packed: the split path, still correct.
    const odd = { ...micro(false), mlpHidden: 47 };
    const slice = LayerSlice.create(gpu, odd, 0, odd.layers, { batch: B, seqLen: T });
    expect(slice.fused).toBe(false);
    const po = params(odd, 57);
    slice.setParameters(po);
    slice.forward(b1);
    slice.backward();
    compareGrads('odd sizes (split)', await slice.readGradients(), referenceBackward(odd, po, b1.tokens, b1.targets, B, T).grads);
    slice.destroy();
  });

  it('head fused in row chunks over the padded vocabulary (37 → 64, 3 chunks) matches the reference; padding stays zero', async () => {
    const gpu = await testGpu();
    const cfg = micro(true);
    const [b, t] = [11, 12]; // 132 rows: chunks of 64, 64, 4
    const p = params(cfg, 61);
    const { tokens, targets } = batch(cfg, b, t, 63);
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: b, seqLen: t, headChunkRows: 64 });
    slice.setParameters(p);
    const ref = referenceBackward(cfg, p, tokens, targets, b, t);
    slice.forward({ tokens, targets }); // a forward alone: the loss getter records the loss half
    const evalLoss = (await gpu.readF32(slice.loss!))[0];
    slice.forward({ tokens, targets });
    slice.backward();
    const loss = (await gpu.readF32(slice.loss!))[0];
    console.log(`chunked head loss: eval ${evalLoss.toFixed(7)} train ${loss.toFixed(7)} ref ${ref.loss.toFixed(7)}`);
    expect(Math.abs(evalLoss - ref.loss) / ref.loss).toBeLessThan(BOUND);
    expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(BOUND);
    compareGrads('chunked head', await slice.readGradients(), ref.grads);
    // the reserved rows V … 63 after the (tied) head stay zero in the gradient and the parameters
    for (const map of [slice.grads, slice.params]) {
      const e = map.get('embedding')!;
      const padded = new Tensor(gpu, e.buffer, [64, cfg.dim], 'f32', 'padded', e.offset, true);
      const rows = await gpu.readF32(padded);
      expect(rows.subarray(cfg.vocabSize * cfg.dim).every((v) => v === 0)).toBe(true);
    }
    expect(() => LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: b, seqLen: t, headChunkRows: 50 })).toThrow(/multiple of 64/);
    slice.destroy();
  });

  it('memory() adds up; parameters round-trip; initialize matches initParameters', async () => {
    const gpu = await testGpu();
    const cfg = micro(false);
    const shape = { batch: B, seqLen: T };
    for (const [from, to] of [[0, 2], [0, 1], [1, 2]]) {
      const s = LayerSlice.create(gpu, cfg, from, to, shape);
      const m = s.memory();
      console.log(`memory [${from}, ${to}):`, JSON.stringify(m));
      expect(m.total).toBe(m.parameters + m.gradients + m.activations + m.scratch);
      for (const v of [m.parameters, m.gradients, m.activations, m.scratch]) expect(v).toBeGreaterThan(0);
      const paramBytes = 4 * parameterLayout(cfg, from, to).reduce((a, sp) => a + sp.size, 0);
      expect(m.parameters).toBe(paramBytes);
      expect(m.gradients).toBe(paramBytes);
      s.initialize(5);
      const back = await s.readParameters();
      const want = initParameters(cfg, s.layout, 5);
      for (const [n, v] of want) expect(back.get(n)).toEqual(v);
      s.destroy();
    }
    const tiny = LayerSlice.create(gpu, preset('tiny'), 0, 2, { batch: 8, seqLen: 64 });
    console.log('memory tiny B=8 T=64:', JSON.stringify(tiny.memory()));
    tiny.destroy();
  });

  it('rejects bad inputs with a clear error and records nothing', async () => {
    const gpu = await testGpu();
    const cfg = micro(false);
    const shape = { batch: B, seqLen: T };
    expect(() => LayerSlice.create(gpu, cfg, 0, 3, shape)).toThrow(ConfigError);
    expect(() => LayerSlice.create(gpu, cfg, 0, 2, { batch: 0, seqLen: T })).toThrow(KernelInputError);
    expect(() => LayerSlice.create(gpu, cfg, 0, 2, { batch: 1, seqLen: 13 })).toThrow(/seqLen/);
    const whole = LayerSlice.create(gpu, cfg, 0, 2, shape);
    const s1 = LayerSlice.create(gpu, cfg, 1, 2, shape);
    const s0 = LayerSlice.create(gpu, cfg, 0, 1, shape);
    whole.initialize(1);
    s1.initialize(1);
    s0.initialize(1);
    await gpu.sync();
    const { tokens, targets } = batch(cfg, B, T, 3);
    const rejects = (f: () => void, message: RegExp) => {
      const dispatches = gpu.pendingDispatches;
      const submits = gpu.submits;
      expect(f).toThrow(KernelInputError);
      expect(f).toThrow(message);
      expect(gpu.pendingDispatches).toBe(dispatches);
      expect(gpu.submits).toBe(submits);
    };
    const badTokens = tokens.slice();
    badTokens[5] = 37;
    rejects(() => whole.forward({ tokens: badTokens, targets }), /token id 37 at position 5/);
    rejects(() => whole.forward({ tokens: tokens.slice(1), targets }), /tokens holds 17 ids/);
    rejects(() => whole.forward({ tokens }), /needs input\.targets/);
    const badTargets = targets.slice();
    badTargets[2] = -2;
    rejects(() => whole.forward({ tokens, targets: badTargets }), /target -2 at position 2/);
    rejects(() => whole.backward(), /no forward/);
    rejects(() => s1.forward({ targets }), /needs input\.x/);
    const wrong = gpu.tensor([B, T, cfg.dim + 1], 'f32', 'wrong x');
    rejects(() => s1.forward({ x: wrong, targets }), /x must be \[2, 9, 32\]/);
    rejects(() => s1.forward({ x: new Float32Array(B * T * cfg.dim) as never, targets }), /needs input\.x, a \[B, T, C\] f32 tensor/);
    s0.forward({ tokens });
    await gpu.sync();
    rejects(() => s0.backward(), /needs dOut/);
    rejects(() => s0.backward({ dOut: wrong }), /dOut must be/);
    rejects(() => s0.backward({ dOut: s0.output!, lossScale: Number.NaN }), /lossScale/);
    rejects(() => whole.setParameters(new Map()), /missing parameter embedding/);
    wrong.release();
    whole.destroy();
    s1.destroy();
    s0.destroy();
  });
});
