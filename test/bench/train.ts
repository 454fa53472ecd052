// `npm run bench -- train`: our training step (forward, backward, clip + AdamW; one submit)
// against the same model's training step in tfjs-backend-webgpu on the same device, in the
// same process. Tokens/s, the step split into forward / backward / optimiser, and memory; where
// the adapter has timestamp-query, GPU time per kernel class over a few more steps (KernelTimer:
// a pass per dispatch, so those steps are not the ones timed for tokens/s).
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { KernelTimer, type KernelClassTime } from '../../src/gpu/kernel-timer.ts';
import { parameterCount, preset, PRESETS, type PresetName } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { AdamW, DEFAULT_ADAMW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';
import { benchTfjsTrainStep, syntheticBatch } from './tfjs-model.ts';
import { releaseTfjs } from './tfjs-webgpu.ts';

/** Batch shapes per model: small enough for SwiftShader (a CPU) to finish, real sizes on a GPU. */
const SHAPES: Record<'software' | 'gpu', Partial<Record<PresetName, { B: number; T: number }>>> = {
  software: { tiny: { B: 4, T: 64 }, small: { B: 1, T: 64 } },
  gpu: { tiny: { B: 8, T: 64 }, small: { B: 8, T: 256 }, base: { B: 8, T: 512 } },
};

const MiB = 1 << 20;

async function benchOurs(gpu: Gpu, name: PresetName, B: number, T: number, steps: number, kernels: BenchRow[]): Promise<BenchRow> {
  const cfg = preset(name);
  const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
  slice.initialize(1);
  const optimizer = new AdamW(gpu, slice.layout, slice.params, slice.grads, DEFAULT_ADAMW);
  const batch = syntheticBatch(cfg.vocabSize, B, T);
  const trainer = new LocalTrainer(gpu, slice, optimizer, { batch: () => batch }, { peak: 1e-3, warmup: 1, total: 1000, minRatio: 0.1 });
  try {
    await trainer.trainStep(); // compiles every pipeline
    // Whole steps, as training runs them: one submit and one small read-back each.
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainer.trainStep();
    const stepMs = (performance.now() - t0) / steps;
    // The split: each phase on its own submit, waited for (slightly slower than one submit).
    const phase = { fwd: 0, bwd: 0, opt: 0 };
    for (let i = 0; i < steps; i++) {
      let t = performance.now();
      slice.forward(batch);
      await gpu.sync();
      phase.fwd += performance.now() - t;
      t = performance.now();
      slice.backward();
      await gpu.sync();
      phase.bwd += performance.now() - t;
      t = performance.now();
      optimizer.update(1e-3);
      await gpu.sync();
      phase.opt += performance.now() - t;
    }
    for (const k of await kernelTimes(gpu, () => trainer.trainStep(), steps)) {
      kernels.push({ model: name, kernel: k.kernel, 'dispatches/step': k.dispatches / steps, 'GPU ms/step': k.ms / steps });
    }
    const model = slice.memory().total + optimizer.bytes;
    return {
      model: name,
      params: `${(parameterCount(cfg) / 1e6).toFixed(2)}M`,
      'B×T': `${B}×${T}`,
      'fwd ms': phase.fwd / steps,
      'bwd ms': phase.bwd / steps,
      'opt ms': phase.opt / steps,
      'step ms': stepMs,
      'tok/s': (B * T * 1000) / stepMs,
      'GPU MiB': model / MiB,
      'pool peak MiB': gpu.pool.stats().peakBytes / MiB,
    };
  } finally {
    trainer.destroy();
    optimizer.destroy();
    slice.destroy();
    gpu.pool.trim();
  }
}

/** GPU time per kernel class over `steps` more steps (none without timestamp-query). */
async function kernelTimes(gpu: Gpu, step: () => Promise<unknown>, steps: number): Promise<KernelClassTime[]> {
  const timer = new KernelTimer(gpu);
  if (!timer.available) return [];
  gpu.timer = timer;
  try {
    for (let i = 0; i < steps; i++) await step();
    return await timer.collect();
  } finally {
    gpu.timer = null;
    timer.destroy();
  }
}

export async function runTrainBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { models: { type: 'string' }, steps: { type: 'string' }, software: { type: 'boolean' }, 'no-tfjs': { type: 'boolean' } },
  });
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  try {
    const kind = gpu.info.isSoftware ? 'software' : 'gpu';
    const models = (values.models?.split(',') ?? Object.keys(SHAPES[kind])) as PresetName[];
    for (const m of models) if (!(m in PRESETS)) throw new Error(`unknown model '${m}': ${Object.keys(PRESETS).join(', ')}`);
    const steps = Number(values.steps ?? (kind === 'software' ? 3 : 20));
    console.log(`adapter: ${adapterName(gpu.info)}`);
    if (kind === 'software') console.log('software adapter: these are CPU numbers, not GPU numbers.');
    const rows: BenchRow[] = [];
    const kernels: BenchRow[] = [];
    for (const name of models) {
      const { B, T } = SHAPES[kind][name] ?? SHAPES.gpu[name] ?? { B: 4, T: 256 };
      const ours = await benchOurs(gpu, name, B, T, steps, kernels);
      let peer: BenchRow = { 'tfjs step ms': null, 'tfjs tok/s': null, ratio: null };
      if (!values['no-tfjs']) {
        const tfjs = await benchTfjsTrainStep(gpu, preset(name), { B, T, steps, warmup: 1 });
        releaseTfjs();
        peer = { 'tfjs step ms': tfjs.stepMs, 'tfjs tok/s': tfjs.tokensPerSec, ratio: (ours['tok/s'] as number) / tfjs.tokensPerSec };
      }
      rows.push({ ...ours, ...peer });
      printTable(`training step (${name})`, [rows[rows.length - 1]]);
    }
    printTable('training step: ours vs tfjs-backend-webgpu (same device, same process)', rows);
    if (kernels.length) printTable('GPU time per kernel class and step (timestamp-query, a pass per dispatch)', kernels);
    else console.log('no timestamp-query on this adapter: no GPU time per kernel class');
    const where = writeResults('train', { date: new Date().toISOString(), adapter: adapterName(gpu.info), software: kind === 'software', steps, rows, kernels });
    console.log(`\nwrote ${where}`);
    return 0;
  } finally {
    gpu.destroy();
  }
}
