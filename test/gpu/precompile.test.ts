// Compiling kernels ahead without blocking the event loop (Gpu.precompile): the traced work
// dispatches nothing, the recorded pipelines compile through createComputePipelineAsync, and
// a contributor's warm-up covers every kernel of a round and leaves no trace in its state.
import { describe, expect, it } from 'vitest';
import { ModelReplica } from '../../src/round/replica.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { testGpu } from '../helpers/gpu.ts';

const SHADER = {
  name: 'precompile-test',
  code: 'override K: u32 = 1u;\n@group(0) @binding(0) var<storage, read_write> y: array<u32>;\n@compute @workgroup_size(1) fn main() { y[0] = y[0] * 10u + K; }',
};

describe('Gpu.precompile', () => {
  it('records what the work asks for without dispatching it, then compiles it all', async () => {
    const gpu = await testGpu();
    const y = gpu.tensor([1], 'u32', 'y', [0]);
    const before = gpu.pipelines.size;
    const progress: [number, number][] = [];
    const compiled = await gpu.precompile(() => {
      for (const K of [3, 4, 3]) gpu.dispatch(gpu.pipeline(SHADER, 'main', { K }), null, [y], [1]);
      expect(gpu.pendingDispatches).toBe(0);
    }, (done, total) => progress.push([done, total]));
    expect(compiled).toBe(2); // K=3 once
    expect(gpu.pipelines.size).toBe(before + 2);
    expect(progress[0]).toEqual([0, 2]);
    expect(progress.at(-1)).toEqual([2, 2]);
    expect(Array.from(await gpu.read(y))).toEqual([0]); // the traced dispatches never ran
    // Now they are cached, and real.
    for (const K of [3, 4]) gpu.dispatch(gpu.pipeline(SHADER, 'main', { K }), null, [y], [1]);
    expect(gpu.pipelines.size).toBe(before + 2);
    expect(Array.from(await gpu.read(y))).toEqual([34]);
    // Nothing left to compile: no progress, nothing compiled.
    const again: number[] = [];
    expect(await gpu.precompile(() => void gpu.pipeline(SHADER, 'main', { K: 4 }), (d) => again.push(d))).toBe(0);
    expect(again).toEqual([]);
    y.release();
  });

  it('stops recording when the work throws, and names a pipeline that fails to compile', async () => {
    const gpu = await testGpu();
    await expect(gpu.precompile(() => {
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(gpu.pipelines.recording).toBe(false);
    const bad = { name: 'precompile-bad', code: '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }' };
    await expect(gpu.precompile(() => void gpu.pipeline(bad, 'main'))).rejects.toThrow(/precompile-bad/);
    await gpu.sync().catch(() => {}); // the module's own compile error, reported to the device
  });
});

describe('ModelReplica.warmUp', () => {
  const config = parseRunConfig({ run: 'warm-up', innerSteps: 2, batch: 2, seq: 16, plannedRounds: 2 });
  const tokens = Int32Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256);

  async function round(replica: ModelReplica): Promise<{ loss: number; hash: string }> {
    replica.initializeFromSeed();
    let loss = 0;
    for (let step = 0; step < config.innerSteps; step++) loss = (await replica.trainStep(0, step)).loss;
    const update = await replica.compress(0);
    replica.apply([update], 0);
    return { loss, hash: await replica.weightsHash() };
  }

  it('compiles every kernel of a round ahead, and a warmed-up replica trains exactly as a cold one', async () => {
    const gpu = await testGpu();
    const warm = new ModelReplica(gpu, config, tokens, 'peer');
    const progress: number[] = [];
    const compiled = await warm.warmUp({ onProgress: (done) => progress.push(done) });
    expect(compiled).toBeGreaterThan(10);
    expect(progress.at(-1)).toBe(compiled);
    const cached = gpu.pipelines.size;
    const a = await round(warm);
    expect(gpu.pipelines.size).toBe(cached); // nothing left to compile on first use
    warm.destroy();
    // A replica that never warmed up (its kernels found cached) ends bit-identical: the
    // traced work moved no weight, optimiser state or error feedback.
    const cold = new ModelReplica(gpu, config, tokens, 'peer');
    const b = await round(cold);
    cold.destroy();
    console.log(`${compiled} kernels compiled ahead; loss ${a.loss.toFixed(5)}; weights ${a.hash}`);
    expect(a).toEqual(b);
  }, 900_000); // a whole model's kernels on a CPU "GPU": minutes on a loaded machine
});
