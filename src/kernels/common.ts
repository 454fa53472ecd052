// Shared by every kernel module: input checks that run before dispatch, and grid shapes.
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { DType, Tensor } from '../gpu/tensor.ts';

/** Throws unless `t` has exactly `size` elements of `dtype` (and, if given, this shape). */
export function expectTensor(kernel: string, name: string, t: Tensor, size: number, dtype: DType = 'f32'): void {
  if (t.dtype !== dtype) throw new KernelInputError(kernel, `${name} must be ${dtype}, got ${t}`);
  if (t.size !== size) {
    throw new KernelInputError(kernel, `${name} must hold ${size} elements for these sizes, got ${t} (${t.size})`);
  }
  if (t.capacity < t.byteLength) {
    throw new KernelInputError(kernel, `${name}'s buffer holds ${t.capacity} bytes from its offset, too small for ${t}`);
  }
}

export function expectPositiveInt(kernel: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new KernelInputError(kernel, `${name} must be a positive integer, got ${v}`);
}

/**
 * Workgroup counts covering `count` workgroups, folded into y when x would pass the device
 * limit. Shaders recover the linear index as wid.x + wid.y * num_workgroups.x.
 */
export function grid(gpu: Gpu, count: number): [number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (count <= max) return [Math.max(count, 0), 1];
  const y = Math.ceil(count / max);
  if (y > max) throw new KernelInputError('dispatch', `${count} workgroups exceed this GPU's ${max}×${max} grid`);
  return [Math.ceil(count / y), y];
}

export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

/**
 * Threads per row for row-wise kernels (norms, softmax): a power of two giving each thread
 * about 8 elements, at most `workgroup`. A workgroup then holds workgroup / threads rows, so
 * narrow rows do not leave most of it idle through every barrier.
 */
export function threadsPerRow(width: number, workgroup = 256): number {
  let t = 1;
  while (t < workgroup && t * 8 < width) t *= 2;
  return t;
}
