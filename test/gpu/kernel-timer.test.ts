// GPU time per kernel class (KernelTimer, timestamp-query): a pass per dispatch, stamps read
// back after the submit without blocking, summed by shader and entry point; what the kernels
// compute is the same with it attached. SwiftShader offers timestamp-query, so it runs here.
import { describe, expect, it } from 'vitest';
import { Gpu } from '../../src/gpu/gpu.ts';
import { KernelTimer, kernelClass } from '../../src/gpu/kernel-timer.ts';
import { testGpu } from '../helpers/gpu.ts';

const SHADER = {
  name: 'timer-test',
  code: `override REPS: u32 = 1u;
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn spin(@builtin(global_invocation_id) id: vec3u) {
  var acc = y[id.x];
  for (var i = 0u; i < REPS; i++) { acc = acc * 0.999 + 1.0; }
  y[id.x] = acc;
}
@compute @workgroup_size(64) fn double(@builtin(global_invocation_id) id: vec3u) { y[id.x] = 2.0 * y[id.x]; }`,
};

async function run(gpu: Gpu): Promise<Float32Array> {
  const y = gpu.tensor([256], 'f32', 'y', new Float32Array(256).fill(1));
  for (const reps of [100, 2000]) gpu.dispatch(gpu.pipeline(SHADER, 'spin', { REPS: reps }), null, [y], [4]);
  gpu.dispatch(gpu.pipeline(SHADER, 'double'), null, [y], [4]);
  gpu.flush();
  gpu.dispatch(gpu.pipeline(SHADER, 'spin', { REPS: 100 }), null, [y], [4]);
  const out = await gpu.readF32(y);
  y.release();
  return out;
}

describe('KernelTimer', () => {
  it('names a class by shader and entry point, whatever the constants', () => {
    expect(kernelClass('matmul|matmul|A_VEC4=1,TK=16')).toBe('matmul|matmul');
    expect(kernelClass('attention_fa2|forward|')).toBe('attention_fa2|forward');
    expect(kernelClass('plain')).toBe('plain');
  });

  it('sums GPU time by kernel class over submits, and the kernels compute what they do untimed', async () => {
    const gpu = await testGpu();
    expect(gpu.features.timestampQuery, 'this adapter offers timestamp-query').toBe(true);
    const untimed = await run(gpu);
    const timer = new KernelTimer(gpu);
    gpu.timer = timer;
    try {
      const timed = await run(gpu);
      expect(timed).toEqual(untimed);
      const times = await timer.collect();
      console.log(times.map((t) => `${t.kernel}: ${t.dispatches} dispatches, ${t.ms.toFixed(3)} ms`).join('; '));
      const by = Object.fromEntries(times.map((t) => [t.kernel, t]));
      expect(Object.keys(by).sort()).toEqual(['timer-test|double', 'timer-test|spin']);
      expect(by['timer-test|spin'].dispatches).toBe(3); // two constants, one class; two submits
      expect(by['timer-test|double'].dispatches).toBe(1);
      for (const t of times) expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(by['timer-test|spin'].ms).toBeGreaterThan(0);
      expect(timer.untimed).toBe(0);
      timer.reset();
      expect(await timer.collect()).toEqual([]);
    } finally {
      gpu.timer = null;
      timer.destroy();
    }
  });

  it('has nothing to time on a device without timestamp-query', async () => {
    const gpu = await testGpu();
    const without = new Gpu(gpu.device, gpu.adapter, gpu.info, { ...gpu.features, timestampQuery: false });
    const timer = new KernelTimer(without);
    expect(timer.available).toBe(false);
    expect(timer.passTimestamps('timer-test|spin|')).toBeUndefined();
    expect(await timer.collect()).toEqual([]);
  });
});
