import { describe, expect, it } from 'vitest';
import { adamwRef } from '../../src/kernels/adamw.ts';
import { globalGradNormRef } from '../../src/kernels/gradnorm.ts';
import type { ParamSpec } from '../../src/model/config.ts';
import { TensorArena } from '../../src/gpu/arena.ts';
import { parameterArenaSpecs } from '../../src/model/slice.ts';
import { AdamW, DEFAULT_ADAMW } from '../../src/train/optimizer.ts';
import { learningRate } from '../../src/train/schedule.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { expectClose, randn, testGpu } from '../helpers/gpu.ts';

const spec = (name: string, shape: number[], weightDecay: boolean): ParamSpec => ({
  name,
  shape,
  size: shape.reduce((a, b) => a * b, 1),
  weightDecay,
  init: { kind: 'ones' },
});

describe('learning-rate schedule', () => {
  const s = { peak: 1e-3, warmup: 10, total: 110, minRatio: 0.1 };
  it('warms up linearly, peaks, decays by cosine to the floor and stays there', () => {
    expect(learningRate(1, s)).toBeCloseTo(1e-4, 12);
    expect(learningRate(10, s)).toBeCloseTo(1e-3, 12);
    expect(learningRate(60, s)).toBeCloseTo(0.55e-3, 12);
    expect(learningRate(110, s)).toBeCloseTo(1e-4, 12);
    expect(learningRate(500, s)).toBeCloseTo(1e-4, 12);
    for (let t = 11; t < 110; t++) expect(learningRate(t + 1, s)).toBeLessThan(learningRate(t, s));
  });
});

describe('AdamW over a slice', () => {
  // Separate tensors: one dispatch per tensor. Arena views (as a LayerSlice has them): the
  // norm and AdamW over the arenas' spans, the decayed tensors ('w', 'w2') in one span.
  it.each([['separate tensors', false], ['arena spans', true]] as const)('%s: clips by the global norm and decays only the tensors marked for it, as the reference', async (_, flat) => {
    const gpu = await testGpu();
    const layout = [spec('w', [33, 7], true), spec('norm', [65], false), spec('w2', [5, 9], true)];
    let seed = 1;
    const theta = new Map(layout.map((s) => [s.name, randn(s.size, seed++)]));
    let params: Map<string, Tensor>;
    let grads: Map<string, Tensor>;
    if (flat) {
      params = new TensorArena(gpu, parameterArenaSpecs(layout), 'params').tensors;
      grads = new TensorArena(gpu, parameterArenaSpecs(layout), 'grads').tensors;
      for (const s of layout) gpu.write(params.get(s.name)!, theta.get(s.name)!);
    } else {
      params = new Map(layout.map((s) => [s.name, gpu.tensor(s.shape, 'f32', s.name, theta.get(s.name)!)]));
      grads = new Map(layout.map((s) => [s.name, gpu.tensor(s.shape, 'f32', `g/${s.name}`)]));
    }
    const opt = new AdamW(gpu, layout, params, grads, DEFAULT_ADAMW);
    expect(opt.flat).toBe(flat);

    const ref = new Map(layout.map((s) => [s.name, { p: Float64Array.from(theta.get(s.name)!), m: new Float64Array(s.size), v: new Float64Array(s.size) }]));
    for (let step = 1; step <= 3; step++) {
      // Large gradients, so the norm exceeds clipNorm and clipping matters.
      const g = new Map(layout.map((s) => [s.name, randn(s.size, 100 + seed++, 3)]));
      for (const s of layout) gpu.write(grads.get(s.name)!, g.get(s.name)!);
      const lr = 1e-2 * step;
      opt.update(lr);
      const [norm, scale] = globalGradNormRef([...g.values()], DEFAULT_ADAMW.clipNorm);
      expect(scale).toBeLessThan(1);
      const [gpuNorm] = await gpu.readF32(opt.gradNorm);
      expect(Math.abs(gpuNorm - norm) / norm).toBeLessThan(1e-5);
      for (const s of layout) {
        const r = ref.get(s.name)!;
        const next = adamwRef(r.p, g.get(s.name)!, r.m, r.v, { lr, weightDecay: s.weightDecay ? 0.1 : 0, step }, scale);
        Object.assign(r, { p: next.param, m: next.m, v: next.v });
      }
    }
    for (const s of layout) expectClose(`adamw ${s.name}`, await gpu.readF32(params.get(s.name)!), ref.get(s.name)!.p, 1e-5);

    // State round-trips through readState/loadState.
    const state = await opt.readState();
    expect([...state.keys()].sort()).toEqual(['adam.m/norm', 'adam.m/w', 'adam.m/w2', 'adam.v/norm', 'adam.v/w', 'adam.v/w2']);
    const fresh = new AdamW(gpu, layout, params, grads, DEFAULT_ADAMW);
    fresh.loadState(state, opt.step);
    expect(fresh.step).toBe(3);
    expectClose('restored m', await gpu.readF32(fresh.m.get('w')!), state.get('adam.m/w')!, 1e-7);
  });
});
