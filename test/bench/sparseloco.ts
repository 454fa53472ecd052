// `npm run bench -- sparseloco`: what one SparseLoCo round costs a contributor, for the
// tensors of the `small` and `base` models: bytes sent vs dense f32, and the time of the codec
// work (error feedback + top-k, encode, e -= sent; then decode + aggregate + apply for R
// peers) beside the inner loop's compute time on the same adapter, with top-k timed on both
// the GPU and the CPU (results/sparseloco.json); then the convergence comparison of
// test/sparseloco/convergence.test.ts run for longer (results/sparseloco-convergence.json).
// `--part codec|convergence` runs one half; `--rounds N` sets the convergence length (30).
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import { parameterCount, parameterLayout, preset, type ParamSpec, type PresetName } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { aggregate } from '../../src/sparseloco/aggregate.ts';
import { chunkExtent } from '../../src/kernels/chunks.ts';
import { ErrorFeedback, applySparse } from '../../src/sparseloco/feedback.ts';
import type { TensorSelection } from '../../src/sparseloco/selection.ts';
import { decodeOwn, decodeUpdate, denseBytes, encodeUpdate } from '../../src/sparseloco/wire.ts';
import { configHash } from '../../src/model/identity.ts';
import { AdamW, DEFAULT_ADAMW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { DILOCO, ONE_REPLICA, SPARSELOCO, runConvergence, type ConvergenceSetup, type MethodSpec } from '../sparseloco/convergence-run.ts';
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

/** select() through the other top-k path; checks it picks the same entries. */
async function timeOtherSelect(gpu: Gpu, layout: ParamSpec[], start: Map<string, Tensor>, now: Map<string, Tensor>, topk: 'gpu' | 'cpu', expected: TensorSelection[]): Promise<number> {
  const ef = new ErrorFeedback(gpu, layout, { k: 64, topk });
  try {
    await gpu.sync();
    const t = performance.now();
    ef.accumulate(start, now);
    const picked = await ef.select();
    const ms = performance.now() - t;
    picked.forEach((sel, i) => {
      const want = expected[i];
      if (sel.local.length !== want.local.length || sel.local.some((v, j) => v !== want.local[j]) || sel.values.some((v, j) => v !== want.values[j])) {
        throw new Error(`top-k on ${topk} picked other entries than ${ef.topkOn === 'gpu' ? 'cpu' : 'gpu'} for ${sel.name}`);
      }
    });
    return ms;
  } finally {
    ef.destroy();
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
    // The other top-k path on the same e, for the numbers behind topk: 'auto' (the same bits).
    const other = ef.topkOn === 'gpu' ? 'cpu' : 'gpu';
    const otherMs = other === 'cpu' || !gpu.info.isSoftware || name === 'small' ? await timeOtherSelect(gpu, layout, start, now, other, selection) : null;
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
      'top-k on': ef.topkOn,
      'select ms': selectMs,
      [`select ms, top-k on ${other}`]: otherMs,
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

/** The long form of the convergence test (test/sparseloco/convergence.test.ts): more rounds. */
const CONVERGENCE: Omit<ConvergenceSetup, 'rounds'> = { replicas: 4, innerSteps: 4, batch: 2, seqLen: 32, lr: 1e-2, warmup: 2, seed: 1, evalCount: 8, evalEvery: 5 };
const CONVERGENCE_METHODS: MethodSpec[] = [
  SPARSELOCO,
  DILOCO,
  // Nesterov at DiLoCo's published settings overshoots at small H; plain averaging is the
  // strongest dense baseline here, so the gap to it is reported too.
  { label: 'DiLoCo (plain average: lr 1, no momentum)', method: 'diloco', diloco: { lr: 1, momentum: 0 } },
  ONE_REPLICA,
];

async function convergenceRows(gpu: Gpu, rounds: number): Promise<BenchRow[]> {
  const setup = { ...CONVERGENCE, rounds };
  console.log(`\nconvergence: tiny, ${setup.replicas} replicas × ${setup.innerSteps} inner steps × ${rounds} rounds, B×T ${setup.batch}×${setup.seqLen}, inner lr ${setup.lr}`);
  const results = await runConvergence(gpu, setup, CONVERGENCE_METHODS, process.cwd(), (l) => console.log(l));
  const sparse = results.find((r) => r.method === 'sparseloco')!.final;
  const published = results.find((r) => r.label === DILOCO.label)!.final;
  const bestDense = Math.min(...results.filter((r) => r.method === 'diloco').map((r) => r.final));
  return results.map((r) => ({
    method: r.label,
    'final held-out loss': r.final,
    'vs DiLoCo 0.7/0.9': `${(100 * (r.final / published - 1)).toFixed(1)}%`,
    'vs best dense': `${(100 * (r.final / bestDense - 1)).toFixed(1)}%`,
    'SparseLoCo gap': r.method === 'sparseloco' ? null : `${(100 * (sparse / r.final - 1)).toFixed(1)}%`,
    'bytes/replica/round': r.bytesPerReplica,
    curve: r.curve.filter((x): x is number => x !== null).map((x) => x.toFixed(3)).join(' '),
    seconds: r.seconds,
  }));
}

export async function runSparselocoBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { models: { type: 'string' }, peers: { type: 'string' }, software: { type: 'boolean' }, rounds: { type: 'string' }, part: { type: 'string' } },
  });
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  try {
    const software = gpu.info.isSoftware;
    const part = values.part ?? 'all';
    if (!['all', 'codec', 'convergence'].includes(part)) throw new Error(`--part must be all, codec or convergence, got '${part}'`);
    const stamp = { date: new Date().toISOString(), adapter: adapterName(gpu.info), software };
    console.log(`adapter: ${stamp.adapter}`);
    if (software) console.log('software adapter: these are CPU numbers, not GPU numbers.');
    if (part !== 'convergence') {
      const models = (values.models?.split(',') ?? ['small', 'base']) as PresetName[];
      const peers = Number(values.peers ?? 4);
      const rows: BenchRow[] = [];
      for (const name of models) {
        // The inner step at the training benchmark's shape (a CPU cannot run base's in reasonable time).
        const shape = software ? (name === 'small' ? { B: 1, T: 64 } : null) : name === 'base' ? { B: 8, T: 512 } : { B: 8, T: 256 };
        rows.push(await benchModel(gpu, name, peers, shape));
        printTable(`SparseLoCo round (${name})`, [rows[rows.length - 1]]);
      }
      printTable('SparseLoCo codec per round (one contributor)', rows);
      console.log(`wrote ${writeResults('sparseloco', { ...stamp, peers, innerSteps: H, rows })}`);
    }
    if (part !== 'codec') {
      const rounds = Number(values.rounds ?? 30);
      const rows = await convergenceRows(gpu, rounds);
      printTable('convergence: final held-out loss (nats/token), tiny on the shipped corpus', rows);
      console.log(`wrote ${writeResults('sparseloco-convergence', { ...stamp, setup: { ...CONVERGENCE, rounds }, rows })}`);
    }
    return 0;
  } finally {
    gpu.destroy();
  }
}
