// Sparse add into a dense f32 tensor: target[indices[i]] += scale · values[i].
// Indices are flat, unique and in range; they reach the GPU through uploadIndices, which
// checks both on the CPU, and scatterAdd takes only index tensors made that way. Unique
// indices make the kernel deterministic without atomics.
import code from '../../shaders/scatter.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectTensor, grid } from './common.ts';

const SHADER = { name: 'scatter', code };
const WG = 256;

/** Index tensors checked by uploadIndices, with the size they were checked against. */
const checked = new WeakMap<Tensor, number>();

/** Throws KernelInputError unless every index is an integer in [0, size) and none repeats. */
export function checkIndices(kernel: string, indices: Uint32Array, size: number): void {
  if (!Number.isInteger(size) || size < 1) throw new KernelInputError(kernel, `size must be a positive integer, got ${size}`);
  let ascending = true;
  for (let i = 0; i < indices.length; i++) {
    if (indices[i] >= size) throw new KernelInputError(kernel, `index ${indices[i]} at position ${i} is out of range for a tensor of ${size} elements`);
    if (i > 0 && indices[i] <= indices[i - 1]) ascending = false;
  }
  if (ascending) return;
  const sorted = indices.slice().sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new KernelInputError(kernel, `index ${sorted[i]} appears more than once; indices must be unique`);
  }
}

/** Uploads flat indices into a tensor of `size` elements after checking range and uniqueness. */
export function uploadIndices(gpu: Gpu, indices: Uint32Array, size: number): Tensor {
  checkIndices('uploadIndices', indices, size);
  const t = gpu.tensor([indices.length], 'u32', 'scatter indices');
  if (indices.length > 0) gpu.write(t, indices);
  checked.set(t, size);
  return t;
}

/** Records target[indices[i]] += scale · values[i]. `indices` must come from uploadIndices. */
export function scatterAdd(gpu: Gpu, target: Tensor, indices: Tensor, values: Tensor, scale: number): void {
  const K = 'scatterAdd';
  const n = indices.size;
  expectTensor(K, 'target', target, target.size);
  expectTensor(K, 'indices', indices, n, 'u32');
  expectTensor(K, 'values', values, n);
  const bound = checked.get(indices);
  if (bound === undefined) throw new KernelInputError(K, 'indices must be uploaded with uploadIndices (it checks range and uniqueness)');
  if (bound > target.size) {
    throw new KernelInputError(K, `indices were checked against ${bound} elements but target ${target} holds ${target.size}`);
  }
  if (!Number.isFinite(scale)) throw new KernelInputError(K, `scale must be finite, got ${scale}`);
  if (new Set([target.buffer, indices.buffer, values.buffer]).size !== 3) {
    throw new KernelInputError(K, 'target, indices and values must be different buffers');
  }
  if (n === 0) return;
  const params = new Params().u32(n).u32(target.size).f32(scale).u32(0);
  gpu.dispatch(gpu.pipeline(SHADER, 'scatter_add'), params, [indices, values, target], grid(gpu, ceilDiv(n, WG)));
}

export function scatterAddRef(target: ArrayLike<number>, indices: ArrayLike<number>, values: ArrayLike<number>, scale: number): Float64Array {
  const out = Float64Array.from(target);
  for (let i = 0; i < indices.length; i++) out[indices[i]] += scale * values[i];
  return out;
}
