// `npm run bench -- sparseloco`: what one SparseLoCo round costs a contributor, for the
// tensors of the `small` and `base` models: bytes sent vs dense f32, and the time of the codec
// work (error feedback + top-k, encode, e -= sent; then decode + aggregate + apply for R
// peers) beside the inner loop's compute time on the same adapter.
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { parameterCount, parameterLayout, preset, type PresetName } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { aggregate } from '../../src/sparseloco/aggregate.ts';
import { chunkExtent } from '../../src/sparseloco/chunks.ts';
import { ErrorFeedback, applySparse } from '../../src/sparseloco/feedback.ts';
import type { TensorSelection } from '../../src/sparseloco/selection.ts';
import { configHash, decodeOwn, decodeUpdate, denseBytes, encodeUpdate } from '../../src/sparseloco/wire.ts';
import { AdamW, DEFAULT_ADAMW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';
import { syntheticBatch } from './tfjs-model.ts';

const H = 30; // Templar's inner steps per round

/** Another peer's selection: same shapes, its own kept positions (random, ascending) and values. */
function peerSelection(sel: TensorSelection, seed: number): TensorSelection {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const local = new Uint16Array(sel.local.length);
  const values = new Float32Array(sel.values.length);
  let at = 0;
  for (let c = 0; c < sel.grid.count; c++) {
    const e = chunkExtent(sel.grid, c);
    const size = e.rows * e.cols;
    const kept = Math.min(sel.k, size);
    const picked = new Set<number>();
    while (picked.size < kept) picked.add(Math.floor(rand() * size));
    for (const p of [...picked].sort((a, b) => a - b)) {
      local[at] = Math.floor(p / e.cols) * sel.grid.blockCols + (p % e.cols);
      values[at] = sel.values[at] * (0.5 + rand());
      at++;
    }
  }
  return { ...sel, local, values };
}

async function innerStepMs(gpu: Gpu, name: PresetName, B: number, T: number): Promise<number> {
  const cfg = preset(name);
  const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
  slice.initialize(1);
  const opt = new AdamW(gpu, slice.layout, slice.params, slice.grads, DEFAULT_ADAMW);
  const batch = syntheticBatch(cfg.vocabSize, B, T);
  const trainer = new LocalTrainer(gpu, slice, opt, { batch: () => batch }, { peak: 1e-3, warmup: 1, total: 100, minRatio: 0.1 });
  try {
    await trainer.trainStep();
    const t0 = performance.now();
    for (let i = 0; i < 2; i++) await trainer.trainStep();
    return (performance.now() - t0) / 2;
  } finally {
    trainer.destroy();
    opt.destroy();
    slice.destroy();
  }
}

async function benchModel(gpu: Gpu, name: PresetName, peers: number, stepShape: { B: number; T: number } | null): Promise<BenchRow> {
  const cfg = preset(name);
  const layout = parameterLayout(cfg);
  const start = new Map<string, Tensor>();
  const now = new Map<string, Tensor>();
  for (const [i, s] of layout.entries()) {
    // Synthetic weights and a drift of varied magnitude, as after H inner steps.
    const base = new Float32Array(s.size);
    const drift = new Float32Array(s.size);
    let x = (i + 1) * 2654435761;
    for (let j = 0; j < s.size; j++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      base[j] = (x / 2 ** 32 - 0.5) * 0.04;
      drift[j] = base[j] + ((x >>> 7) / 2 ** 25 - 0.5) * 1e-3 * (1 + (x & 7));
    }
    start.set(s.name, gpu.tensor(s.shape, 'f32', `θs/${s.name}`, base));
    now.set(s.name, gpu.tensor(s.shape, 'f32', `θn/${s.name}`, drift));
  }
  const ef = new ErrorFeedback(gpu, layout, { k: 64 });
  const hash = configHash(cfg);
  const expect = layout.map((s) => ({ name: s.name, shape: s.shape }));
  try {
    await gpu.sync();
    let t = performance.now();
    ef.accumulate(start, now);
    const selection = await ef.select();
    const selectMs = performance.now() - t;
    t = performance.now();
    const message = encodeUpdate({ configHash: hash, round: 1, k: 64, tensors: selection });
    const encodeMs = performance.now() - t;
    t = performance.now();
    ef.subtract(decodeOwn(selection));
    await gpu.sync();
    const feedbackMs = performance.now() - t;
    const messages = [message];
    for (let p = 1; p < peers; p++) messages.push(encodeUpdate({ configHash: hash, round: 1, k: 64, tensors: selection.map((sel, i) => peerSelection(sel, p * 7919 + i)) }));
    t = performance.now();
    const decoded = messages.map((m) => decodeUpdate(m, { configHash: hash, round: 1, layout: expect }).tensors);
    const mean = aggregate(decoded, expect);
    applySparse(gpu, start, mean, -1);
    await gpu.sync();
    const applyMs = performance.now() - t;
    const params = parameterCount(cfg);
    const codecMs = selectMs + encodeMs + feedbackMs + applyMs;
    const stepMs = stepShape ? await innerStepMs(gpu, name, stepShape.B, stepShape.T) : null;
    const dense = denseBytes(expect);
    return {
      model: name,
      params: `${(params / 1e6).toFixed(1)}M`,
      'kept values': selection.reduce((n, s) => n + s.values.length, 0),
      'bytes sent': message.length,
      'dense f32 bytes': dense,
      'ratio': dense / message.length,
      'bits/kept': (8 * message.length) / selection.reduce((n, s) => n + s.values.length, 0),
      'select ms': selectMs,
      'encode ms': encodeMs,
      'e-=sent ms': feedbackMs,
      [`decode+agg+apply ms (R=${peers})`]: applyMs,
      'encode Mparam/s': params / 1e3 / (selectMs + encodeMs + feedbackMs),
      'decode+agg Mparam/s': params / 1e3 / applyMs,
      'inner loop ms (H=30)': stepMs === null ? null : stepMs * H,
      'codec % of inner': stepMs === null ? null : (100 * codecMs) / (stepMs * H),
      'step shape': stepShape ? `${stepShape.B}×${stepShape.T}` : '–',
    };
  } finally {
    ef.destroy();
    for (const t of [...start.values(), ...now.values()]) t.release();
    gpu.pool.trim();
  }
}

export async function runSparselocoBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { models: { type: 'string' }, peers: { type: 'string' }, software: { type: 'boolean' } } });
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  try {
    const software = gpu.info.isSoftware;
    const models = (values.models?.split(',') ?? ['small', 'base']) as PresetName[];
    const peers = Number(values.peers ?? 4);
    console.log(`adapter: ${adapterName(gpu.info)}`);
    if (software) console.log('software adapter: these are CPU numbers, not GPU numbers.');
    const rows: BenchRow[] = [];
    for (const name of models) {
      // The inner step at the training benchmark's shape (a CPU cannot run base's in reasonable time).
      const shape = software ? (name === 'small' ? { B: 1, T: 64 } : null) : name === 'base' ? { B: 8, T: 512 } : { B: 8, T: 256 };
      rows.push(await benchModel(gpu, name, peers, shape));
      printTable(`SparseLoCo round (${name})`, [rows[rows.length - 1]]);
    }
    printTable('SparseLoCo codec per round (one contributor)', rows);
    const where = writeResults('sparseloco', { date: new Date().toISOString(), adapter: adapterName(gpu.info), software, peers, innerSteps: H, rows });
    console.log(`\nwrote ${where}`);
    return 0;
  } finally {
    gpu.destroy();
  }
}
