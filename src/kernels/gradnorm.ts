// Global gradient norm for clipping: out [2] = [‖g‖₂ over all tensors, min(1, maxNorm /
// (‖g‖ + 1e-6))]. The second entry is the factor adamwStep multiplies gradients by when
// given `clip`, so clipping needs no CPU read-back.
//
// Deterministic two-stage reduction, no atomics: per tensor, one workgroup per 4096-element
// chunk writes its sum of squares (shared-memory tree) into its own slot of one scratch
// buffer; then a single workgroup sums all slots in a fixed order. For given tensor sizes
// the order of every addition is fixed, so the result is the same bits every run.
import code from '../../shaders/gradnorm.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectTensor, grid } from './common.ts';

const SHADER = { name: 'gradnorm', code };
/** Elements per gn_partial workgroup (CHUNK in gradnorm.wgsl). */
const CHUNK = 256 * 16;

export interface GradNormOptions {
  /** Clip threshold: the scale is min(1, maxNorm / (norm + 1e-6)). */
  maxNorm: number;
}

export function globalGradNorm(gpu: Gpu, grads: readonly Tensor[], out: Tensor, options: GradNormOptions): void {
  const K = 'globalGradNorm';
  const { maxNorm } = options;
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new KernelInputError(K, `maxNorm must be a positive number, got ${maxNorm}`);
  if (grads.length === 0) throw new KernelInputError(K, 'no gradient tensors given');
  expectTensor(K, 'out', out, 2);
  const offsets: number[] = [];
  let count = 0;
  grads.forEach((g, i) => {
    expectTensor(K, `grads[${i}]`, g, g.size);
    if (g.size === 0) throw new KernelInputError(K, `grads[${i}] (${g}) is empty`);
    if (g.buffer === out.buffer) throw new KernelInputError(K, `out must not be grads[${i}]'s buffer`);
    offsets.push(count);
    count += ceilDiv(g.size, CHUNK);
  });
  const partials = gpu.tensor([count], 'f32', 'gradnorm partials');
  const pipeline = gpu.pipeline(SHADER, 'gn_partial');
  grads.forEach((g, i) => {
    const params = new Params().u32(g.size).u32(offsets[i]).u32(count).f32(maxNorm);
    gpu.dispatch(pipeline, params, [g, partials], grid(gpu, ceilDiv(g.size, CHUNK)));
  });
  const params = new Params().u32(0).u32(0).u32(count).f32(maxNorm);
  gpu.dispatch(gpu.pipeline(SHADER, 'gn_final'), params, [partials, out], [1]);
  partials.release(); // reusable only after this submit (BufferPool)
}

/** [norm, min(1, maxNorm / (norm + 1e-6))] in float64. */
export function globalGradNormRef(grads: readonly ArrayLike<number>[], maxNorm: number): [number, number] {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  const norm = Math.sqrt(s);
  return [norm, Math.min(1, maxNorm / (norm + 1e-6))];
}
