// How much GPU memory training a model needs, estimated from its shape. Per parameter the
// replica holds 7 f32 copies: weights, gradients, AdamW's two moments, SparseLoCo's θ_start
// and error feedback, and the decoded update; activations kept for the backward pass are
// counted per token per layer (residual stream, attention, SwiGLU) plus the logits. An
// estimate for the GPU check screen, not an allocator's exact total.
import { parameterCount, parameterLayout, preset, type PresetName } from '../../src/model/config.ts';

const F32 = 4;
const COPIES_PER_PARAMETER = 7;

export interface MemoryEstimate {
  parameters: number;
  totalBytes: number;
  /** The largest single tensor (must fit one GPU buffer). */
  largestTensorBytes: number;
}

export function trainingMemory(model: PresetName, batch: number, seq: number): MemoryEstimate {
  const cfg = preset(model);
  const parameters = parameterCount(cfg);
  const tokens = batch * seq;
  const perLayerActivations = tokens * (8 * cfg.dim + 3 * cfg.mlpHidden) + batch * cfg.heads * seq * seq;
  const logits = tokens * cfg.vocabSize * 2; // logits and their gradient
  const activations = (cfg.layers * perLayerActivations + logits) * F32;
  const largestParam = Math.max(...parameterLayout(cfg).map((p) => p.size)) * F32;
  return {
    parameters,
    totalBytes: parameters * COPIES_PER_PARAMETER * F32 + activations,
    largestTensorBytes: Math.max(largestParam, logits * F32 / 2),
  };
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
