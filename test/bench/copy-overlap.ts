// The natural top-k index overlap of honest updates, measured: R replicas of `tiny` train H
// inner steps each on their own data from the same weights (the run config's defaults: B = 8,
// T = 64, lr 3e-3), compress with SparseLoCo (k = 64 per 64×64 chunk) and apply every update,
// round after round — the swarm's round without the network. Reports, per round, the
// indexOverlap of every pair of the round's updates (what the copy check sees from two honest
// peers). Runs on whatever adapter Dawn finds (SwiftShader on a CPU machine: minutes).
import { preset } from '../../src/model/config.ts';
import { configHash } from '../../src/model/identity.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { loadOrBuildShard } from '../../src/node/corpus.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { indexOverlap } from '../../src/coordinator/scoring.ts';
import { DEFAULT_SPARSELOCO, SparseLoCoOuter } from '../../src/sparseloco/outer.ts';
import { decodeUpdate } from '../../src/sparseloco/wire.ts';
import { AdamW, DEFAULT_ADAMW } from '../../src/train/optimizer.ts';
import { sampleBatch, splitShard } from '../../src/train/sampler.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';

export interface HonestOverlap {
  round: number;
  /** indexOverlap of every pair of replicas' updates this round. */
  pairs: number[];
}

export async function measureHonestOverlap(o: { replicas: number; innerSteps: number; rounds: number; seed: number }, log: (line: string) => void): Promise<HonestOverlap[]> {
  const gpu = await openNodeGpu();
  const cfg = preset('tiny');
  const { train } = splitShard(loadOrBuildShard({ tokenizer: 'bytes', root: process.cwd() }).tokens, { validFraction: 0.01 });
  const B = 8;
  const T = 64;
  const schedule = { peak: 3e-3, warmup: 10, total: 100 * o.innerSteps, minRatio: 0.1 };
  const replicas = Array.from({ length: o.replicas }, (_, r) => {
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.initialize(o.seed);
    const optimizer = new AdamW(gpu, slice.layout, slice.params, slice.grads, DEFAULT_ADAMW);
    const source = { batch: (step: number) => sampleBatch(train, { B, T }, { runSeed: o.seed, round: Math.floor((step - 1) / o.innerSteps), contributor: `replica-${r}`, step: (step - 1) % o.innerSteps }) };
    const trainer = new LocalTrainer(gpu, slice, optimizer, source, schedule);
    const outer = new SparseLoCoOuter(gpu, slice.layout, slice.params, DEFAULT_SPARSELOCO, configHash(cfg));
    return { slice, optimizer, trainer, outer };
  });
  const results: HonestOverlap[] = [];
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (const rep of replicas) for (let i = 0; i < o.innerSteps; i++) await rep.trainer.trainStep();
      const messages: Uint8Array[] = [];
      for (const rep of replicas) messages.push(await rep.outer.compress(round));
      const indexSets = messages.map((m) => decodeUpdate(m).tensors.map((t) => Uint32Array.from(t.indices).sort()));
      const pairs: number[] = [];
      for (let a = 0; a < indexSets.length; a++) for (let b = a + 1; b < indexSets.length; b++) pairs.push(indexOverlap(indexSets[a], indexSets[b]));
      for (const rep of replicas) rep.outer.applyUpdates(messages, round);
      results.push({ round, pairs });
      log(`round ${round}: honest overlaps ${pairs.map((p) => p.toFixed(3)).join(' ')}`);
    }
  } finally {
    for (const rep of replicas) {
      rep.outer.destroy();
      rep.trainer.destroy();
      rep.optimizer.destroy();
      rep.slice.destroy();
    }
  }
  return results;
}
