// The benchmark's peer computes the same model as ours: the tfjs model's loss and gradients,
// on the same initParameters weights, match the float64 reference (src/model/reference.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { type ModelConfig, initParameters, parameterLayout } from '../../src/model/config.ts';
import { referenceBackward, referenceForward } from '../../src/model/reference.ts';
import { relError, testGpu } from '../helpers/gpu.ts';
import { TfjsModel, benchTfjsTrainStep, syntheticBatch } from './tfjs-model.ts';
import { releaseTfjs, tfjsOnDevice } from './tfjs-webgpu.ts';

const gpu = await testGpu();
const tf = await tfjsOnDevice(gpu);
afterAll(() => releaseTfjs());

const micro = (tied: boolean): ModelConfig => ({
  vocabSize: 37, dim: 32, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 48, seqLen: 16,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: tied, initStd: 0.3,
});
const B = 2;
const T = 9;

function batch() {
  const { tokens, targets } = syntheticBatch(37, B, T, 11);
  targets[3] = -1;
  targets[T + 5] = -1;
  targets[2 * T - 1] = -1;
  return { tokens, targets };
}

describe('tfjs peer model', () => {
  for (const tied of [false, true]) {
    it(`matches the float64 reference loss and gradients (${tied ? 'tied' : 'untied'})`, async () => {
      const cfg = micro(tied);
      const params = initParameters(cfg, parameterLayout(cfg), 5);
      const { tokens, targets } = batch();
      const ref = referenceForward(cfg, params, tokens, targets, B, T);
      const model = new TfjsModel(tf, cfg, params);
      try {
        const lossT = model.loss(tokens, targets, B, T);
        const loss = (await lossT.data())[0];
        lossT.dispose();
        const rel = Math.abs(loss - ref.loss) / Math.abs(ref.loss);
        console.log(`tfjs loss ${loss} vs reference ${ref.loss} (rel ${rel.toExponential(2)})`);
        expect(rel).toBeLessThan(1e-4);

        const refGrads = referenceBackward(cfg, params, tokens, targets, B, T).grads;
        const got = await model.gradients(tokens, targets, B, T);
        expect(Math.abs(got.loss - ref.loss) / ref.loss).toBeLessThan(1e-4);
        let worst = 0;
        for (const [name, g] of refGrads) {
          const e = relError(got.grads.get(name)!, g);
          worst = Math.max(worst, e);
          expect(e, name).toBeLessThan(1e-3);
        }
        console.log(`worst gradient relative error ${worst.toExponential(2)}`);
      } finally {
        model.dispose();
      }
    });
  }

  it('one training step is clip + AdamW as src/train/optimizer.ts defines it', async () => {
    const cfg = micro(true);
    const params = initParameters(cfg, parameterLayout(cfg), 5);
    const { tokens, targets } = batch();
    const { grads } = referenceBackward(cfg, params, tokens, targets, B, T);
    let ss = 0;
    for (const g of grads.values()) for (const x of g) ss += x * x;
    const scale = Math.min(1, 1 / (Math.sqrt(ss) + 1e-6));
    expect(scale).toBeLessThan(1); // the clip is exercised
    const lr = 1e-2;
    const model = new TfjsModel(tf, cfg, params);
    try {
      await model.trainStep(tokens, targets, B, T, lr);
      for (const spec of parameterLayout(cfg)) {
        // Step 1: m̂ = g, v̂ = g², so θ ← θ·(1 − lr·wd) − lr·g / (|g| + ε), g clipped.
        const p0 = params.get(spec.name)!;
        const g = grads.get(spec.name)!;
        const keep = spec.weightDecay ? 1 - lr * 0.1 : 1;
        const want = p0.map((p, i) => p * keep - (lr * g[i] * scale) / (Math.abs(g[i] * scale) + 1e-8));
        const got = (await model.vars.get(spec.name)!.data()) as Float32Array;
        expect(relError(got, want), spec.name).toBeLessThan(1e-3);
      }
    } finally {
      model.dispose();
    }
  });

  it('a training step lowers the loss on a repeated batch and leaks no tensors', async () => {
    const cfg = micro(false);
    const model = new TfjsModel(tf, cfg, initParameters(cfg, parameterLayout(cfg), 5));
    try {
      const { tokens, targets } = batch();
      const l0 = await model.trainStep(tokens, targets, B, T, 1e-2);
      const l1 = await model.trainStep(tokens, targets, B, T, 1e-2);
      const live = tf.memory().numTensors; // Adam's moments exist from the first step on
      const l2 = await model.trainStep(tokens, targets, B, T, 1e-2);
      expect(tf.memory().numTensors).toBe(live);
      expect(Number.isFinite(l0)).toBe(true);
      expect(l1).toBeLessThan(l0);
      expect(l2).toBeLessThan(l1);
    } finally {
      model.dispose();
    }
  });

  it('benchTfjsTrainStep reports a throughput', async () => {
    const r = await benchTfjsTrainStep(gpu, micro(true), { B, T, steps: 2, warmup: 1 });
    expect(r.stepMs).toBeGreaterThan(0);
    expect(r.tokensPerSec).toBeCloseTo((B * T * 1000) / r.stepMs, 6);
  });
});
