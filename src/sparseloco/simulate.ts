// R replicas of one model in one process: each trains H inner steps on its own data, then the
// outer step (SparseLoCo, dense DiLoCo, or none: one replica that sees all R replicas' data).
// This is the round of DESIGN.md without the network — for `tessera train --replicas` and for
// comparing outer methods.
import type { Gpu } from '../gpu/gpu.ts';
import { layoutElements, type ModelConfig } from '../model/config.ts';
import { LayerSlice } from '../model/slice.ts';
import { AdamW, DEFAULT_ADAMW } from '../train/optimizer.ts';
import { sampleBatch, type Batch } from '../train/sampler.ts';
import type { LrSchedule } from '../train/schedule.ts';
import { LocalTrainer } from '../train/trainer.ts';
import { DEFAULT_DILOCO, DEFAULT_SPARSELOCO, DilocoOuter, SparseLoCoOuter, type DilocoSettings, type OuterMethod, type SparseLoCoSettings } from './outer.ts';
import { configHash } from '../model/identity.ts';

export interface SimulationSettings {
  cfg: ModelConfig;
  method: OuterMethod;
  replicas: number;
  innerSteps: number;
  rounds: number;
  batch: number;
  seqLen: number;
  /** Inner learning-rate schedule over all rounds × inner steps. */
  schedule: LrSchedule;
  seed: number;
  sparseloco?: SparseLoCoSettings;
  diloco?: DilocoSettings;
  /** Held-out batches the consensus model is scored on after each round. */
  evalBatches: readonly Pick<Batch, 'tokens' | 'targets'>[];
  /** Score every this many rounds (and always after the last); 1 by default. */
  evalEvery?: number;
}

export interface RoundReport {
  round: number;
  /** Mean inner training loss over the round's steps and replicas. */
  trainLoss: number;
  /** Held-out loss of the model every replica holds after the outer step; null on rounds not scored. */
  evalLoss: number | null;
  /** Bytes each replica sent this round (0 for 'none'). */
  bytesPerReplica: number;
  /** Dense f32 size of one replica's update, for the ratio. */
  denseBytes: number;
  ms: number;
}

/** One of the R replicas simulated in this process: its own weights, inner optimiser and trainer. */
interface SimulatedReplica {
  slice: LayerSlice;
  optimizer: AdamW;
  trainer: LocalTrainer;
}

export async function* simulate(gpu: Gpu, trainTokens: ArrayLike<number>, s: SimulationSettings): AsyncGenerator<RoundReport> {
  const { cfg, method, innerSteps: H, batch: B, seqLen: T } = s;
  const count = method === 'none' ? 1 : s.replicas;
  // 'none' sees every replica's data: R micro-batches per step, one per would-be replica.
  const accumulation = method === 'none' ? s.replicas : 1;
  const replicas: SimulatedReplica[] = [];
  for (let r = 0; r < count; r++) {
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.initialize(s.seed); // every replica starts from the same weights
    const optimizer = new AdamW(gpu, slice.layout, slice.params, slice.grads, DEFAULT_ADAMW);
    const source = {
      batch: (step: number, micro: number) => {
        const round = Math.floor((step - 1) / H);
        const contributor = `replica-${method === 'none' ? micro : r}`;
        return sampleBatch(trainTokens, { B, T }, { runSeed: s.seed, round, contributor, step: (step - 1) % H });
      },
    };
    replicas.push({ slice, optimizer, trainer: new LocalTrainer(gpu, slice, optimizer, source, s.schedule, accumulation) });
  }
  const layout = replicas[0].slice.layout;
  const denseBytes = 4 * layoutElements(layout);
  const hash = configHash(cfg);
  const sparse = method === 'sparseloco' ? replicas.map((rep) => new SparseLoCoOuter(gpu, layout, rep.slice.params, s.sparseloco ?? DEFAULT_SPARSELOCO, hash)) : [];
  const dense = method === 'diloco' ? new DilocoOuter(gpu, layout, replicas[0].slice.params, s.diloco ?? DEFAULT_DILOCO) : null;
  try {
    for (let round = 0; round < s.rounds; round++) {
      const t0 = performance.now();
      let lossSum = 0;
      for (const rep of replicas) for (let i = 0; i < H; i++) lossSum += (await rep.trainer.trainStep()).loss;
      let bytesPerReplica = 0;
      if (method === 'sparseloco') {
        const messages: Uint8Array[] = [];
        for (const rep of sparse) messages.push(await rep.compress(round));
        bytesPerReplica = messages.reduce((n, m) => n + m.length, 0) / messages.length;
        for (const rep of sparse) {
          const report = rep.applyUpdates(messages, round);
          if (report.rejected.length) throw new Error(`round ${round}: a replica's own update was rejected: ${report.rejected[0].message}`);
        }
      } else if (dense) {
        dense.step(replicas.map((r) => r.slice.params));
        bytesPerReplica = dense.bytesPerReplica;
      }
      const scored = round === s.rounds - 1 || (round + 1) % (s.evalEvery ?? 1) === 0;
      const evalLoss = scored ? await replicas[0].trainer.evaluate(s.evalBatches) : null;
      yield { round, trainLoss: lossSum / (H * replicas.length), evalLoss, bytesPerReplica, denseBytes, ms: performance.now() - t0 };
    }
  } finally {
    for (const rep of sparse) rep.destroy();
    dense?.destroy();
    for (const rep of replicas) {
      rep.trainer.destroy();
      rep.optimizer.destroy();
      rep.slice.destroy();
    }
  }
}
