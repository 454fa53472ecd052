// Flat elementwise kernels: fill and y = a·x + b·y. Shapes: any; both operands the same size.
import code from '../../shaders/elementwise.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { expectTensor, grid, ceilDiv } from './common.ts';

const SHADER = { name: 'elementwise', code };
const WG = 256;

export function fill(gpu: Gpu, y: Tensor, value: number): void {
  expectTensor('fill', 'y', y, y.size);
  const params = new Params().u32(y.size).f32(0).f32(0).f32(value);
  gpu.dispatch(gpu.pipeline(SHADER, 'fill'), params, [y], grid(gpu, ceilDiv(y.size, WG)));
}

/** y ← a·x + b·y */
export function axpby(gpu: Gpu, a: number, x: Tensor, b: number, y: Tensor): void {
  if (x.size !== y.size) throw new KernelInputError('axpby', `x ${x} and y ${y} differ in size`);
  expectTensor('axpby', 'x', x, y.size);
  expectTensor('axpby', 'y', y, y.size);
  if (x.buffer === y.buffer) throw new KernelInputError('axpby', 'x and y must be different buffers');
  const params = new Params().u32(y.size).f32(a).f32(b).f32(0);
  gpu.dispatch(gpu.pipeline(SHADER, 'axpby'), params, [x, y], grid(gpu, ceilDiv(y.size, WG)));
}

export function axpbyRef(a: number, x: ArrayLike<number>, b: number, y: ArrayLike<number>): Float64Array {
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = a * x[i] + b * y[i];
  return out;
}
