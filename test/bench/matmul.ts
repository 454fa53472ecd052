// Square f32 matmul: ours beside tfjs-backend-webgpu's tf.matMul, in the same process on the
// very same GPUDevice (tfjs gets a WebGPUBackend built on gpu.device), so the ratio compares
// kernels, not adapters. Both are timed the same way: record `inner` products, submit, wait
// for the queue; median over reps. On a software adapter these are CPU numbers.
import * as tf from '@tensorflow/tfjs-core';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { matmul, matmulCorePlan, matmulTile, matmulVariant } from '../../src/kernels/matmul.ts';
import type { BenchRow } from './table.ts';
import { finishTfjs, releaseTfjs, tfjsBackendOn } from './tfjs-webgpu.ts';
import { timeAsync, timeGpu } from './timing.ts';
import { relDiff, seededUniform } from './variant-bench.ts';

/** Products per timed submit: enough work that submit overhead does not dominate on a real GPU. */
function innerReps(gpu: Gpu, n: number): number {
  if (gpu.info.isSoftware) return 1;
  return Math.max(1, Math.min(64, Math.round(2e9 / (2 * n ** 3))));
}

export async function benchMatmul(gpu: Gpu, opts: { sizes: number[]; reps: number }): Promise<BenchRow[]> {
  const backend = await tfjsBackendOn(gpu);
  const rows: BenchRow[] = [];
  try {
    for (const n of opts.sizes) {
      const inner = innerReps(gpu, n);
      const flops = 2 * n ** 3 * inner;
      const aData = seededUniform(n * n, 1);
      const bData = seededUniform(n * n, 2);

      const a = gpu.tensor([n, n], 'f32', 'A', aData);
      const b = gpu.tensor([n, n], 'f32', 'B', bData);
      const c = gpu.tensor([n, n], 'f32', 'C');
      const ours = await timeGpu(
        gpu,
        () => {
          for (let i = 0; i < inner; i++) matmul(gpu, a, b, c, { M: n, N: n, K: n });
        },
        { reps: opts.reps },
      );
      const oursOut = await gpu.readF32(c);
      a.release();
      b.release();
      c.release();

      const ta = tf.tensor2d(aData, [n, n]);
      const tb = tf.tensor2d(bData, [n, n]);
      // Same inputs, same product: the two must agree before their times mean anything.
      const check = tf.matMul(ta, tb);
      const diff = relDiff(oursOut, (await check.data()) as Float32Array);
      check.dispose();
      const theirs = await timeAsync(
        async () => {
          for (let i = 0; i < inner; i++) tf.matMul(ta, tb).dispose();
          await finishTfjs(backend, gpu);
        },
        { reps: opts.reps },
      );
      ta.dispose();
      tb.dispose();

      const tile = matmulTile(gpu, n, n);
      const plan = matmulCorePlan(gpu, n, n, n);
      // The variant matmul picks on this adapter (variant 2 on hardware, 1 on software).
      const tileLabel = matmulVariant(gpu, {}) === 2
        ? `v2 ${plan.name.replace('x', '×')}×${plan.tile.tk}${plan.splits > 1 ? ` split ${plan.splits}` : ''}`
        : `v1 ${4 * tile.wg}×${4 * tile.wg}×${tile.tk}`;
      const oursGflops = flops / (ours.medianMs * 1e6);
      const tfjsGflops = flops / (theirs.medianMs * 1e6);
      rows.push({
        kernel: 'matmul',
        size: `${n}³`,
        tile: tileLabel,
        inner,
        ours_ms: ours.medianMs / inner,
        ours_gflops: oursGflops,
        tfjs_ms: theirs.medianMs / inner,
        tfjs_gflops: tfjsGflops,
        ratio: oursGflops / tfjsGflops,
        rel_diff: diff,
      });
    }
  } finally {
    // Frees tfjs's buffers; the device itself stays ours.
    releaseTfjs();
  }
  return rows;
}


