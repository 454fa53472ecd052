// What the kernel benchmarks share: seeded inputs, and the command of a "variant 1 beside
// variant 2" benchmark (--shapes, --reps, --software; a table; JSON under results/).
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import type { AttentionDims } from '../../src/kernels/attention.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

/** n values in [−1, 1) from a linear congruential stream: the same inputs on every run. */
export function seededUniform(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** ‖x − y‖ / ‖y‖ (y the reference). */
export function relDiff(x: Float32Array, y: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i] - y[i]) ** 2;
    den += y[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** An attention shape from `--shapes`: BxTxHxHkvxD. */
export function parseAttentionShape(s: string): AttentionDims {
  const m = /^(\d+)x(\d+)x(\d+)x(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--shapes: '${s}' is not BxTxHxHkvxD (e.g. 1x256x4x2x64)`);
  return { B: +m[1], T: +m[2], H: +m[3], Hkv: +m[4], D: +m[5] };
}

/** Makes tensors (seeded when a seed is given) and releases all it made at once. */
export function tensorMaker(gpu: Gpu): { make: (shape: number[], label: string, seed?: number) => Tensor; releaseAll: () => void } {
  const made: Tensor[] = [];
  return {
    make: (shape, label, seed) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = gpu.tensor(shape, 'f32', label, seed === undefined ? undefined : seededUniform(n, seed));
      made.push(x);
      return x;
    },
    releaseAll: () => {
      for (const x of made.splice(0)) x.release();
    },
  };
}

export interface VariantBench<Shape> {
  /** The --shapes default, comma-separated. */
  defaultShapes: string;
  parseShape(s: string): Shape;
  bench(gpu: Gpu, shapes: Shape[], reps: number): Promise<BenchRow[]>;
  /** The table's title. */
  title: string;
  /** results/<name>.json */
  name: string;
}

/** Parses `--shapes`, `--reps`, `--software`, runs the benchmark on one device, prints and writes it. */
export async function runVariantBench<Shape>(argv: string[], b: VariantBench<Shape>): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { shapes: { type: 'string', default: b.defaultShapes }, reps: { type: 'string', default: '7' }, software: { type: 'boolean', default: false } },
  });
  const shapes = values.shapes!.split(',').map((s) => b.parseShape(s));
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got ${values.reps}`);
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  try {
    console.log(`adapter: ${adapterName(gpu.info)}`);
    const rows = await b.bench(gpu, shapes, reps);
    printTable(b.title, rows);
    console.log(`\nwrote ${writeResults(b.name, { adapter: adapterName(gpu.info), info: gpu.info, reps, rows })}`);
  } finally {
    gpu.destroy();
  }
  return 0;
}
