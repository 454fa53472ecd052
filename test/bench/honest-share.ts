// `npm run bench -- honest-share [--runs 5] [--peers 3] [--rounds 6] [--label NAME] [--repo DIR] [-- SWARM FLAGS]`:
// how evenly the validator pays an all-honest swarm. Runs `tessera swarm --peers P --rounds R
// --json` (real processes, validator on) N times, one after another, and prints each run's
// final shares (the last standing each peer was told), the smallest and the mean, and
// min / mean — the issue's bar is that no honest peer ends below half the mean share
// (min / mean ≥ 0.5) in any run. Writes results/honest-share.json (--label names the variant,
// e.g. the scoring before and after a change; --repo runs another checkout's CLI; flags after
// `--` go to the swarm, e.g. `-- --round-seconds 1800` on a machine so loaded that rounds
// would close before anyone delivers). The file is rewritten after every run, so an
// interrupted series keeps the runs it finished.
//
// --model: no swarm; the gate alone, played over many simulated runs with the scoring code
// (scoring.ts) beside the formula it replaced: every peer's update has the same gradient
// score and wins its assigned-data check with probability p each round. Prints how often
// some honest peer ends under half the mean share, and the mean factor of a peer trained on
// other data (p = 0.5). Seconds, no GPU: a check of the gate, not of the swarm's noise.
//
// Each run is a few minutes on a quiet 2-core machine with SwiftShader (the default 5 runs:
// 15–30 minutes); far longer when the cores are shared.
import { spawn } from 'node:child_process';
import { scoreRound } from '../../src/coordinator/scoring.ts';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { printTable, writeResults, type BenchRow } from './table.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The bar: the smallest honest share over the mean share. */
const FAIR_MIN_OVER_MEAN = 0.5;

interface SwarmPeerDetail {
  name: string;
  roundsCompleted: number;
  share?: number;
  reward?: number;
}

interface RunResult {
  run: number;
  seconds: number;
  exitCode: number | null;
  shares: (number | null)[];
  rewards: (number | null)[];
  roundsCompleted: number[];
  min: number | null;
  mean: number | null;
  minOverMean: number | null;
  error?: string;
}

function swarm(repo: string, peers: number, rounds: number, extra: string[]): Promise<{ code: number | null; summary: { peersDetail: SwarmPeerDetail[] } | null; stderr: string; seconds: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(repo, 'bin', 'tessera.mjs'), 'swarm', '--peers', String(peers), '--rounds', String(rounds), '--json', ...extra], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((done) => {
    child.on('exit', (code) => {
      const line = out.split('\n').reverse().find((l) => l.startsWith('{') && l.includes('"event":"summary"'));
      done({ code, summary: line ? (JSON.parse(line) as { peersDetail: SwarmPeerDetail[] }) : null, stderr: err, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/** A seeded uniform [0, 1) generator (mulberry32), so the model's figures repeat. */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Final shares of `peers` peers after `rounds` rounds whose checks each win with probability p. */
function modelRun(gate: 'before' | 'after', peers: number, rounds: number, p: number, random: () => number): number[] {
  const members = Array.from({ length: peers }, (_, i) => `peer-${i}`);
  const prev = new Map<string, { ema: number; assignedEma: number }>();
  let shares: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const trials = new Map(members.map((m) => [m, { gradient: 0.05, assigned: random() < p ? 0.02 : 0.005, control: 0.01 }]));
    if (gate === 'after') {
      const rows = scoreRound({ members, delivered: new Set(members), trials, copied: new Set(), invalid: {}, synced: () => true, previous: (a) => prev.get(a) ?? null, emission: 1 });
      for (const row of rows) prev.set(row.address, { ema: row.ema, assignedEma: row.assignedEma });
      shares = rows.map((row) => row.share);
    } else {
      // The formula before the change: a ±1 average from 0 (keep 0.8), score = gradient × max(0, average).
      for (const m of members) {
        const t = trials.get(m)!;
        const was = prev.get(m) ?? { ema: 0, assignedEma: 0 };
        const assignedEma = 0.8 * was.assignedEma + 0.2 * (t.assigned > t.control ? 1 : -1);
        prev.set(m, { ema: 0.9 * was.ema + 0.1 * t.gradient * Math.max(0, assignedEma), assignedEma });
      }
      const total = members.reduce((sum, m) => sum + prev.get(m)!.ema, 0);
      shares = members.map((m) => (total > 0 ? prev.get(m)!.ema / total : 0));
    }
  }
  return shares;
}

function runModel(peers: number): number {
  const RUNS = 2000;
  const rows: BenchRow[] = [];
  for (const rounds of [6, 30]) {
    for (const p of [0.6, 0.7, 0.8]) {
      const row: BenchRow = { rounds, 'p (win)': p };
      for (const gate of ['before', 'after'] as const) {
        const random = uniform(1234 + rounds * 10 + p * 100);
        let unfair = 0;
        for (let i = 0; i < RUNS; i++) {
          const shares = modelRun(gate, peers, rounds, p, random);
          const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
          if (!(mean > 0) || Math.min(...shares) < FAIR_MIN_OVER_MEAN * mean) unfair++;
        }
        row[`${gate}: runs with a peer < ½ mean`] = `${((100 * unfair) / RUNS).toFixed(1)}%`;
      }
      rows.push(row);
    }
  }
  printTable(`honest-share --model: ${peers} honest peers, equal gradient scores, ${RUNS} simulated runs each`, rows);
  writeResults('honest-share-model', { peers, runs: RUNS, rows, when: new Date().toISOString() });
  return 0;
}

export async function runHonestShareBench(argv: string[]): Promise<number> {
  const dashes = argv.indexOf('--');
  const swarmFlags = dashes >= 0 ? argv.slice(dashes + 1) : [];
  const { values } = parseArgs({
    args: dashes >= 0 ? argv.slice(0, dashes) : argv,
    options: {
      runs: { type: 'string', default: '5' },
      peers: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '6' },
      label: { type: 'string', default: 'current' },
      repo: { type: 'string' },
      model: { type: 'boolean' },
    },
  });
  const runs = Number(values.runs);
  const peers = Number(values.peers);
  const rounds = Number(values.rounds);
  for (const [flag, v] of [['--runs', runs], ['--peers', peers], ['--rounds', rounds]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${flag} must be a positive integer, got ${v}`);
  }
  if (values.model) return runModel(peers);
  const repo = values.repo ? resolve(values.repo) : ROOT;
  const command = `tessera swarm --peers ${peers} --rounds ${rounds} --json${swarmFlags.length ? ` ${swarmFlags.join(' ')}` : ''}`;
  console.log(`honest-share (${values.label}): ${runs} × ${command} in ${repo}`);
  const results: RunResult[] = [];
  const save = (): string => {
    const ratios = results.map((r) => r.minOverMean).filter((x): x is number => x !== null);
    const worst = ratios.length ? Math.min(...ratios) : null;
    const fair = worst !== null && results.every((r) => !r.error) && worst >= FAIR_MIN_OVER_MEAN;
    return writeResults('honest-share', { label: values.label, command, runsPlanned: runs, runs: results, worstMinOverMean: worst, fair, when: new Date().toISOString() });
  };
  for (let i = 0; i < runs; i++) {
    const r = await swarm(repo, peers, rounds, swarmFlags);
    const detail = r.summary?.peersDetail ?? [];
    const shares = detail.map((p) => p.share ?? null);
    const known = shares.filter((s): s is number => s !== null);
    const complete = r.summary !== null && known.length === peers;
    const min = complete ? Math.min(...known) : null;
    const mean = complete ? known.reduce((a, b) => a + b, 0) / known.length : null;
    const result: RunResult = {
      run: i + 1,
      seconds: r.seconds,
      exitCode: r.code,
      shares,
      rewards: detail.map((p) => p.reward ?? null),
      roundsCompleted: detail.map((p) => p.roundsCompleted),
      min,
      mean,
      minOverMean: min !== null && mean ? min / mean : null,
      ...(complete ? {} : { error: r.summary ? `${peers - known.length} peer(s) without a share` : `no summary (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' / ')}` }),
    };
    results.push(result);
    save();
    console.log(`run ${i + 1}/${runs}: shares ${shares.map((s) => (s === null ? '–' : s.toFixed(3))).join(' ')}${result.minOverMean !== null ? `, min/mean ${result.minOverMean.toFixed(2)}` : ''} (${r.seconds.toFixed(0)} s)${result.error ? `: ${result.error}` : ''}`);
  }
  const rows: BenchRow[] = results.map((r) => ({
    run: r.run,
    shares: r.shares.map((s) => (s === null ? '–' : s.toFixed(3))).join(' '),
    rewards: r.rewards.map((s) => (s === null ? '–' : s.toFixed(0))).join(' '),
    min: r.min,
    mean: r.mean,
    'min/mean': r.minOverMean,
    s: Math.round(r.seconds),
  }));
  printTable(`honest-share (${values.label}): final shares of an all-honest swarm, ${peers} peers × ${rounds} rounds`, rows);
  const ratios = results.map((r) => r.minOverMean).filter((x): x is number => x !== null);
  const worst = ratios.length ? Math.min(...ratios) : null;
  const failedRuns = results.filter((r) => r.error).length;
  const fair = worst !== null && failedRuns === 0 && worst >= FAIR_MIN_OVER_MEAN;
  console.log(`\nworst min/mean ${worst === null ? '–' : worst.toFixed(2)} over ${ratios.length} complete run(s)${failedRuns ? `, ${failedRuns} incomplete` : ''}: ${fair ? 'every honest peer ended with at least half the mean share' : `NOT fair (bar: ≥ ${FAIR_MIN_OVER_MEAN} in every run)`}`);
  console.log(`results: ${save()}`);
  return 0;
}
