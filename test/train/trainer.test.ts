// LocalTrainer.trainSteps reads each loss one step late; it must train exactly as trainStep
// one step at a time (same losses, same weights, bit for bit), report every step in order,
// and still stop on a non-finite loss.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { initParameters, parameterLayout, type ModelConfig } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { LocalTrainer, type StepResult } from '../../src/train/trainer.ts';
import { randInts, testGpu } from '../helpers/gpu.ts';

const CFG: ModelConfig = {
  vocabSize: 32, dim: 16, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 24, seqLen: 8, ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: true,
};
const B = 2;
const T = 8;
const SCHEDULE = { peak: 1e-2, warmup: 0, total: 10, minRatio: 1 };

function trainer(gpu: Gpu, poison = false): LocalTrainer {
  const slice = LayerSlice.create(gpu, CFG, 0, CFG.layers, { batch: B, seqLen: T });
  const init = initParameters(CFG, parameterLayout(CFG), 5);
  if (poison) init.get('finalNorm')!.fill(Number.NaN);
  slice.setParameters(init);
  const opt = new AdamW(gpu, slice.layout, slice.params, slice.grads);
  const data = (step: number, micro: number) => ({
    tokens: randInts(B * T, CFG.vocabSize, 100 * step + micro),
    targets: randInts(B * T, CFG.vocabSize, 100 * step + micro + 50),
  });
  return new LocalTrainer(gpu, slice, opt, { batch: data }, SCHEDULE, 2);
}

describe('LocalTrainer.trainSteps', () => {
  it('trains bit for bit as trainStep one at a time, reporting every step in order', async () => {
    const gpu = await testGpu();
    const one = trainer(gpu);
    const serial: StepResult[] = [];
    for (let i = 0; i < 3; i++) serial.push(await one.trainStep());
    const piped = trainer(gpu);
    const seen: number[] = [];
    const results = await piped.trainSteps(3, (r) => void seen.push(r.step));
    expect(seen).toEqual([1, 2, 3]);
    expect(results.map((r) => [r.step, r.loss, r.gradNorm, r.lr])).toEqual(serial.map((r) => [r.step, r.loss, r.gradNorm, r.lr]));
    const a = await one.slice.readParameters();
    const b = await piped.slice.readParameters();
    for (const [name, w] of a) expect(b.get(name), name).toEqual(w);
    one.destroy();
    piped.destroy();
  });

  it('stops with a clear error on a non-finite loss, one step later than it was recorded', async () => {
    const gpu = await testGpu();
    const t = trainer(gpu, true);
    const seen: number[] = [];
    await expect(t.trainSteps(5, (r) => void seen.push(r.step))).rejects.toThrow(/loss became NaN at step 1/);
    expect(seen).toEqual([]);
    expect(t.optimizer.step).toBe(2); // step 2 was already submitted when step 1's loss arrived
    t.destroy();
  });
});
