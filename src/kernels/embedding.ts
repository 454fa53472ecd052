// Token embedding over tokens i32 [N], table [V, C], out [N, C]: out[n] = table[tokens[n]].
//
// Backward (dtable [V, C]) is a scatter-add where tokens repeat. With no float atomics in
// WGSL it is made exact and deterministic by sorting on the CPU, which already holds the
// token ids: embeddingBackwardIndex counting-sorts positions by token, uploadEmbeddingIndex
// packs the result into one i32 buffer, and embeddingBackward runs one workgroup per
// distinct token summing its gradient rows in ascending position order (threads over C).
// Rows of tokens that did not occur are zeroed first, or kept when accumulating.
// Token ids are validated on the CPU (uploadTokens, embeddingBackwardIndex).
import code from '../../shaders/embedding.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectPositiveInt, expectTensor, grid } from './common.ts';

const SHADER = { name: 'embedding', code };
const WG = 256;

export interface EmbeddingDims {
  N: number;
  V: number;
  C: number;
}

/** Positions grouped by token: the gradient rows of rowToken[k] are order[rowStart[k] … rowStart[k+1]). */
export interface EmbeddingIndex {
  N: number;
  V: number;
  /** Positions 0…N−1 sorted by token id, ascending position within a token. */
  order: Int32Array;
  /** distinct + 1 offsets into `order`. */
  rowStart: Int32Array;
  /** The distinct token ids, ascending. */
  rowToken: Int32Array;
}

/** An EmbeddingIndex on the GPU: one i32 buffer [order | rowStart | rowToken]. */
export interface EmbeddingIndexTensor {
  N: number;
  V: number;
  distinct: number;
  tensor: Tensor;
}

function checkTokens(kernel: string, tokens: ArrayLike<number>, V: number): void {
  expectPositiveInt(kernel, 'V', V);
  if (V > 0x7fffffff) throw new KernelInputError(kernel, `V = ${V} does not fit in i32 token ids`);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) {
      throw new KernelInputError(kernel, `token id ${t} at position ${i} is outside the vocabulary [0, ${V})`);
    }
  }
}

/**
 * Uploads token ids as i32 [N] after checking every id is in [0, V): into `into` (an i32 [N]
 * tensor kept from step to step, so bind groups naming it stay cached) or a new tensor.
 */
export function uploadTokens(gpu: Gpu, tokens: ArrayLike<number>, V: number, label = 'tokens', into?: Tensor): Tensor {
  checkTokens('uploadTokens', tokens, V);
  if (tokens.length === 0) throw new KernelInputError('uploadTokens', 'no tokens given');
  if (!into) return gpu.tensor([tokens.length], 'i32', label, Int32Array.from(tokens));
  expectTensor('uploadTokens', 'into', into, tokens.length, 'i32');
  gpu.write(into, Int32Array.from(tokens));
  return into;
}

/** Counting sort of positions by token id (CPU, O(N + V)); rejects ids outside [0, V). */
export function embeddingBackwardIndex(tokens: ArrayLike<number>, V: number): EmbeddingIndex {
  checkTokens('embeddingBackwardIndex', tokens, V);
  const N = tokens.length;
  const counts = new Int32Array(V);
  for (let i = 0; i < N; i++) counts[tokens[i]]++;
  let distinct = 0;
  for (let v = 0; v < V; v++) if (counts[v] > 0) distinct++;
  const rowStart = new Int32Array(distinct + 1);
  const rowToken = new Int32Array(distinct);
  const slotStart = new Int32Array(V); // running write position per token
  let k = 0;
  let offset = 0;
  for (let v = 0; v < V; v++) {
    if (counts[v] === 0) continue;
    rowToken[k] = v;
    rowStart[k] = offset;
    slotStart[v] = offset;
    offset += counts[v];
    k++;
  }
  rowStart[distinct] = offset;
  const order = new Int32Array(N);
  for (let i = 0; i < N; i++) order[slotStart[tokens[i]]++] = i;
  return { N, V, order, rowStart, rowToken };
}

/** i32 elements an index of N tokens over a vocabulary of V can need: N + 2·min(N, V) + 1. */
export function embeddingIndexCapacity(N: number, V: number): number {
  return N + 2 * Math.min(N, V) + 1;
}

/**
 * Uploads an index as one i32 tensor [N + 2·distinct + 1], or into `into` (i32, at least
 * that long; the tail is zeroed) so one buffer serves every step.
 */
export function uploadEmbeddingIndex(gpu: Gpu, index: EmbeddingIndex, into?: Tensor): EmbeddingIndexTensor {
  const distinct = index.rowToken.length;
  if (index.order.length !== index.N || index.rowStart.length !== distinct + 1) {
    throw new KernelInputError('uploadEmbeddingIndex', 'index arrays are inconsistent: build them with embeddingBackwardIndex');
  }
  const needed = index.N + 2 * distinct + 1;
  if (into && (into.dtype !== 'i32' || into.size < needed)) {
    throw new KernelInputError('uploadEmbeddingIndex', `into must be an i32 tensor of at least ${needed} elements, got ${into} (${into.size})`);
  }
  const packed = new Int32Array(into ? into.size : needed);
  packed.set(index.order, 0);
  packed.set(index.rowStart, index.N);
  packed.set(index.rowToken, index.N + distinct + 1);
  if (into) gpu.write(into, packed);
  const tensor = into ?? gpu.tensor([packed.length], 'i32', 'embedding backward index', packed);
  return { N: index.N, V: index.V, distinct, tensor };
}

function checkDims(kernel: string, dims: EmbeddingDims): void {
  expectPositiveInt(kernel, 'N', dims.N);
  expectPositiveInt(kernel, 'V', dims.V);
  expectPositiveInt(kernel, 'C', dims.C);
}

export function embeddingForward(gpu: Gpu, tokens: Tensor, table: Tensor, out: Tensor, dims: EmbeddingDims): void {
  const K = 'embeddingForward';
  checkDims(K, dims);
  const { N, V, C } = dims;
  expectTensor(K, 'tokens', tokens, N, 'i32');
  expectTensor(K, 'table', table, V * C);
  expectTensor(K, 'out', out, N * C);
  if (out.buffer === table.buffer || out.buffer === tokens.buffer) throw new KernelInputError(K, 'out must be a buffer of its own');
  const params = new Params().u32(N).u32(V).u32(C).u32(0).u32(0);
  gpu.dispatch(gpu.pipeline(SHADER, 'embedding_forward'), params, [tokens, table, out], grid(gpu, ceilDiv(N * C, WG)));
}

export interface EmbeddingBackwardOptions {
  /** dtable += gradient (rows of absent tokens kept) instead of dtable = gradient (absent rows zeroed). */
  accumulate?: boolean;
}

export function embeddingBackward(
  gpu: Gpu,
  index: EmbeddingIndexTensor,
  dout: Tensor,
  dtable: Tensor,
  dims: EmbeddingDims,
  options: EmbeddingBackwardOptions = {},
): void {
  const K = 'embeddingBackward';
  checkDims(K, dims);
  const { N, V, C } = dims;
  if (index.N !== N || index.V !== V) {
    throw new KernelInputError(K, `index was built for N=${index.N}, V=${index.V} but dims are N=${N}, V=${V}`);
  }
  // The index may sit in a longer buffer kept from step to step (uploadEmbeddingIndex's `into`).
  const needed = N + 2 * index.distinct + 1;
  if (index.tensor.dtype !== 'i32' || index.tensor.size < needed) {
    throw new KernelInputError(K, `index must be an i32 tensor of at least ${needed} elements, got ${index.tensor} (${index.tensor.size})`);
  }
  expectTensor(K, 'dout', dout, N * C);
  expectTensor(K, 'dtable', dtable, V * C);
  if (dout.buffer === dtable.buffer) throw new KernelInputError(K, 'dout and dtable must be different buffers');
  const accumulate = options.accumulate ?? false;
  const params = new Params().u32(N).u32(V).u32(C).u32(index.distinct).u32(accumulate ? 1 : 0);
  if (!accumulate) {
    gpu.dispatch(gpu.pipeline(SHADER, 'embedding_zero'), params, [dtable], grid(gpu, ceilDiv(V * C, WG)));
  }
  gpu.dispatch(gpu.pipeline(SHADER, 'embedding_backward'), params, [index.tensor, dout, dtable], grid(gpu, index.distinct));
}

// ---- float64 references ----

export function embeddingForwardRef(tokens: ArrayLike<number>, table: ArrayLike<number>, dims: EmbeddingDims): Float64Array {
  const { N, C } = dims;
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) out[n * C + c] = table[tokens[n] * C + c];
  return out;
}

export function embeddingBackwardRef(tokens: ArrayLike<number>, dout: ArrayLike<number>, dims: EmbeddingDims): Float64Array {
  const { N, V, C } = dims;
  const dtable = new Float64Array(V * C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) dtable[tokens[n] * C + c] += dout[n * C + c];
  return dtable;
}
