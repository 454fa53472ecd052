// What the kernel benchmarks share: seeded inputs, and the command of a "variant 1 beside
// variant 2" benchmark (--shapes, --reps, --software; a table; JSON under results/).
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
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
