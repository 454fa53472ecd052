// `npm run bench -- static [--preset tiny,small,base,1b]`: one training step per preset,
// recorded on a device with a real GPU's limits that executes nothing (static/recording-device.ts),
// read against named GPU classes (static/gpu-classes.ts): per kernel class the dispatches,
// workgroups, waves, FLOPs, minimum bytes, arithmetic intensity and roofline bound; the host's
// work per step; and a shared-memory bank model of the matmul and attention inner loops.
// Meaningful without a GPU: it counts and models, it does not time.
import { parseArgs } from 'node:util';
import { attentionTiles } from '../../src/kernels/attention.ts';
import { fa2Tiles } from '../../src/kernels/attention-fa2.ts';
import { attentionModels, type AttentionKernelModel } from './static/attention-model.ts';
import { LARGE_TILE, SMALL_TILE } from '../../src/kernels/matmul.ts';
import { PRESETS, preset, type PresetName } from '../../src/model/config.ts';
import { CORE_TILES, WORKGROUP_TARGET } from '../../src/kernels/matmul-plan.ts';
import { attentionFa2BankModel, attentionForwardBankModel, matmulBankModel, matmulCoreBankModel, type LoopModel } from './static/bank-model.ts';
import { GPU_CLASSES, RECORDING_LIMITS } from './static/gpu-classes.ts';
import { dispatchCost, finestMatmulGrid, occupancy, rooflineSeconds, type DispatchCost } from './static/kernel-model.ts';
import { recordSteps, recordingGpu, STATIC_SHAPES, type RecordedRun } from './static/record-step.ts';
import type { HostWork } from './static/recording-device.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const GPU_SHORT: Record<string, string> = { 'RTX 3080': '3080', 'RTX 4090': '4090', 'M2 Pro': 'M2Pro', 'H100 SXM': 'H100' };

export interface KernelClassRow {
  kernel: string;
  dispatches: number;
  workgroups: number;
  flops: number;
  bytes: number;
  /** Per GPU class: the fewest workgroups per SM and waves among this class's dispatches, and the summed roofline bound (s). */
  perGpu: Record<string, { minPerSm: number; minWaves: number; boundSeconds: number }>;
}

export interface StaticPresetResult {
  preset: PresetName;
  B: number;
  T: number;
  hostFirstStep: HostWork;
  hostSteadyStep: HostWork;
  /** Every recorded step's host work, first to last. */
  hostPerStep: HostWork[];
  /** Matmul dispatches of the steady step with fewer than 2 workgroups per SM on a 128-SM GPU (the bar), of all matmul dispatches. */
  matmulsUnder2PerSm128: { under: number; of: number; underWhereShapeAllows: number };
  /** The matmul inner loop's modelled shared-memory passes per FMA, weighted by each dispatch's FLOPs. */
  matmulBankPassesPerFma: number;
  classes: KernelClassRow[];
  matmuls: (NonNullable<DispatchCost['matmul']> & { count: number; workgroups: number; perSm4090: number; flops: number })[];
  /** Per GPU class: the step's roofline bound (sum over dispatches), seconds. */
  stepBoundSeconds: Record<string, number>;
  deviceHostBytes: number;
  /** Attention's kernels, variant 1 and 2, at this preset's step shape (static/attention-model.ts). */
  attention: AttentionKernelModel[];
}

/** Reads the steady (last) step of a recorded run. */
export function analyse(run: RecordedRun): StaticPresetResult {
  const steady = run.steps[run.steps.length - 1];
  const costs = steady.submits.flatMap((s) => s.dispatches).map(dispatchCost);
  const classes = new Map<string, KernelClassRow>();
  const stepBoundSeconds: Record<string, number> = {};
  const matmuls = new Map<string, StaticPresetResult['matmuls'][number]>();
  for (const c of costs) {
    let row = classes.get(c.kernel);
    if (!row) {
      row = { kernel: c.kernel, dispatches: 0, workgroups: 0, flops: 0, bytes: 0, perGpu: {} };
      for (const g of GPU_CLASSES) row.perGpu[g.name] = { minPerSm: Infinity, minWaves: Infinity, boundSeconds: 0 };
      classes.set(c.kernel, row);
    }
    row.dispatches++;
    row.workgroups += c.workgroups;
    row.flops += c.flops;
    row.bytes += c.bytes;
    for (const g of GPU_CLASSES) {
      const o = occupancy(g, c);
      const p = row.perGpu[g.name];
      p.minPerSm = Math.min(p.minPerSm, o.perSm);
      p.minWaves = Math.min(p.minWaves, o.waves);
      const t = rooflineSeconds(g, c.flops, c.bytes);
      p.boundSeconds += t;
      stepBoundSeconds[g.name] = (stepBoundSeconds[g.name] ?? 0) + t;
    }
    if (c.matmul) {
      const m = c.matmul;
      const key = `${m.M}×${m.N}×${m.K} b${m.batch} ${m.transA ? 'Aᵀ' : 'A'}${m.transB ? 'Bᵀ' : 'B'} ${m.vec4} ${m.tile}`;
      const e = matmuls.get(key) ?? { ...m, count: 0, workgroups: c.workgroups, perSm4090: c.workgroups / 128, flops: 0 };
      e.count++;
      e.flops += c.flops;
      matmuls.set(key, e);
    }
  }
  const cfg = preset(run.preset);
  return {
    preset: run.preset, B: run.B, T: run.T,
    hostFirstStep: run.steps[0].host, hostSteadyStep: steady.host, hostPerStep: run.steps.map((s) => s.host),
    matmulsUnder2PerSm128: {
      under: costs.filter((c) => c.matmul && c.workgroups < 2 * 128).length,
      of: costs.filter((c) => c.matmul).length,
      // Under the bar although 32×32 tiles and the allowed K splits could reach it.
      underWhereShapeAllows: costs.filter((c) => {
        const m = c.matmul;
        return m && c.workgroups < 2 * 128 && finestMatmulGrid(m.M, m.N, m.K, m.batch) >= 2 * 128;
      }).length,
    },
    matmulBankPassesPerFma:
      costs.reduce((s, c) => s + (c.matmul ? c.matmul.bankPassesPerFma * c.flops : 0), 0) /
      Math.max(1, costs.reduce((s, c) => s + (c.matmul ? c.flops : 0), 0)),
    classes: [...classes.values()].sort((a, b) => b.flops - a.flops || b.bytes - a.bytes),
    matmuls: [...matmuls.values()].sort((a, b) => b.flops - a.flops),
    stepBoundSeconds, deviceHostBytes: run.deviceHostBytes,
    attention: attentionModels(run.gpu, { B: run.B, T: run.T, H: cfg.heads, Hkv: cfg.kvHeads, D: cfg.dim / cfg.heads }),
  };
}

/** The bank model for the tiles a training step uses (matmul: both tiles, every transpose; attention: head size D of each preset). */
export function bankModels(): Record<string, LoopModel> {
  const out: Record<string, LoopModel> = {};
  for (const [name, t] of [['64×64', LARGE_TILE], ['32×32', SMALL_TILE]] as const) {
    for (const [ta, tb] of [[false, true], [false, false], [true, false]] as const) {
      out[`matmul v1 ${name} ${ta ? 'Aᵀ' : 'A'}${tb ? 'Bᵀ' : 'B'}`] = matmulBankModel(t.wg, t.tk, ta, tb);
    }
  }
  for (const [name, t] of Object.entries(CORE_TILES)) {
    for (const [ta, tb] of [[false, true], [false, false], [true, false]] as const) {
      out[`matmul v2 ${name.replace('x', '×')} ${ta ? 'Aᵀ' : 'A'}${tb ? 'Bᵀ' : 'B'}`] = matmulCoreBankModel(t, ta, tb);
    }
  }
  const { gpu } = recordingGpu();
  for (const D of new Set(Object.values(PRESETS).map((p) => p.dim / p.heads))) {
    const t = attentionTiles(gpu, D).forward;
    out[`attention v1 fwd D=${D} ${t.BR}×${t.BC} TPR ${t.TPR}`] = attentionForwardBankModel(t.BR, t.BC, t.TPR, Math.ceil(D / 4));
    const f = fa2Tiles(gpu, { B: 1, T: 1024, H: 1, Hkv: 1, D }).forward;
    out[`attention v2 fwd D=${D} ${f.rows}×${f.tile}`] = attentionFa2BankModel(f.rows, f.tile, D / 4);
  }
  return out;
}

export function hostRow(label: string, h: HostWork): BenchRow {
  return {
    step: label, dispatches: h.dispatches, copies: h.copies, submits: h.submits, writeBuffers: h.writeBuffers,
    'staging bufs': h.stagingBuffersCreated, 'buffers made': h.buffersCreated, 'bind groups made': h.bindGroupsCreated,
    'layout lookups': h.bindGroupLayoutLookups, 'pipelines made': h.pipelinesCreated, mapAsyncs: h.mapAsyncs,
    'blocking readbacks': h.blockingReadbacks, 'blocking syncs': h.blockingSyncs,
  };
}

const fmtG = (flops: number) => (flops / 1e9);
const fmtMiB = (b: number) => b / (1 << 20);

export async function runStaticBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { preset: { type: 'string', default: 'tiny,small,base,1b' } } });
  const names = values.preset!.split(',').map((s) => s.trim()) as PresetName[];
  for (const n of names) preset(n); // unknown names fail here, naming the known ones
  console.log('GPU classes (assumptions):');
  for (const g of GPU_CLASSES) console.log(`  ${g.name}: ${g.assumption}`);
  const results: StaticPresetResult[] = [];
  for (const name of names) {
    const run = await recordSteps(name);
    const r = analyse(run);
    run.gpu.destroy();
    results.push(r);
    printTable(`${name} (B×T ${r.B}×${r.T}): host work per step`, [hostRow('first', r.hostFirstStep), hostRow('steady', r.hostSteadyStep)]);
    printTable(`${name}: kernel classes of the steady step (waves = workgroups / (SMs × resident); min over the class's dispatches)`, r.classes.map((c) => {
      const row: BenchRow = { kernel: c.kernel, disp: c.dispatches, workgroups: c.workgroups, GFLOP: fmtG(c.flops), MiB: fmtMiB(c.bytes), 'FLOP/B': c.flops ? c.flops / c.bytes : null };
      for (const g of GPU_CLASSES) row[`wg/SM ${GPU_SHORT[g.name]}`] = c.perGpu[g.name].minPerSm;
      for (const g of GPU_CLASSES) row[`waves ${GPU_SHORT[g.name]}`] = c.perGpu[g.name].minWaves;
      for (const g of GPU_CLASSES) row[`bound ms ${GPU_SHORT[g.name]}`] = c.perGpu[g.name].boundSeconds * 1e3;
      return row;
    }));
    printTable(`${name}: matmul shapes`, r.matmuls.map((m) => ({
      'M×N×K': `${m.M}×${m.N}×${m.K}`, batch: m.batch, op: `${m.transA ? 'Aᵀ' : 'A'}·${m.transB ? 'Bᵀ' : 'B'}`, vec4: m.vec4, tile: m.tile,
      count: m.count, workgroups: m.workgroups, 'wg/SM 4090': m.perSm4090, GFLOP: fmtG(m.flops),
    })));
    const bound: BenchRow = { preset: name };
    for (const g of GPU_CLASSES) bound[`${GPU_SHORT[g.name]} ms`] = r.stepBoundSeconds[g.name] * 1e3;
    printTable(`${name}: roofline bound of the whole step (sum over dispatches)`, [bound]);
    const u = r.matmulsUnder2PerSm128;
    console.log(
      `${name}: ${u.under} of ${u.of} matmul dispatches have under 2 workgroups per SM on a 128-SM GPU ` +
        `(${u.underWhereShapeAllows} of them where 32×32 tiles and K splits could reach it; plan target ${WORKGROUP_TARGET.discrete})`,
    );
    console.log(`${name}: matmul shared-memory passes per FMA (bank model), weighted by FLOPs: ${r.matmulBankPassesPerFma.toFixed(3)}`);
    printTable(`${name}: attention kernels, variant 1 vs 2 (registers estimated; resident and waves on a 128-SM RTX 4090 by threads, workgroup memory and registers)`, r.attention.map((a) => ({
      variant: a.variant, kernel: a.kernel, tile: a.tile, threads: a.threads, 'shared B': a.sharedBytes, 'barriers/tile': a.barriersPerTile,
      'barriers/1k rows': a.barriersPer1kRows, 'passes/FMA': a.passesPerFma, registers: a.registers, 'resident/SM': a.residentPerSm,
      workgroups: a.workgroups, 'waves 128 SMs': a.waves128, 'threads/SM 1st wave': a.threadsPerSm128,
    })));
  }
  const bank = bankModels();
  printTable('shared-memory bank model (per warp; passes per FMA a thread does; conflict = passes / conflict-free passes)', Object.entries(bank).map(([loop, m]) => ({
    loop, 'passes/FMA': m.passesPerFma, conflict: m.conflictDegree, ...m.detail,
  })));
  const where = writeResults('static', { gpuClasses: GPU_CLASSES, limits: RECORDING_LIMITS, shapes: STATIC_SHAPES, presets: results, bank });
  console.log(`\nwrote ${where}`);
  return 0;
}
