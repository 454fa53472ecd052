// AdamW with decoupled weight decay over one parameter tensor and its gradient and moments
// (all the same size, f32):
//   θ ← θ − lr·(wd·θ) − lr·m̂/(sqrt(v̂) + eps)
// with bias corrections 1 − β^step computed on the CPU in float64. With `clip` (the [2]
// output of globalGradNorm: [norm, scale]) the gradient is multiplied by clip[1] inside the
// kernel, so gradient clipping costs no CPU read-back.
import code from '../../shaders/adamw.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { ceilDiv, expectTensor, grid } from './common.ts';

const SHADER = { name: 'adamw', code };
const WG = 256;

export interface AdamwOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay: number;
  /** 1-based step number (for the bias corrections). */
  step: number;
  /** Only elements [0, decayEnd) take weight decay (default: all); a decayed span then an undecayed one in one call. */
  decayEnd?: number;
}

interface Resolved {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

function resolve(kernel: string, o: AdamwOptions): Resolved {
  const r = { ...o, beta1: o.beta1 ?? 0.9, beta2: o.beta2 ?? 0.95, eps: o.eps ?? 1e-8 };
  if (!Number.isInteger(r.step) || r.step < 1) throw new KernelInputError(kernel, `step must be an integer ≥ 1, got ${r.step}`);
  for (const k of ['beta1', 'beta2'] as const) {
    if (!(r[k] >= 0 && r[k] < 1)) throw new KernelInputError(kernel, `${k} must be in [0, 1), got ${r[k]}`);
  }
  for (const k of ['lr', 'eps', 'weightDecay'] as const) {
    if (!(r[k] >= 0) || !Number.isFinite(r[k])) throw new KernelInputError(kernel, `${k} must be a finite number ≥ 0, got ${r[k]}`);
  }
  return r;
}

export function adamwStep(gpu: Gpu, param: Tensor, grad: Tensor, m: Tensor, v: Tensor, options: AdamwOptions, clip?: Tensor): void {
  const K = 'adamwStep';
  const o = resolve(K, options);
  const n = param.size;
  if (n === 0) throw new KernelInputError(K, `param ${param} is empty`);
  expectTensor(K, 'param', param, n);
  expectTensor(K, 'grad', grad, n);
  expectTensor(K, 'm', m, n);
  expectTensor(K, 'v', v, n);
  const named: [string, Tensor][] = [['param', param], ['grad', grad], ['m', m], ['v', v]];
  if (clip) {
    expectTensor(K, 'clip', clip, 2);
    named.push(['clip', clip]);
  }
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      if (named[i][1].buffer === named[j][1].buffer) throw new KernelInputError(K, `${named[i][0]} and ${named[j][0]} must be different buffers`);
    }
  }
  const decayEnd = options.decayEnd ?? n;
  if (!Number.isInteger(decayEnd) || decayEnd < 0 || decayEnd > n) throw new KernelInputError(K, `decayEnd must be an integer in [0, ${n}], got ${decayEnd}`);
  const params = new Params()
    .u32(n)
    .f32(o.lr)
    .f32(o.beta1)
    .f32(o.beta2)
    .f32(o.eps)
    .f32(o.weightDecay)
    .f32(1 / (1 - Math.pow(o.beta1, o.step)))
    .f32(1 / (1 - Math.pow(o.beta2, o.step)))
    .u32(decayEnd);
  const buffers = clip ? [param, grad, m, v, clip] : [param, grad, m, v];
  gpu.dispatch(gpu.pipeline(SHADER, clip ? 'adamw_clip' : 'adamw'), params, buffers, grid(gpu, ceilDiv(n, WG)));
}

/** One AdamW step in float64; returns the new (param, m, v). */
export function adamwRef(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  options: AdamwOptions,
  clipScale = 1,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const { lr, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, step } = options;
  const n = param.length;
  const decayEnd = options.decayEnd ?? n;
  const outP = new Float64Array(n);
  const outM = new Float64Array(n);
  const outV = new Float64Array(n);
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  for (let i = 0; i < n; i++) {
    const g = grad[i] * clipScale;
    outM[i] = beta1 * m[i] + (1 - beta1) * g;
    outV[i] = beta2 * v[i] + (1 - beta2) * g * g;
    const update = outM[i] / bc1 / (Math.sqrt(outV[i] / bc2) + eps);
    const weightDecay = i < decayEnd ? options.weightDecay : 0;
    outP[i] = param[i] - lr * weightDecay * param[i] - lr * update;
  }
  return { param: outP, m: outM, v: outV };
}
