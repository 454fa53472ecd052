// Test support for GPU kernels: one device per test file, seeded random inputs, NaN-poisoned
// outputs, and the relative-error measure every kernel test reports.
import { afterAll, expect } from 'vitest';
import { openNodeGpu } from '../../src/node/dawn.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { Tensor, type DType } from '../../src/gpu/tensor.ts';
import { KernelInputError } from '../../src/gpu/errors.ts';

let shared: Promise<Gpu> | null = null;

/** The test file's GPU (Dawn; SwiftShader when there is no hardware adapter). */
export function testGpu(): Promise<Gpu> {
  if (!shared) {
    shared = openNodeGpu({ f16: true });
    afterAll(async () => (await shared!).destroy());
  }
  return shared;
}

/** Deterministic normal samples (mulberry32 + Box–Muller), so a failure can be replayed. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(uniform(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

export function randInts(n: number, max: number, seed: number): Int32Array {
  const r = randn(n * 2, seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor((Math.abs(r[2 * i] * 7919.123 + r[2 * i + 1] * 104729.7) % 1) * max);
  return out;
}

/** An output tensor filled with NaN, so a kernel that skips an element cannot pass. */
export function poisoned(gpu: Gpu, shape: readonly number[], label = 'out'): Tensor {
  const t = gpu.tensor(shape, 'f32', label);
  gpu.write(t, new Float32Array(t.size).fill(Number.NaN));
  return t;
}

/** ‖out − ref‖ / ‖ref‖; NaN or Inf anywhere gives Infinity. */
export function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) throw new Error(`length ${out.length} vs reference ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const o = out[i];
    if (!Number.isFinite(o)) return Number.POSITIVE_INFINITY;
    const d = o - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export function maxAbsDiff(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(out[i] - ref[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

/** Asserts rel error under `bound`, logging the figures llm.c-style either way. */
export function expectClose(label: string, out: ArrayLike<number>, ref: ArrayLike<number>, bound: number): number {
  const rel = relError(out, ref);
  const line = `${label}: rel ${rel.toExponential(2)} max|Δ| ${maxAbsDiff(out, ref).toExponential(2)} (bound ${bound.toExponential(0)})`;
  console.log(line);
  if (!(rel < bound)) throw new Error(`${line}: FAILED`);
  return rel;
}

/** Central finite difference of a scalar function at x[i]. */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, i: number, h = 1e-6): number {
  const saved = x[i];
  x[i] = saved + h;
  const up = f(x);
  x[i] = saved - h;
  const down = f(x);
  x[i] = saved;
  return (up - down) / (2 * h);
}

/** Asserts `f` throws a KernelInputError matching `message` and records nothing. */
export function rejects(gpu: Gpu, f: () => void, message: RegExp): void {
  const before = gpu.pendingDispatches;
  expect(f).toThrow(KernelInputError);
  expect(f).toThrow(message);
  expect(gpu.pendingDispatches).toBe(before);
}

/** A tensor whose buffer (16 bytes) is too small for its shape. */
export function tooSmall(gpu: Gpu, shape: number[], dtype: DType = 'f32'): Tensor {
  return new Tensor(gpu, gpu.device.createBuffer({ size: 16, usage: 0x80 | 0x04 | 0x08 }), shape, dtype, 'tooSmall');
}
