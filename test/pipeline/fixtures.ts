// Data for the pipeline tests: micro-batches of a learnable affine sequence mod V (each
// token's successor is (5x + 3) mod V), every 7th target ignored (−1), so the loss falls
// within a few steps and ignored targets are exercised. Deterministic per (step, micro, seed).
import type { ModelConfig } from '../../src/model/config.ts';
import { randInts } from '../helpers/gpu.ts';

export function affineBatch(cfg: ModelConfig, B: number, T: number, seed: number): { tokens: Int32Array; targets: Int32Array } {
  const n = B * T;
  const tokens = new Int32Array(n);
  const targets = new Int32Array(n);
  const starts = randInts(B, cfg.vocabSize, seed);
  for (let b = 0; b < B; b++) {
    let x = starts[b];
    for (let t = 0; t < T; t++) {
      tokens[b * T + t] = x;
      x = (x * 5 + 3) % cfg.vocabSize;
      targets[b * T + t] = t % 7 === 6 ? -1 : x;
    }
  }
  return { tokens, targets };
}
