// Softmax cross-entropy over logits [N, V] with i32 targets [N]; target −1 is ignored
// (loss 0, gradient 0, left out of the mean).
//
// crossEntropyForward writes per-row losses [N] through a numerically stable logsumexp (one
// workgroup per row, online max/sum merged in shared memory), then lossMean[0] = mean over
// the valid rows, by one workgroup in a fixed order (deterministic; 0 if no row is valid).
//
// crossEntropyBackward writes dlogits = (softmax − onehot) · scale, recomputing each row's
// logsumexp. The scale is decided on the CPU: pass `scale` explicitly (e.g. 1/(valid targets
// over all micro-batches) when accumulating) or pass the CPU copy of the targets as
// `targetsCpu` and it is 1/(number of valid targets) (0 when there are none). dlogits may be
// the logits tensor itself: the gradient then overwrites the logits in place.
import code from '../../shaders/crossentropy.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectPositiveInt, expectTensor, grid, threadsPerRow } from './common.ts';

const SHADER = { name: 'crossentropy', code };
/** Workgroup size of crossentropy.wgsl's row kernels (WG there). */
const WG = 256;

export interface CrossEntropyDims {
  N: number;
  V: number;
}

export interface CrossEntropyBackwardDims extends CrossEntropyDims {
  /** Multiplies the gradient; default 1/(valid targets in targetsCpu). */
  scale?: number;
  /** The targets as on the GPU, used only to compute the default scale. */
  targetsCpu?: ArrayLike<number>;
}

function checkTargets(kernel: string, targets: ArrayLike<number>, V: number): number {
  let valid = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (!Number.isInteger(t) || t < -1 || t >= V) {
      throw new KernelInputError(kernel, `target ${t} at position ${i} is neither −1 (ignored) nor a token id in [0, ${V})`);
    }
    if (t >= 0) valid++;
  }
  return valid;
}

/** Uploads targets as i32 [N] after checking each is −1 or in [0, V): into `into` (i32 [N], kept from step to step) or a new tensor. */
export function uploadTargets(gpu: Gpu, targets: ArrayLike<number>, V: number, label = 'targets', into?: Tensor): Tensor {
  expectPositiveInt('uploadTargets', 'V', V);
  checkTargets('uploadTargets', targets, V);
  if (targets.length === 0) throw new KernelInputError('uploadTargets', 'no targets given');
  if (!into) return gpu.tensor([targets.length], 'i32', label, Int32Array.from(targets));
  expectTensor('uploadTargets', 'into', into, targets.length, 'i32');
  gpu.write(into, Int32Array.from(targets));
  return into;
}

/** The default backward scale: 1/(number of targets that are not −1), 0 when none are. */
export function crossEntropyScale(targets: ArrayLike<number>): number {
  let valid = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] >= 0) valid++;
  return valid > 0 ? 1 / valid : 0;
}

function checkDims(kernel: string, dims: CrossEntropyDims): void {
  expectPositiveInt(kernel, 'N', dims.N);
  expectPositiveInt(kernel, 'V', dims.V);
  if (dims.V > 0x7fffffff) throw new KernelInputError(kernel, `V = ${dims.V} does not fit in i32 targets`);
}

export function crossEntropyForward(
  gpu: Gpu,
  logits: Tensor,
  targets: Tensor,
  losses: Tensor,
  lossMean: Tensor,
  dims: CrossEntropyDims,
): void {
  const K = 'crossEntropyForward';
  checkDims(K, dims);
  const { N, V } = dims;
  expectTensor(K, 'logits', logits, N * V);
  expectTensor(K, 'targets', targets, N, 'i32');
  expectTensor(K, 'losses', losses, N);
  expectTensor(K, 'lossMean', lossMean, 1);
  const bufs = [logits, targets, losses, lossMean].map((t) => t.buffer);
  if (new Set(bufs).size !== bufs.length) throw new KernelInputError(K, 'logits, targets, losses and lossMean must be different buffers');
  const params = new Params().u32(N).u32(V).f32(0);
  gpu.dispatch(gpu.pipeline(SHADER, 'ce_forward', { TPR: threadsPerRow(V, WG) }), params, [logits, targets, losses], grid(gpu, ceilDiv(N, WG / threadsPerRow(V, WG))));
  gpu.dispatch(gpu.pipeline(SHADER, 'ce_mean'), params, [losses, targets, lossMean], [1]);
}

export function crossEntropyBackward(
  gpu: Gpu,
  logits: Tensor,
  targets: Tensor,
  dlogits: Tensor,
  dims: CrossEntropyBackwardDims,
): void {
  const K = 'crossEntropyBackward';
  checkDims(K, dims);
  const { N, V } = dims;
  expectTensor(K, 'logits', logits, N * V);
  expectTensor(K, 'targets', targets, N, 'i32');
  expectTensor(K, 'dlogits', dlogits, N * V);
  if (targets.buffer === logits.buffer || targets.buffer === dlogits.buffer) {
    throw new KernelInputError(K, 'targets must be a buffer of its own');
  }
  let scale = dims.scale;
  if (dims.targetsCpu) {
    if (dims.targetsCpu.length !== N) throw new KernelInputError(K, `targetsCpu holds ${dims.targetsCpu.length} targets, expected N = ${N}`);
    const valid = checkTargets(K, dims.targetsCpu, V);
    scale ??= valid > 0 ? 1 / valid : 0;
  }
  if (scale === undefined) {
    throw new KernelInputError(K, 'give either scale or targetsCpu (the default scale is 1/(valid targets), counted on the CPU)');
  }
  if (!Number.isFinite(scale)) throw new KernelInputError(K, `scale must be finite, got ${scale}`);
  const params = new Params().u32(N).u32(V).f32(scale);
  if (dlogits.buffer === logits.buffer) {
    gpu.dispatch(gpu.pipeline(SHADER, 'ce_backward_inplace', { TPR: threadsPerRow(V, WG) }), params, [logits, targets], grid(gpu, ceilDiv(N, WG / threadsPerRow(V, WG))));
  } else {
    gpu.dispatch(gpu.pipeline(SHADER, 'ce_backward', { TPR: threadsPerRow(V, WG) }), params, [logits, targets, dlogits], grid(gpu, ceilDiv(N, WG / threadsPerRow(V, WG))));
  }
}

export interface CrossEntropyChunkDims {
  /** Rows in this chunk. */
  rows: number;
  /** The real vocabulary: columns ≥ V are masked out of the softmax and are never targets. */
  V: number;
  /** Elements per logits row (the padded vocabulary, ≥ V). */
  stride: number;
  /** The chunk's first row in targets and losses. */
  rowOffset: number;
  /** null: losses only; a number: also overwrite the chunk with d(logits)·scale (0 in the padding). */
  scale: number | null;
}

/**
 * One row chunk of the fused head: losses[rowOffset + r] for the chunk's logits [rows, stride]
 * and, with a scale, the gradient in place. targets and losses are the whole [N] buffers.
 */
export function crossEntropyChunk(gpu: Gpu, logits: Tensor, targets: Tensor, losses: Tensor, dims: CrossEntropyChunkDims): void {
  const K = 'crossEntropyChunk';
  const { rows, V, stride, rowOffset, scale } = dims;
  checkDims(K, { N: rows, V });
  if (!Number.isInteger(stride) || stride < V) throw new KernelInputError(K, `stride must be an integer ≥ V = ${V}, got ${stride}`);
  if (!Number.isInteger(rowOffset) || rowOffset < 0) throw new KernelInputError(K, `rowOffset must be a non-negative integer, got ${rowOffset}`);
  expectTensor(K, 'logits', logits, rows * stride);
  for (const [name, t, dtype] of [['targets', targets, 'i32'], ['losses', losses, 'f32']] as const) {
    expectTensor(K, name, t, t.size, dtype);
    if (t.size < rowOffset + rows) throw new KernelInputError(K, `${name} holds ${t.size} rows, the chunk needs rows up to ${rowOffset + rows}`);
  }
  if (new Set([logits.buffer, targets.buffer, losses.buffer]).size !== 3) throw new KernelInputError(K, 'logits, targets and losses must be different buffers');
  if (scale !== null && !Number.isFinite(scale)) throw new KernelInputError(K, `scale must be finite or null, got ${scale}`);
  const params = new Params().u32(rows).u32(V).u32(stride).u32(rowOffset).u32(scale === null ? 0 : 1).f32(scale ?? 0);
  const tpr = threadsPerRow(V, WG);
  gpu.dispatch(gpu.pipeline(SHADER, 'ce_chunk', { TPR: tpr }), params, [logits, targets, losses], grid(gpu, ceilDiv(rows, WG / tpr)));
}

/** lossMean[0] = mean of losses [N] over the rows whose target is valid (0 if none): ce_mean alone. */
export function crossEntropyMean(gpu: Gpu, losses: Tensor, targets: Tensor, lossMean: Tensor, dims: CrossEntropyDims): void {
  const K = 'crossEntropyMean';
  checkDims(K, dims);
  expectTensor(K, 'losses', losses, dims.N);
  expectTensor(K, 'targets', targets, dims.N, 'i32');
  expectTensor(K, 'lossMean', lossMean, 1);
  gpu.dispatch(gpu.pipeline(SHADER, 'ce_mean'), new Params().u32(dims.N).u32(dims.V).f32(0), [losses, targets, lossMean], [1]);
}

// ---- float64 references ----

function logsumexp(logits: ArrayLike<number>, base: number, V: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, logits[base + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[base + v] - m);
  return m + Math.log(s);
}

export function crossEntropyForwardRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  dims: CrossEntropyDims,
): { losses: Float64Array; mean: number } {
  const { N, V } = dims;
  const losses = new Float64Array(N);
  let sum = 0;
  let valid = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t < 0) continue;
    losses[n] = logsumexp(logits, n * V, V) - logits[n * V + t];
    sum += losses[n];
    valid++;
  }
  return { losses, mean: valid > 0 ? sum / valid : 0 };
}

export function crossEntropyBackwardRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  dims: CrossEntropyDims & { scale?: number },
): Float64Array {
  const { N, V } = dims;
  const scale = dims.scale ?? crossEntropyScale(targets);
  const d = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t < 0) continue;
    const lse = logsumexp(logits, n * V, V);
    for (let v = 0; v < V; v++) d[n * V + v] = (Math.exp(logits[n * V + v] - lse) - (v === t ? 1 : 0)) * scale;
  }
  return d;
}
