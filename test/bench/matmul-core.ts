// `npm run bench -- matmul-core [--shapes MxNxK:op,...] [--reps N] [--software]`: matmul
// variant 1 (shaders/matmul.wgsl) beside variant 2 (shaders/matmul_core.wgsl, the plan this
// adapter gets) on training-like shapes, interleaved rep by rep (v1, v2, v1, v2, …) so a load
// change on a shared machine hits both alike; the two outputs must agree first. On a software
// adapter these are CPU numbers: they can show a kernel is not slower here, not GPU speed.
import type { Gpu } from '../../src/gpu/gpu.ts';
import { matmul, matmulCorePlan, matmulTile, type MatmulOptions } from '../../src/kernels/matmul.ts';
import type { BenchRow } from './table.ts';
import { median, relDiff, runVariantBench, seededUniform } from './variant-bench.ts';

/** Training layouts at CPU-sized scale: forward (A·Bᵀ), input gradient (A·B), weight gradient (Aᵀ·B). */
const DEFAULT_SHAPES = '512x512x512:NN,1024x256x256:NT,1024x256x256:NN,256x256x1024:TN,512x688x256:NT,256x688x1024:TN';

function parseShape(s: string): MatmulOptions {
  const m = /^(\d+)x(\d+)x(\d+):([NT])([NT])$/.exec(s.trim());
  if (!m) throw new Error(`--shapes: '${s}' is not MxNxK:OP with OP one of NN, NT, TN, TT (e.g. 512x256x512:NT)`);
  return { M: +m[1], N: +m[2], K: +m[3], transA: m[4] === 'T', transB: m[5] === 'T' };
}




export async function benchMatmulCore(gpu: Gpu, shapes: MatmulOptions[], reps: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const shape of shapes) {
    const { M, N, K } = shape;
    const a = gpu.tensor([M * K], 'f32', 'A', seededUniform(M * K, 1));
    const b = gpu.tensor([K * N], 'f32', 'B', seededUniform(K * N, 2));
    const c1 = gpu.tensor([M * N], 'f32', 'C1');
    const c2 = gpu.tensor([M * N], 'f32', 'C2');
    const run = async (variant: 1 | 2, c: typeof c1) => {
      const t0 = performance.now();
      matmul(gpu, a, b, c, { ...shape, variant });
      await gpu.sync();
      return performance.now() - t0;
    };
    // Warm-up (pipeline compilation) and the agreement check.
    await run(1, c1);
    await run(2, c2);
    const diff = relDiff(await gpu.readF32(c2), await gpu.readF32(c1));
    const t1: number[] = [];
    const t2: number[] = [];
    for (let r = 0; r < reps; r++) {
      t1.push(await run(1, c1));
      t2.push(await run(2, c2));
    }
    const tile = matmulTile(gpu, M, N);
    const plan = matmulCorePlan(gpu, M, N, K);
    const flops = 2 * M * N * K;
    const [m1, m2] = [median(t1), median(t2)];
    rows.push({
      shape: `${M}×${N}×${K}`,
      op: `${shape.transA ? 'Aᵀ' : 'A'}·${shape.transB ? 'Bᵀ' : 'B'}`,
      'v1 tile': `${4 * tile.wg}×${4 * tile.wg}`,
      'v2 tile': `${plan.name.replace('x', '×')}${plan.splits > 1 ? ` split ${plan.splits}` : ''}`,
      reps,
      'v1 ms': m1,
      'v2 ms': m2,
      'v1 GFLOP/s': flops / (m1 * 1e6),
      'v2 GFLOP/s': flops / (m2 * 1e6),
      'v2 / v1 time': m2 / m1,
      rel_diff: diff,
    });
    for (const t of [a, b, c1, c2]) t.release();
  }
  return rows;
}

export function runMatmulCoreBench(argv: string[]): Promise<number> {
  return runVariantBench(argv, { defaultShapes: DEFAULT_SHAPES, parseShape, bench: benchMatmulCore, title: 'matmul variant 1 vs variant 2, interleaved rep by rep (median ms; one product per submit)', name: 'matmul-core' });
}
