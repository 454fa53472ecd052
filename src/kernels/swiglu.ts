// SwiGLU activation of the MLP over [N, F]: out = silu(gate) · up, silu(g) = g·σ(g).
// Backward: dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))), dup = dout·silu(g).
import code from '../../shaders/swiglu.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectPositiveInt, expectTensor, grid } from './common.ts';

const SHADER = { name: 'swiglu', code };
const WG = 256;

export interface SwigluDims {
  N: number;
  F: number;
}

function checked(kernel: string, dims: SwigluDims, named: Record<string, Tensor>, outputs: string[]): number {
  expectPositiveInt(kernel, 'N', dims.N);
  expectPositiveInt(kernel, 'F', dims.F);
  const n = dims.N * dims.F;
  for (const [name, t] of Object.entries(named)) expectTensor(kernel, name, t, n);
  // Outputs may not alias anything (inputs may alias each other: gate === up is legal).
  for (const out of outputs) {
    for (const [name, t] of Object.entries(named)) {
      if (name !== out && t.buffer === named[out].buffer) {
        throw new KernelInputError(kernel, `${out} and ${name} must be different buffers`);
      }
    }
  }
  return n;
}

export function swigluForward(gpu: Gpu, gate: Tensor, up: Tensor, out: Tensor, dims: SwigluDims): void {
  const n = checked('swigluForward', dims, { gate, up, out }, ['out']);
  gpu.dispatch(gpu.pipeline(SHADER, 'swiglu_forward'), new Params().u32(n), [gate, up, out], grid(gpu, ceilDiv(n, WG)));
}

export function swigluBackward(
  gpu: Gpu,
  gate: Tensor,
  up: Tensor,
  dout: Tensor,
  dgate: Tensor,
  dup: Tensor,
  dims: SwigluDims,
): void {
  const n = checked('swigluBackward', dims, { gate, up, dout, dgate, dup }, ['dgate', 'dup']);
  gpu.dispatch(
    gpu.pipeline(SHADER, 'swiglu_backward'),
    new Params().u32(n),
    [gate, up, dout, dgate, dup],
    grid(gpu, ceilDiv(n, WG)),
  );
}

/** m [N, F] = silu(gate)·up from the fused projection's gu [N, 2F] (rows [gate | up]). */
export function swigluPackedForward(gpu: Gpu, gu: Tensor, m: Tensor, dims: SwigluDims): void {
  const n = checkedPacked('swigluPackedForward', dims, gu, { m }, []);
  gpu.dispatch(gpu.pipeline(SHADER, 'swiglu_packed_forward'), new Params().u32(n).u32(dims.F), [gu, m], grid(gpu, ceilDiv(n, WG)));
}

/** dgu [N, 2F] = [dgate | dup] from dm [N, F]; m [N, F] = silu(gate)·up recomputed on the way. */
export function swigluPackedBackward(gpu: Gpu, gu: Tensor, dm: Tensor, dgu: Tensor, m: Tensor, dims: SwigluDims): void {
  const n = checkedPacked('swigluPackedBackward', dims, gu, { dm, m }, [dgu]);
  if (m.buffer === dm.buffer) throw new KernelInputError('swigluPackedBackward', 'm and dm must be different buffers');
  gpu.dispatch(
    gpu.pipeline(SHADER, 'swiglu_packed_backward'),
    new Params().u32(n).u32(dims.F),
    [gu, dm, dgu, m],
    grid(gpu, ceilDiv(n, WG)),
  );
}

function checkedPacked(kernel: string, dims: SwigluDims, gu: Tensor, rows: Record<string, Tensor>, packed: Tensor[]): number {
  expectPositiveInt(kernel, 'N', dims.N);
  expectPositiveInt(kernel, 'F', dims.F);
  const n = dims.N * dims.F;
  expectTensor(kernel, 'gu', gu, 2 * n);
  for (const t of packed) {
    expectTensor(kernel, 'dgu', t, 2 * n);
    if (t.buffer === gu.buffer) throw new KernelInputError(kernel, 'dgu and gu must be different buffers');
  }
  for (const [name, t] of Object.entries(rows)) {
    expectTensor(kernel, name, t, n);
    if (t.buffer === gu.buffer || packed.some((p) => p.buffer === t.buffer)) {
      throw new KernelInputError(kernel, `${name} must not share a buffer with gu or dgu`);
    }
  }
  return n;
}

// ---- float64 references ----

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

export function swigluForwardRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

export function swigluBackwardRef(
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
  dout: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dout[i] * g * s;
  }
  return { dgate, dup };
}
