// The last stage's head and loss, fused in row chunks so the N×V logits never exist at once:
//
//   per chunk of R rows:  logits [R, Vp] = xf[rows]·headᵀ       (head read as [Vp, C])
//                         losses[rows] (+ d(logits)·scale in place: ce_chunk)
//                         d(head) [Vp, C] (+)= d(logits)ᵀ·xf[rows]  (later chunks add)
//                         dn[rows] [R, C] = d(logits)·head
//   then lossMean = mean of the losses over the valid targets.
//
// Vp is the vocabulary padded to a multiple of VOCAB_ALIGN: the parameter arenas keep
// (Vp − V)·C zero floats after the head (or tied embedding), so the three matmuls see
// vec4-aligned [Vp, C] and [R, Vp] operands; ce_chunk masks columns ≥ V out of the softmax and
// writes a zero gradient there, so the padding rows' gradient is exactly 0 and AdamW keeps
// them 0. The tensor itself stays [V, C]: checkpoints, setParameters and readParameters are
// unchanged, and an old checkpoint loads as before.
//
// A training step records the whole chain once, in the backward (recordTrain); a forward
// alone (evaluation) records the loss half when the loss is asked for (recordLoss). R: the
// rows whose logits fit LOGITS_CHUNK_BYTES (and the binding limit), a multiple of 64 so each
// chunk's row views start 256-byte aligned, in equal chunks.
import type { Gpu } from '../gpu/gpu.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { Tensor } from '../gpu/tensor.ts';
import { crossEntropyChunk, crossEntropyMean } from '../kernels/crossentropy.ts';
import { matmul, matmulSplitElements } from '../kernels/matmul.ts';
import type { SplitKGroup } from '../kernels/matmul-split-group.ts';
import type { TensorSet } from './block.ts';

/** The head's matmuls see the vocabulary padded to a multiple of this (vec4-aligned rows and columns). */
export const VOCAB_ALIGN = 64;
/** Most bytes of logits one chunk holds (~785 MiB for all rows at base: 4 chunks of ≤ 256 MiB). */
export const LOGITS_CHUNK_BYTES = 256 * 2 ** 20;
/** Chunk row counts are multiples of this, so row views of [·, C] f32 start 256-byte aligned. */
const ROW_ALIGN = 64;

export const paddedVocab = (V: number): number => Math.ceil(V / VOCAB_ALIGN) * VOCAB_ALIGN;

/** Rows per chunk for N rows of Vp logits: equal chunks under the byte budget. */
export function headChunkRows(N: number, Vp: number, budgetBytes: number): number {
  const most = Math.max(ROW_ALIGN, Math.floor(budgetBytes / (4 * Vp) / ROW_ALIGN) * ROW_ALIGN);
  if (N <= most) return N;
  const chunks = Math.ceil(N / most);
  return Math.min(most, Math.ceil(N / chunks / ROW_ALIGN) * ROW_ALIGN);
}

/** Rows [r0, r0 + rows) of a row-major [·, cols] f32 tensor, as a view. */
function rowsView(t: Tensor, r0: number, rows: number, cols: number, label: string): Tensor {
  if (r0 === 0 && rows * cols === t.size) return t;
  return new Tensor(t.gpu, t.buffer, [rows, cols], 'f32', label, t.offset + r0 * cols * 4, true);
}

/** A [V, C] arena view read as [Vp, C] (its reserved zero rows after it). */
function paddedView(t: Tensor, Vp: number): Tensor {
  const [V, C] = t.shape;
  if (Vp === V) return t;
  if (!t.isView || t.capacity < Vp * C * 4) {
    throw new KernelInputError('FusedHead', `${t.label} must be an arena view with ${Vp - V} zero rows reserved after it (parameterArenaSpecs)`);
  }
  return new Tensor(t.gpu, t.buffer, [Vp, C], 'f32', `${t.label} (padded to ${Vp})`, t.offset, true);
}

/**
 * Split-K groups (matmul-split-group.ts) for the backward: `head` gets the input gradient's
 * chunks and is finished here; `weights` gets the head's weight gradient, finished by the
 * caller after the rest of the backward's weight gradients.
 */
export interface HeadSplitGroups {
  head: SplitKGroup;
  weights: SplitKGroup;
}

interface TrainTargets {
  headGrad: Tensor;
  dn: Tensor;
  scale: number;
  beta: number;
  splitK: HeadSplitGroups | null;
}

export interface HeadDims {
  N: number;
  C: number;
  V: number;
}

export class FusedHead {
  readonly xf: Tensor; //       [N, C] final norm output
  readonly rstdF: Tensor; //    [N]
  readonly losses: Tensor; //   [N]
  readonly lossMean: Tensor; // [1]
  /** One chunk's logits [rows, Vp], then their gradient. */
  readonly logits: Tensor;
  readonly rows: number;
  readonly Vp: number;

  constructor(private readonly gpu: Gpu, private readonly d: HeadDims, set: TensorSet, chunkRows?: number) {
    const { N, C, V } = d;
    this.Vp = paddedVocab(V);
    if (chunkRows !== undefined && (!Number.isInteger(chunkRows) || chunkRows < 1 || (chunkRows < N && chunkRows % ROW_ALIGN !== 0))) {
      throw new KernelInputError('FusedHead', `headChunkRows must be a positive multiple of ${ROW_ALIGN} (or ≥ B·T), got ${chunkRows}`);
    }
    this.rows = Math.min(N, chunkRows ?? headChunkRows(N, this.Vp, Math.min(LOGITS_CHUNK_BYTES, gpu.maxBindingBytes)));
    this.xf = set.make([N, C], 'finalNorm.out');
    this.rstdF = set.make([N], 'finalNorm.rstd');
    this.logits = set.make([this.rows, this.Vp], 'logits chunk');
    this.losses = set.make([N], 'losses');
    this.lossMean = set.make([1], 'loss');
  }

  /** Split-K arena elements of the backward's matmuls: the head's weight gradient and its input gradient, over every chunk. */
  splitKElements(): { weights: number; head: number } {
    const { N, C } = this.d;
    const out = { weights: 0, head: 0 };
    for (let r0 = 0; r0 < N; r0 += this.rows) {
      const rows = Math.min(this.rows, N - r0);
      out.weights += matmulSplitElements(this.gpu, this.Vp, C, rows);
      out.head += matmulSplitElements(this.gpu, rows, C, this.Vp);
    }
    return out;
  }

  /** Losses and their mean only (a forward without backward). */
  recordLoss(head: Tensor, targets: Tensor): void {
    this.record(head, targets, null);
  }

  /**
   * Losses, mean and gradients: d(head) (+)= (beta = 1 adds to what `headGrad` holds), and
   * dn [N, C] = ∂loss/∂xf. `scale` multiplies d(logits) (1/valid targets × the loss scale).
   */
  recordTrain(
    head: Tensor, headGrad: Tensor, targets: Tensor, dn: Tensor, scale: number, beta: number, splitK: HeadSplitGroups | null = null,
  ): void {
    this.record(head, targets, { headGrad, dn, scale, beta, splitK });
  }

  private record(head: Tensor, targets: Tensor, grad: TrainTargets | null): void {
    const { N, C, V } = this.d;
    const { Vp, gpu } = this;
    const w = paddedView(head, Vp);
    const g = grad ? paddedView(grad.headGrad, Vp) : null;
    for (let r0 = 0; r0 < N; r0 += this.rows) {
      const rows = Math.min(this.rows, N - r0);
      const xf = rowsView(this.xf, r0, rows, C, 'finalNorm.out rows');
      const logits = rowsView(this.logits, 0, rows, Vp, 'logits rows');
      matmul(gpu, xf, w, logits, { M: rows, N: Vp, K: C, transB: true });
      crossEntropyChunk(gpu, logits, targets, this.losses, { rows, V, stride: Vp, rowOffset: r0, scale: grad ? grad.scale : null });
      if (grad && g) {
        const groups = grad.splitK;
        matmul(gpu, logits, xf, g, { M: Vp, N: C, K: rows, transA: true, beta: r0 > 0 ? 1 : grad.beta, splitGroup: groups?.weights });
        matmul(gpu, logits, w, rowsView(grad.dn, r0, rows, C, 'dn rows'), { M: rows, N: C, K: Vp, splitGroup: groups?.head });
      }
    }
    grad?.splitK?.head.finish(); // dn whole before anything reads it
    crossEntropyMean(gpu, this.losses, targets, this.lossMean, { N, V });
  }
}
