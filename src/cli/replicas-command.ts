// `tessera train --replicas R --inner-steps H --outer sparseloco|diloco|none`: R replicas of
// the model in this process, each training H steps per round on its own data, then the
// outer step; prints each round's loss and the bytes each replica would send.
import { adapterName, fmtBytes } from '../gpu/index.ts';
import type { ModelConfig } from '../model/config.ts';
import { evalBatches } from '../train/sampler.ts';
import type { OuterMethod } from '../sparseloco/outer.ts';
import { simulate } from '../sparseloco/simulate.ts';
import { openNodeGpu } from '../node/dawn.ts';

export interface ReplicaRun {
  cfg: ModelConfig;
  model: string;
  method: OuterMethod;
  replicas: number;
  innerSteps: number;
  rounds: number;
  batch: number;
  seq: number;
  lr: number;
  warmup: number;
  seed: number;
  evalCount: number;
  train: ArrayLike<number>;
  valid: ArrayLike<number>;
  entropy: number;
  software: boolean;
  say: (text: string, event?: Record<string, unknown>) => void;
}

export async function runReplicas(r: ReplicaRun): Promise<number> {
  const gpu = await openNodeGpu({ adapter: r.software ? 'software' : 'auto' });
  try {
    const held = evalBatches(r.valid, { B: r.batch, T: r.seq }, Math.max(1, r.evalCount));
    r.say(
      `${r.model}: ${r.replicas} replicas × ${r.innerSteps} inner steps per round, outer ${r.method}, ${r.rounds} rounds on ${adapterName(gpu.info)}\n` +
        `unigram entropy ${r.entropy.toFixed(3)} nats/token; held-out: ${held.length} batches of ${r.batch}×${r.seq}`,
      { event: 'start', model: r.model, method: r.method, replicas: r.replicas, innerSteps: r.innerSteps, rounds: r.rounds, adapter: adapterName(gpu.info), unigramEntropy: r.entropy },
    );
    const rounds = simulate(gpu, r.train, {
      cfg: r.cfg,
      method: r.method,
      replicas: r.replicas,
      innerSteps: r.innerSteps,
      rounds: r.rounds,
      batch: r.batch,
      seqLen: r.seq,
      schedule: { peak: r.lr, warmup: r.warmup, total: r.rounds * r.innerSteps, minRatio: 0.1 },
      seed: r.seed,
      evalBatches: held,
    });
    for await (const round of rounds) {
      const ratio = round.bytesPerReplica > 0 ? `  (${(round.denseBytes / round.bytesPerReplica).toFixed(0)}× smaller than dense f32)` : '';
      r.say(
        `round ${String(round.round + 1).padStart(3)}/${r.rounds}  train loss ${round.trainLoss.toFixed(4)}  held-out ${round.evalLoss?.toFixed(4) ?? '–'}  sent ${fmtBytes(round.bytesPerReplica)} per replica${ratio}  ${(round.ms / 1000).toFixed(1)} s`,
        { event: 'round', ...round, round: round.round + 1 },
      );
    }
    return 0;
  } finally {
    gpu.destroy();
  }
}
