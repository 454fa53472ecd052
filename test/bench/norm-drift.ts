// `npm run bench -- norm-drift [--honest 3] [--rounds 8] [--restart-at 4] [--software]`: how close
// honest updates come to the validator's undersize bar (scoring.ts UNDERSIZE_FACTOR). Honest
// `tiny` replicas train and apply each other's updates round after round (H = 2, the adversary
// harness's run config: its cosine schedule spans --rounds); at --restart-at a contributor joins
// as if restarted (θ_start from the others, its error feedback empty). Per round and peer: each
// tensor's norm over the reference the validator would hold (normReference of the previous
// NORM_REFERENCE_ROUNDS rounds' norms), the smallest and the median. Writes results/norm-drift.json.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { swarmConfig } from '../coordinator/adversary-swarm.ts';
import { loadOrBuildShard } from '../../src/node/corpus.ts';
import { splitShard } from '../../src/train/sampler.ts';
import { ModelReplica } from '../../src/round/replica.ts';
import { parameterLayout } from '../../src/model/config.ts';
import { runModel } from '../../src/protocol/run-config.ts';
import { configHash } from '../../src/model/identity.ts';
import { decodeUpdate } from '../../src/sparseloco/wire.ts';
import { NORM_REFERENCE_ROUNDS, UNDERSIZE_FACTOR, normReference } from '../../src/coordinator/scoring.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

export async function runNormDriftBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { honest: { type: 'string', default: '3' }, rounds: { type: 'string', default: '8' }, 'restart-at': { type: 'string', default: '4' }, software: { type: 'boolean' } } });
  const honest = Number(values.honest);
  const rounds = Number(values.rounds);
  const restartAt = Number(values['restart-at']);
  const setup = { honest, rounds, innerSteps: 2, batch: 1, seq: 16, lr: 1e-2, evalBatches: 2, seed: 3 };
  const gpu = await openNodeGpu(values.software ? { adapter: 'software' } : {});
  const dataRoot = mkdtempSync(join(tmpdir(), 'tessera-bench-norm-drift-'));
  const config = swarmConfig(setup, honest + 1);
  const { train } = splitShard(loadOrBuildShard({ tokenizer: 'bytes', root: dataRoot }).tokens, { validFraction: 0.01 });
  const cfg = runModel(config);
  const layout = parameterLayout(cfg).map((p) => ({ name: p.name, shape: p.shape }));
  const normsOf = (bytes: Uint8Array, round: number) => decodeUpdate(bytes, { configHash: configHash(cfg), round, layout, maxBytes: config.maxMessageBytes }).tensors.map((t) => Math.sqrt(t.values.reduce((m, v) => m + v * v, 0)));
  const replicas = new Map(Array.from({ length: honest }, (_, i) => [`honest-${i}`, new ModelReplica(gpu, config, train, `honest-${i}`)]));
  const rows: BenchRow[] = [];
  const pool: number[][][] = [];
  try {
    for (const r of replicas.values()) r.initializeFromSeed();
    for (let round = 0; round < rounds; round++) {
      if (round === restartAt) {
        const restarted = new ModelReplica(gpu, config, train, 'restarted');
        restarted.initializeFromSeed();
        restarted.loadStart(await replicas.values().next().value!.readStart());
        replicas.set('restarted', restarted);
      }
      const payloads: Uint8Array[] = [];
      const reference = normReference(pool.slice(-NORM_REFERENCE_ROUNDS).flat());
      const norms: number[][] = [];
      for (const [peer, replica] of replicas) {
        for (let step = 0; step < setup.innerSteps; step++) await replica.trainStep(round, step);
        const bytes = await replica.compress(round);
        payloads.push(bytes);
        const n = normsOf(bytes, round);
        norms.push(n);
        const ratios = n.map((x, t) => (reference[t] > 0 ? x / reference[t] : NaN)).filter(Number.isFinite).sort((a, b) => a - b);
        rows.push({ round, peer, 'total norm': Math.hypot(...n), 'min tensor / reference': ratios[0] ?? null, 'median tensor / reference': ratios.length ? ratios[ratios.length >> 1] : null });
      }
      pool.push(norms);
      for (const replica of replicas.values()) replica.apply(payloads, round);
    }
  } finally {
    for (const r of replicas.values()) r.destroy();
    rmSync(dataRoot, { recursive: true, force: true });
  }
  printTable(`Honest tensor norms against the undersize reference (bar: 1/${UNDERSIZE_FACTOR} = ${1 / UNDERSIZE_FACTOR}); ${honest} replicas of tiny, ${rounds} rounds, a restarted one from round ${restartAt}`, rows);
  const worst = Math.min(...rows.map((r) => (typeof r['min tensor / reference'] === 'number' ? r['min tensor / reference'] : Infinity)));
  console.log(`\nsmallest honest tensor / reference: ${worst.toFixed(3)} (the bar: ${1 / UNDERSIZE_FACTOR})`);
  console.log(`wrote ${writeResults('norm-drift', { date: new Date().toISOString(), setup, restartAt, undersizeFactor: UNDERSIZE_FACTOR, rows })}`);
  return 0;
}
