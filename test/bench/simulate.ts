// `npm run bench -- simulate [--peers 100,300,1000] [--model tiny] [--rounds 3] [--train-ms 3000] [--no-before]`:
// `tessera simulate` at each N, after (gather-K: K = 20, 8 neighbours) and before
// (all-to-all: K = N, neighbours = N − 1 up to the run config's 256), each in its own process
// (clean peak RSS and CPU). Fits the exponent of control bytes and the coordinator's handler
// time per round against N, and writes results/simulate.json and a plot (simulate.svg/.png).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SimulationReport } from '../../src/sim/report.ts';
import { MAX_NEIGHBOURS } from '../../src/protocol/run-config.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';
import { plotSvg, writePlot } from './simulate-plot.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RESULTS = join(ROOT, 'test', 'bench', 'results');

/** Least-squares slope of log y against log x: y ∝ x^slope. */
export function fitExponent(points: { n: number; value: number }[]): number | null {
  const p = points.filter((q) => q.value > 0);
  if (p.length < 2) return null;
  const xs = p.map((q) => Math.log(q.n));
  const ys = p.map((q) => Math.log(q.value));
  const mx = xs.reduce((a, b) => a + b) / xs.length;
  const my = ys.reduce((a, b) => a + b) / ys.length;
  const num = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0);
  const den = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  return num / den;
}

function simulate(args: string[]): SimulationReport | null {
  const json = join(mkdtempSync(join(tmpdir(), 'tessera-simbench-')), 'report.json');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'tessera.mjs'), 'simulate', ...args, '--json', json], { stdio: ['ignore', 'inherit', 'inherit'] });
  console.log(`  (${((performance.now() - t0) / 1000).toFixed(0)} s, exit ${r.status})`);
  try {
    return JSON.parse(readFileSync(json, 'utf8')) as SimulationReport;
  } catch {
    return null;
  }
}

export async function runSimulateBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { peers: { type: 'string', default: '100,300,1000' }, model: { type: 'string', default: 'tiny' }, rounds: { type: 'string', default: '3' }, 'train-ms': { type: 'string', default: '3000' }, 'no-before': { type: 'boolean' }, 'before-up-to': { type: 'string', default: '300' } } });
  const ns = values.peers!.split(',').map(Number);
  const common = ['--model', values.model!, '--rounds', values.rounds!, '--train-ms', values['train-ms']!];
  const runs: { mode: 'after' | 'before'; n: number; report: SimulationReport | null }[] = [];
  for (const n of ns) {
    console.log(`after: N = ${n}`);
    runs.push({ mode: 'after', n, report: simulate(['--peers', String(n), ...common]) });
    if (values['no-before'] || n > Number(values['before-up-to'])) continue;
    console.log(`before (all-to-all): N = ${n}`);
    runs.push({ mode: 'before', n, report: simulate(['--peers', String(n), '--gather-k', String(n), '--neighbours', String(Math.min(n - 1, MAX_NEIGHBOURS)), ...common]) });
  }
  const rows: BenchRow[] = runs.map(({ mode, n, report }) => {
    const s = report?.summary;
    return {
      mode, N: n, closed: s ? `${s.roundsClosed}/${values.rounds}` : 'failed', 'fp equal': s ? String(s.fingerprintsEqual) : null,
      'up/peer kB': s ? s.meanUpPerPeer / 1e3 : null, 'down/peer kB': s ? s.meanDownPerPeer / 1e3 : null, 'up max/med': s?.upMaxOverMedian ?? null, held: s?.heldMax ?? null,
      'control kB': s ? s.meanControlBytes / 1e3 : null, 'coord ms': s?.meanCoordinatorMs ?? null, 'cpu ms': s?.meanProcessCpuMs ?? null, 'rss MB': s?.peakRssMB ?? null, lag: s?.maxValidatorLag ?? null,
    };
  });
  printTable(`simulate, model ${values.model}, ${values.rounds} rounds (per round, after round 0)`, rows);
  const series = (mode: 'after' | 'before', f: (r: SimulationReport) => number) => runs.filter((r) => r.mode === mode && r.report).map((r) => ({ n: r.n, value: f(r.report!) }));
  const fits = Object.fromEntries((['after', 'before'] as const).flatMap((mode) => [
    [`${mode}.controlBytes`, fitExponent(series(mode, (r) => r.summary.meanControlBytes))],
    [`${mode}.coordinatorMs`, fitExponent(series(mode, (r) => r.summary.meanCoordinatorMs))],
    [`${mode}.processCpuMs`, fitExponent(series(mode, (r) => r.summary.meanProcessCpuMs))],
    [`${mode}.downPerPeer`, fitExponent(series(mode, (r) => r.summary.meanDownPerPeer))],
    [`${mode}.upPerPeer`, fitExponent(series(mode, (r) => r.summary.meanUpPerPeer))],
  ]));
  console.log(`\nexponents (value ∝ N^e): ${Object.entries(fits).map(([k, v]) => `${k} ${v === null ? '–' : v.toFixed(2)}`).join(', ')}`);
  const svg = plotSvg([
    { title: 'update bytes per peer per round', unit: 'B', series: [
      { label: 'after: down (K fetched)', colour: '#1f77b4', points: series('after', (r) => r.summary.meanDownPerPeer) },
      { label: 'after: up', colour: '#2ca02c', points: series('after', (r) => r.summary.meanUpPerPeer) },
      { label: 'before (all-to-all): down', colour: '#d62728', dashed: true, points: series('before', (r) => r.summary.meanDownPerPeer) },
    ] },
    { title: "coordinator's control bytes per round", unit: 'B', series: [
      { label: 'after', colour: '#1f77b4', points: series('after', (r) => r.summary.meanControlBytes) },
      { label: 'before (all-to-all)', colour: '#d62728', dashed: true, points: series('before', (r) => r.summary.meanControlBytes) },
    ] },
  ]);
  try {
    await writePlot(svg, join(RESULTS, 'simulate.svg'), join(RESULTS, 'simulate.png'));
    console.log(`plot: ${join(RESULTS, 'simulate.png')}`);
  } catch (e) {
    console.log(`plot not rendered (${(e as Error).message.split('\n')[0]}); the SVG is in ${join(RESULTS, 'simulate.svg')}`);
  }
  console.log(`results: ${writeResults('simulate', { model: values.model, rounds: Number(values.rounds), rows, fits, runs: runs.map((r) => ({ mode: r.mode, n: r.n, summary: r.report?.summary ?? null, rows: r.report?.rows ?? null, updateBytes: r.report?.updateBytes, keyDerivationMs: r.report?.keyDerivationMs })) })}`);
  return runs.every((r) => r.report?.summary.fingerprintsEqual) ? 0 : 1;
}
