// Issue 6's acceptance check, in process: the `tiny` model split into S = 2 stages
// ([0, 1) and [1, 2)) over a loopback link, 1F1B over M micro-batches, AdamW clipped by the
// global gradient norm. With f32 transfers each step's loss equals the single-process
// whole-model LayerSlice (LocalTrainer) on the same data within f32 rounding, and so do the
// parameter gradients of the first step; with f16 and int8 transfers the loss stays close.
// Prints the per-step loss of every mode and its difference from the whole model: the
// "measure the loss effect of each" figures.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { type ModelConfig, initParameters, parameterLayout, preset } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { activationMessageBytes, type ActivationMode } from '../../src/pipeline/activation-codec.ts';
import { loopbackPair } from '../support/pipeline/link.ts';
import { StageRunner, runPipelineStep } from '../support/pipeline/runner.ts';
import { type MicroBatchData, PipelineStage } from '../../src/pipeline/stage.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { expectClose, testGpu } from '../helpers/gpu.ts';
import { affineBatch } from './fixtures.ts';

const cfg: ModelConfig = preset('tiny');
const [B, T, M, STEPS, LR, SEED] = [2, 16, 4, 5, 3e-3, 1234];
const SPLIT = 1;

/** Micro-batch `micro` of step `step` (fixtures.ts). */
function batch(step: number, micro: number): { tokens: Int32Array; targets: Int32Array } {
  return affineBatch(cfg, B, T, 1000 * step + micro);
}

const data = (step: number) => (micro: number): MicroBatchData => ({ micro, ...batch(step, micro) });

interface Run {
  losses: number[];
  norms: number[];
  firstGrads: Map<string, Float32Array>;
  params: Map<string, Float32Array>;
  recomputes?: number;
  /** Bytes per micro-batch: activations forward, gradients back. */
  hop?: { activations: number; grads: number };
}

async function wholeModel(gpu: Gpu, init: Map<string, Float32Array>): Promise<Run> {
  const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
  slice.setParameters(init);
  const opt = new AdamW(gpu, slice.layout, slice.params, slice.grads);
  const trainer = new LocalTrainer(gpu, slice, opt, { batch: batch }, { peak: LR, warmup: 0, total: 1, minRatio: 1 }, M);
  const run: Run = { losses: [], norms: [], firstGrads: new Map(), params: new Map() };
  for (let step = 1; step <= STEPS; step++) {
    const r = await trainer.trainStep(step);
    expect(r.lr).toBe(LR);
    run.losses.push(r.loss);
    run.norms.push(r.gradNorm);
    if (step === 1) run.firstGrads = await slice.readGradients();
  }
  run.params = await slice.readParameters();
  trainer.destroy();
  opt.destroy();
  slice.destroy();
  return run;
}

async function pipelined(gpu: Gpu, init: Map<string, Float32Array>, mode: ActivationMode): Promise<Run> {
  const bounds = [0, SPLIT, cfg.layers];
  const stages = [0, 1].map((s) => {
    const stage = PipelineStage.create(gpu, cfg, { from: bounds[s], to: bounds[s + 1], batch: B, seqLen: T, mode });
    stage.slice.setParameters(new Map(stage.slice.layout.map((p) => [p.name, init.get(p.name)!])));
    return stage;
  });
  const [down, up] = loopbackPair();
  const runners = [
    new StageRunner(stages[0], { index: 0, stages: 2, downstream: down }),
    new StageRunner(stages[1], { index: 1, stages: 2, upstream: up }),
  ];
  const run: Run = { losses: [], norms: [], firstGrads: new Map(), params: new Map() };
  for (let step = 1; step <= STEPS; step++) {
    const r = await runPipelineStep(runners, { step, micros: M, lr: LR, data: data(step) });
    run.losses.push(r.loss);
    run.norms.push(r.gradNorm);
    if (step === 1) {
      for (const s of stages) for (const [n, g] of await s.slice.readGradients()) run.firstGrads.set(n, g);
    }
  }
  for (const s of stages) for (const [n, p] of await s.slice.readParameters()) run.params.set(n, p);
  for (const r of runners) expect(r.dropped).toEqual({});
  run.recomputes = stages[0].recomputes + stages[1].recomputes;
  expect(stages[1].recomputes).toBe(0); // the last stage's B(m) always follows its F(m)
  run.hop = { activations: down.sent.bytes / (STEPS * M), grads: up.sent.bytes / (STEPS * M) };
  down.close();
  for (const s of stages) s.destroy();
  return run;
}

describe('pipeline S = 2 (tiny) vs the whole model', () => {
  it(`${STEPS} AdamW steps of ${M} micro-batches: f32 transfers match within f32 rounding; f16 and int8 stay close`, async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), SEED);
    const t0 = performance.now();
    const ref = await wholeModel(gpu, init);
    const runs = new Map<ActivationMode, Run>();
    for (const mode of ['f32', 'f16', 'int8'] as const) runs.set(mode, await pipelined(gpu, init, mode));
    const ms = performance.now() - t0;

    console.log(`tiny, S=2 [0,${SPLIT}) [${SPLIT},${cfg.layers}), B=${B} T=${T}, M=${M} micro-batches, AdamW lr ${LR}, clip 1.0`);
    console.log(`step  whole-model   ${[...runs.keys()].map((m) => `${m.padEnd(5)} loss     Δ`.padEnd(26)).join('')}`);
    for (let i = 0; i < STEPS; i++) {
      const cells = [...runs.values()].map((r) => `${r.losses[i].toFixed(7)} ${(r.losses[i] - ref.losses[i]).toExponential(2).padStart(9)}`.padEnd(26));
      console.log(`${String(i + 1).padStart(4)}  ${ref.losses[i].toFixed(7)}     ${cells.join('')}   ‖g‖ ${ref.norms[i].toFixed(4)}`);
    }
    const summary: Record<string, { maxAbsDLoss: number; maxRelDNorm: number; hopBytes: number }> = {};
    for (const [mode, r] of runs) {
      const dl = Math.max(...r.losses.map((l, i) => Math.abs(l - ref.losses[i])));
      const dn = Math.max(...r.norms.map((n, i) => Math.abs(n - ref.norms[i]) / ref.norms[i]));
      summary[mode] = { maxAbsDLoss: dl, maxRelDNorm: dn, hopBytes: r.hop!.activations + r.hop!.grads };
      console.log(`${mode}: max |Δloss| over ${STEPS} steps ${dl.toExponential(3)}, max rel Δ‖g‖ ${dn.toExponential(3)}, bytes per micro-batch ${r.hop!.activations} forward + ${r.hop!.grads} back, ${r.recomputes} recomputed forwards`);
    }
    console.log(`${(ms / 1000).toFixed(1)} s for all four runs`);
    expect(runs.get('f32')!.hop).toEqual({ activations: activationMessageBytes('f32', B, T, cfg.dim, true), grads: activationMessageBytes('f32', B, T, cfg.dim, false) });

    // f32: the same computation; only the clip factor's rounding (f64 on the CPU from two
    // per-stage norms vs one f32 reduction on the GPU) and the norm's summation order differ
    const f32 = runs.get('f32')!;
    expect(Math.abs(f32.losses[0] - ref.losses[0])).toBeLessThan(1e-6); // before any update: the same forward
    expect(summary.f32.maxAbsDLoss).toBeLessThan(1e-5);
    expect(summary.f32.maxRelDNorm).toBeLessThan(1e-4);
    for (const [name, g] of ref.firstGrads) expectClose(`step-1 gradient ${name} (pipeline f32 vs whole)`, f32.firstGrads.get(name)!, g, 1e-5);
    for (const [name, p] of ref.params) expectClose(`params after ${STEPS} steps ${name} (f32)`, f32.params.get(name)!, p, 1e-5);
    expect(f32.recomputes).toBe(STEPS * M); // stage 0 recomputes each micro-batch (1F1B interleaves its F and B)
    // reduced precision: close, and the loss still falls
    expect(summary.f16.maxAbsDLoss).toBeLessThan(5e-3);
    expect(summary.int8.maxAbsDLoss).toBeLessThan(5e-2);
    for (const r of runs.values()) expect(r.losses[STEPS - 1]).toBeLessThan(r.losses[0]);
    expect(summary.f16.hopBytes).toBeLessThan(summary.f32.hopBytes);
    expect(summary.int8.hopBytes).toBeLessThan(summary.f16.hopBytes);
  });
});
