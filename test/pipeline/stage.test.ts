// PipelineStage and StageRunner on a small 4-layer tied model: a recomputed forward
// reproduces the activations that were sent, bit for bit; S = 4 (one layer each, the tied
// embedding split between the first and last stage) and S = 1 train like the whole model,
// the two tied copies staying identical; wrong-shape, wrong-round, corrupt and misdirected
// messages are rejected and counted while the step completes unchanged; misuse throws.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { type ModelConfig, initParameters, parameterLayout } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { Tensor } from '../../src/gpu/tensor.ts';
import { ActivationError, decodeActivations, encodeActivations } from '../../src/pipeline/activation-codec.ts';
import { loopbackPair, type StageLink } from '../support/pipeline/link.ts';
import { StageRunner, runPipelineStep } from '../support/pipeline/runner.ts';
import { type MicroBatchData, PipelineStage } from '../../src/pipeline/stage.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { expectClose, randInts, testGpu } from '../helpers/gpu.ts';

const cfg: ModelConfig = {
  vocabSize: 37, dim: 32, layers: 4, heads: 4, kvHeads: 2, mlpHidden: 48, seqLen: 12,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: true, initStd: 0.2,
};
const [B, T, LR] = [2, 8, 1e-2];

function batch(step: number, micro: number): { tokens: Int32Array; targets: Int32Array } {
  const tokens = randInts(B * T, cfg.vocabSize, 97 * step + micro);
  const targets = randInts(B * T, cfg.vocabSize, 97 * step + micro + 50_000);
  targets[3] = -1;
  return { tokens, targets };
}
const data = (step: number) => (micro: number): MicroBatchData => ({ micro, ...batch(step, micro) });

function makeStages(gpu: Gpu, bounds: number[], init: Map<string, Float32Array>, mode: 'f32' | 'f16' | 'int8' = 'f32') {
  const S = bounds.length - 1;
  const stages = Array.from({ length: S }, (_, s) => {
    const st = PipelineStage.create(gpu, cfg, { from: bounds[s], to: bounds[s + 1], batch: B, seqLen: T, mode });
    st.slice.setParameters(new Map(st.slice.layout.map((p) => [p.name, init.get(p.name)!])));
    return st;
  });
  const links: [StageLink, StageLink][] = Array.from({ length: S - 1 }, () => loopbackPair());
  const runners = stages.map((st, s) => new StageRunner(st, {
    index: s, stages: S, upstream: s > 0 ? links[s - 1][1] : undefined, downstream: s < S - 1 ? links[s][0] : undefined,
  }));
  return { stages, links, runners };
}

async function wholeModel(gpu: Gpu, init: Map<string, Float32Array>, steps: number, micros: number) {
  const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
  slice.setParameters(init);
  const opt = new AdamW(gpu, slice.layout, slice.params, slice.grads);
  const trainer = new LocalTrainer(gpu, slice, opt, { batch }, { peak: LR, warmup: 0, total: 1, minRatio: 1 }, micros);
  const losses: number[] = [];
  const norms: number[] = [];
  for (let step = 1; step <= steps; step++) {
    const r = await trainer.trainStep(step);
    losses.push(r.loss);
    norms.push(r.gradNorm);
  }
  const params = await slice.readParameters();
  trainer.destroy();
  opt.destroy();
  slice.destroy();
  return { losses, norms, params };
}

describe('PipelineStage', () => {
  it('a recomputed forward reproduces the sent activations bit for bit', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), 3);
    const { stages } = makeStages(gpu, [0, 2, 4], init);
    const [s0, s1] = stages;
    for (const s of stages) s.beginStep(1, 2);
    const a0 = await s0.forwardMicro(data(1)(0));
    const a1 = await s0.forwardMicro(data(1)(1)); // the slice now holds micro-batch 1
    expect(s0.inFlight).toBe(2);
    if (a0.kind !== 'activations' || a1.kind !== 'activations') throw new Error('expected activations');
    const l0 = await s1.forwardMicro(a0.bytes);
    expect(l0.kind).toBe('loss');
    const g0 = await s1.backwardMicro(0);
    expect(s1.recomputes).toBe(0);
    await s0.backwardMicro(0, g0!); // recomputes micro-batch 0 first
    expect(s0.recomputes).toBe(1);
    const again = await gpu.readF32(s0.slice.output!);
    const sent = decodeActivations(a0.bytes).data;
    expect(again.every((v, i) => Object.is(v, sent[i]))).toBe(true);
    await s1.forwardMicro(a1.bytes);
    await s0.backwardMicro(1, (await s1.backwardMicro(1))!);
    expect(s0.recomputes).toBe(2);
    for (const s of stages) s.destroy();
  });

  it('the last stage runs the head and cross-entropy once per micro-batch (loss and gradient from one pass)', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), 4);
    const { stages } = makeStages(gpu, [0, 2, 4], init);
    const [s0, s1] = stages;
    for (const s of stages) s.beginStep(1, 2);
    // Head dispatches: every dispatch that binds the head's logits chunk (head.ts: the logits
    // matmul, ce_chunk, the head's weight and input gradients: 4 per chunk, one chunk here).
    const counts = { head: 0, ce: 0 };
    const dispatch = gpu.dispatch.bind(gpu);
    gpu.dispatch = (pipeline, params, buffers, workgroups) => {
      if (buffers.some((b) => b instanceof Tensor && b.label.startsWith('logits'))) counts.head++;
      if (pipeline.label.includes('ce_chunk')) counts.ce++;
      dispatch(pipeline, params, buffers, workgroups);
    };
    try {
      for (const micro of [0, 1]) {
        const a = await s0.forwardMicro(data(1)(micro));
        if (a.kind !== 'activations') throw new Error('expected activations');
        counts.head = counts.ce = 0;
        const out = await s1.forwardMicro(a.bytes);
        if (out.kind !== 'loss') throw new Error('expected the loss');
        const g = await s1.backwardMicro(micro);
        console.log(`last stage, micro-batch ${micro}: ${counts.head} head dispatches, ${counts.ce} ce_chunk, loss ${out.loss.toFixed(6)}`);
        expect(counts).toEqual({ head: 4, ce: 1 });
        await s0.backwardMicro(micro, g!);
      }
    } finally {
      gpu.dispatch = dispatch;
    }
    expect(s1.recomputes).toBe(0);
    // a forwarded micro-batch's gradient is already in on the last stage: dropping it is refused
    s0.abortStep();
    s1.abortStep();
    for (const s of stages) s.beginStep(2, 1);
    const a = await s0.forwardMicro(data(2)(0));
    if (a.kind !== 'activations') throw new Error('expected activations');
    await s1.forwardMicro(a.bytes);
    expect(() => s1.dropMicro(0)).toThrow(/backwardMicro it instead/);
    for (const s of stages) s.destroy();
  });

  it('S = 4 (tied embedding split between the first and last stage) and S = 1 train like the whole model', async () => {
    const gpu = await testGpu();
    const [steps, micros] = [3, 3];
    const init = initParameters(cfg, parameterLayout(cfg), 5);
    const ref = await wholeModel(gpu, init, steps, micros);
    for (const bounds of [[0, 1, 2, 3, 4], [0, 4]]) {
      const { stages, runners, links } = makeStages(gpu, bounds, init);
      const losses: number[] = [];
      const norms: number[] = [];
      for (let step = 1; step <= steps; step++) {
        const r = await runPipelineStep(runners, { step, micros, lr: LR, data: data(step) });
        losses.push(r.loss);
        norms.push(r.gradNorm);
      }
      const S = stages.length;
      const dl = Math.max(...losses.map((l, i) => Math.abs(l - ref.losses[i])));
      console.log(`S=${S}: losses ${losses.map((l) => l.toFixed(6)).join(' ')} (whole ${ref.losses.map((l) => l.toFixed(6)).join(' ')}), max |Δloss| ${dl.toExponential(2)}, ‖g‖ ${norms.map((n) => n.toFixed(3)).join(' ')} (whole ${ref.norms.map((n) => n.toFixed(3)).join(' ')}), recomputes ${stages.map((s) => s.recomputes).join('/')}`);
      expect(dl).toBeLessThan(1e-5);
      norms.forEach((n, i) => expect(Math.abs(n - ref.norms[i]) / ref.norms[i]).toBeLessThan(1e-5));
      expect(ref.norms[0]).toBeGreaterThan(1); // clipping was active: the global norm mattered
      const params = new Map<string, Float32Array>();
      for (const s of stages) for (const [n, p] of await s.slice.readParameters()) if (!params.has(n)) params.set(n, p);
      for (const [n, p] of ref.params) expectClose(`S=${S} params ${n}`, params.get(n)!, p, 1e-5);
      if (S > 1) {
        const first = (await stages[0].slice.readParameters()).get('embedding')!;
        const copy = (await stages[S - 1].slice.readParameters()).get('embedding')!;
        expect(copy.every((v, i) => Object.is(v, first[i]))).toBe(true); // the tied copies stay identical
        expect(stages.map((s) => s.recomputes)).toEqual([3, 3, 3, 0].map((k) => k * steps)); // every backward but the last stage's
      }
      for (const r of runners) expect(r.dropped).toEqual({});
      for (const [a] of links) a.close();
      for (const s of stages) s.destroy();
    }
  });

  it('rejects and counts wrong-shape, wrong-round, corrupt and misdirected messages; the step completes unchanged', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), 7);
    const clean = makeStages(gpu, [0, 2, 4], init);
    const want = await runPipelineStep(clean.runners, { step: 1, micros: 2, lr: LR, data: data(1) });
    const cleanParams = await clean.stages[1].slice.readParameters();
    for (const s of clean.stages) s.destroy();

    const { stages, runners, links } = makeStages(gpu, [0, 2, 4], init);
    const [down, up] = links[0]; // down: stage 0's end (sends to stage 1), up: stage 1's end
    const x = new Float32Array(B * T * cfg.dim).fill(0.5);
    const targets = batch(1, 0).targets;
    const act = { mode: 'f32' as const, kind: 'activations' as const, round: 0, step: 1, micro: 0, B, T, C: cfg.dim, data: x, targets };
    down.send(encodeActivations({ ...act, round: 9 })); // wrong round
    down.send(encodeActivations({ ...act, T: T - 1, data: x.subarray(0, B * (T - 1) * cfg.dim), targets: targets.subarray(0, B * (T - 1)) })); // wrong shape
    const corrupt = encodeActivations(act);
    corrupt[100] ^= 0x10;
    down.send(corrupt); // bit flip
    down.send(new Uint8Array([1, 2, 3, 4, 5])); // not a hand-off
    down.send(encodeActivations({ ...act, kind: 'grads', targets: undefined })); // grads on the forward direction
    down.send(encodeActivations({ ...act, micro: 5 })); // outside the step's micro-batches
    const badTargets = targets.slice();
    badTargets[0] = cfg.vocabSize;
    down.send(encodeActivations({ ...act, targets: badTargets })); // a target beyond the vocabulary
    up.send(encodeActivations({ ...act, kind: 'grads', round: 3, targets: undefined })); // wrong-round gradients to stage 0
    up.send(encodeActivations({ ...act, kind: 'grads', step: 0, targets: undefined })); // an old step
    const got = await runPipelineStep(runners, { step: 1, micros: 2, lr: LR, data: data(1) });
    console.log('dropped: stage 1', JSON.stringify(runners[1].dropped), 'stage 0', JSON.stringify(runners[0].dropped));
    expect(runners[1].dropped).toEqual({ round: 1, shape: 1, crc: 1, magic: 1, kind: 1, targets: 1 });
    expect(runners[0].dropped).toEqual({ round: 1, stale: 1 });
    expect(got.loss).toBe(want.loss);
    expect(got.gradNorm).toBe(want.gradNorm);
    const params = await stages[1].slice.readParameters();
    for (const [n, p] of cleanParams) expect(params.get(n)!.every((v, i) => Object.is(v, p[i])), n).toBe(true);
    // micro 5 of step 1 was routed into the inbox (its header is fine) and is purged as stale next step
    for (const s of stages) s.destroy();
  });

  it('misuse throws clear errors and leaves the stage usable', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), 9);
    const { stages } = makeStages(gpu, [0, 2, 4], init);
    const [s0, s1] = stages;
    await expect(s0.forwardMicro(data(1)(0))).rejects.toThrow(/outside a step/);
    s0.beginStep(1, 2);
    s1.beginStep(1, 2);
    await expect(s0.forwardMicro(new Uint8Array(8))).rejects.toThrow(/stage 0 takes data/);
    await expect(s1.forwardMicro(data(1)(0))).rejects.toThrow(/previous stage's activations/);
    await expect(s0.forwardMicro({ micro: 2, ...batch(1, 0) })).rejects.toThrow(ActivationError);
    await expect(s0.backwardMicro(0, new Uint8Array(8))).rejects.toThrow(/has not been forwarded/);
    const a = await s0.forwardMicro(data(1)(0));
    await expect(s0.forwardMicro(data(1)(0))).rejects.toThrow(/already forwarded/);
    if (a.kind !== 'activations') throw new Error('expected activations');
    expect(() => s0.beginStep(2, 2)).toThrow(/unfinished/);
    await expect(s0.gradNormSquared()).rejects.toThrow(/before all 2 micro-batches/);
    expect(() => s0.applyStep(LR, 1)).toThrow(/before all 2 micro-batches/);
    await expect(s1.forwardMicro(a.bytes.subarray(0, 40))).rejects.toThrow(ActivationError);
    await s1.forwardMicro(a.bytes);
    await expect(s1.backwardMicro(0, new Uint8Array(8))).rejects.toThrow(/takes no message/);
    const g = await s1.backwardMicro(0);
    await expect(s1.backwardMicro(0)).rejects.toThrow(/already backwarded/);
    // a gradient for the wrong micro-batch is rejected by its header
    const wrongMicro = encodeActivations({ ...decodeActivations(g!), micro: 1 });
    await expect(s0.backwardMicro(0, wrongMicro)).rejects.toThrow(/micro-batch 1, expected 0/);
    await s0.backwardMicro(0, g!);
    s0.abortStep();
    s1.abortStep();
    s0.beginStep(2, 1);
    expect((await s0.forwardMicro(data(2)(0))).kind).toBe('activations');
    for (const s of stages) s.destroy();
    expect(() => s0.beginStep(3, 1)).toThrow(/destroyed/);
  });
});
