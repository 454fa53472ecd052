import { describe, expect, it } from 'vitest';
import { adamwRef, adamwStep, type AdamwOptions } from '../../src/kernels/adamw.ts';
import { globalGradNorm, globalGradNormRef } from '../../src/kernels/gradnorm.ts';
import { Tensor } from '../../src/gpu/tensor.ts';
import { expectClose, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

const STEPS = 5;

type ClipMode = 'none' | 'fixed' | 'gradnorm';

describe('adamw', () => {
  it.each([
    [1, 'none'],
    [7, 'none'],
    [1000, 'none'],
    [5000, 'none'],
    [33, 'fixed'],
    [4099, 'fixed'],
    [127, 'gradnorm'],
    [5000, 'gradnorm'],
  ] as [number, ClipMode][])(`%i parameters, ${STEPS} steps, clip: %s`, async (n, mode) => {
    const gpu = await testGpu();
    const seed = n * 3 + mode.length;
    const p0 = randn(n, seed);
    // Larger cases decay only a prefix (a decayed span then an undecayed one, as the
    // optimizer's flat runs do).
    const decayEnd = n > 500 ? Math.floor(0.6 * n) : undefined;
    const opts = (step: number): AdamwOptions => ({ lr: 0.05, weightDecay: 0.1, step, decayEnd });
    const param = gpu.tensor([n], 'f32', 'param', p0);
    // One gradient tensor (and clip tensor) per step: writeBuffer runs before the next
    // submit, so reusing one tensor would let every recorded step see the last upload.
    const grads: Tensor[] = [];
    const clips: Tensor[] = [];
    const m = gpu.tensor([n], 'f32', 'm', new Float32Array(n));
    const v = gpu.tensor([n], 'f32', 'v', new Float32Array(n));
    let ref: ReturnType<typeof adamwRef> = { param: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
    const scales: number[] = [];
    for (let s = 1; s <= STEPS; s++) {
      const g = randn(n, seed * 10 + s, 0.5 + s);
      const grad = gpu.tensor([n], 'f32', `grad${s}`, g);
      grads.push(grad);
      let scale = 1;
      let clip: Tensor | undefined;
      if (mode === 'fixed') {
        scale = 0.3 + 0.1 * s;
        clip = gpu.tensor([2], 'f32', 'clip', [123, scale]);
      } else if (mode === 'gradnorm') {
        const maxNorm = 1;
        clip = gpu.tensor([2], 'f32', 'clip');
        globalGradNorm(gpu, [grad], clip, { maxNorm });
        scale = globalGradNormRef([g], maxNorm)[1];
      }
      if (clip) clips.push(clip);
      adamwStep(gpu, param, grad, m, v, opts(s), clip);
      ref = adamwRef(ref.param, g, ref.m, ref.v, opts(s), scale);
    }
    const tag = `n=${n} clip=${mode}`;
    const outP = await gpu.readF32(param);
    expectClose(`adamw param ${tag}`, outP, ref.param, 1e-5);
    // The change itself (~lr·steps) is far more sensitive than θ: its error floor is the f32
    // storage rounding of θ, ~ulp(θ)·√steps / (lr·steps) ≈ 1e-6 at lr 0.05, θ ~ N(0, 1).
    expectClose(`adamw Δparam ${tag}`, outP.map((x, i) => x - p0[i]), ref.param.map((x, i) => x - p0[i]), 1e-5);
    expectClose(`adamw m ${tag}`, await gpu.readF32(m), ref.m, 1e-5);
    expectClose(`adamw v ${tag}`, await gpu.readF32(v), ref.v, 1e-5);
    if (mode === 'gradnorm') {
      for (const c of clips) scales.push((await gpu.readF32(c))[1]);
      expect(scales.every((s) => s < 1)).toBe(true);
    }
    for (const t of [param, m, v, ...grads, ...clips]) t.release();
  });

  it('rejects bad input before dispatch', async () => {
    const gpu = await testGpu();
    const [p, g, m, v] = [gpu.tensor([8]), gpu.tensor([8]), gpu.tensor([8]), gpu.tensor([8])];
    const o = { lr: 1e-3, weightDecay: 0.1, step: 1 };
    rejects(gpu, () => adamwStep(gpu, p, gpu.tensor([9]), m, v, o), /grad must hold 8/);
    rejects(gpu, () => adamwStep(gpu, p, g, m, gpu.tensor([8], 'i32'), o), /v must be f32/);
    rejects(gpu, () => adamwStep(gpu, p, g, m, m, o), /m and v must be different buffers/);
    rejects(gpu, () => adamwStep(gpu, p, g, m, v, { ...o, decayEnd: 9 }), /decayEnd must be an integer in \[0, 8\]/);
    rejects(gpu, () => adamwStep(gpu, p, g, m, v, { ...o, step: 0 }), /step must be an integer/);
    rejects(gpu, () => adamwStep(gpu, p, g, m, v, { ...o, beta2: 1 }), /beta2 must be in/);
    rejects(gpu, () => adamwStep(gpu, p, g, m, v, o, gpu.tensor([3])), /clip must hold 2/);
    rejects(gpu, () => adamwStep(gpu, p, g, tooSmall(gpu, [8]), v, o), /too small/);
  });
});
