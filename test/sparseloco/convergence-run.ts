// The convergence comparison of issue 4, shared by the test (short) and the benchmark (long):
// R replicas of `tiny` on the shipped corpus, the same seed, data and inner schedule for each
// outer method, scored on the same held-out batches.
import type { Gpu } from '../../src/gpu/gpu.ts';
import { preset } from '../../src/model/config.ts';
import { loadOrBuildShard } from '../../src/node/corpus.ts';
import type { DilocoSettings, OuterMethod } from '../../src/sparseloco/outer.ts';
import { simulate, type RoundReport } from '../../src/sparseloco/simulate.ts';
import { evalBatches, splitShard } from '../../src/train/sampler.ts';

export interface ConvergenceSetup {
  replicas: number;
  innerSteps: number;
  rounds: number;
  batch: number;
  seqLen: number;
  /** Peak inner learning rate (AdamW), warmup steps, cosine to 10% over all rounds. */
  lr: number;
  warmup: number;
  seed: number;
  evalCount: number;
  evalEvery: number;
}

/** One curve of the comparison: an outer method and, for dense DiLoCo, its outer optimiser. */
export interface MethodSpec {
  label: string;
  method: OuterMethod;
  /** DiLoCo's published lr 0.7, Nesterov 0.9 when absent. */
  diloco?: DilocoSettings;
}

export const SPARSELOCO: MethodSpec = { label: 'SparseLoCo', method: 'sparseloco' };
export const DILOCO: MethodSpec = { label: 'DiLoCo (Nesterov 0.7/0.9)', method: 'diloco' };
export const ONE_REPLICA: MethodSpec = { label: 'one replica, all data', method: 'none' };

export interface MethodResult extends MethodSpec {
  /** Held-out loss after each scored round (null where not scored). */
  curve: (number | null)[];
  final: number;
  bytesPerReplica: number;
  denseBytes: number;
  seconds: number;
}

/** Runs each method with the same setup; `dataRoot` is where the byte shard is built or found. */
export async function runConvergence(gpu: Gpu, setup: ConvergenceSetup, methods: readonly MethodSpec[], dataRoot: string, log?: (line: string) => void): Promise<MethodResult[]> {
  const cfg = preset('tiny');
  const shard = loadOrBuildShard({ tokenizer: 'bytes', root: dataRoot });
  const { train, valid } = splitShard(shard.tokens, { validFraction: 0.01 });
  const held = evalBatches(valid, { B: setup.batch, T: setup.seqLen }, setup.evalCount);
  const results: MethodResult[] = [];
  for (const spec of methods) {
    const { method, label } = spec;
    const t0 = performance.now();
    const reports: RoundReport[] = [];
    const run = simulate(gpu, train, {
      cfg,
      method,
      replicas: setup.replicas,
      innerSteps: setup.innerSteps,
      rounds: setup.rounds,
      batch: setup.batch,
      seqLen: setup.seqLen,
      schedule: { peak: setup.lr, warmup: setup.warmup, total: setup.rounds * setup.innerSteps, minRatio: 0.1 },
      seed: setup.seed,
      evalBatches: held,
      evalEvery: setup.evalEvery,
      diloco: spec.diloco,
    });
    for await (const r of run) {
      reports.push(r);
      if (r.evalLoss !== null) log?.(`${label} round ${r.round + 1}/${setup.rounds}: held-out ${r.evalLoss.toFixed(4)}`);
    }
    const last = reports[reports.length - 1];
    results.push({
      ...spec,
      curve: reports.map((r) => r.evalLoss),
      final: last.evalLoss!,
      bytesPerReplica: last.bytesPerReplica,
      denseBytes: last.denseBytes,
      seconds: (performance.now() - t0) / 1000,
    });
  }
  return results;
}
