// `npm run bench -- attention-fa2 [--shapes BxTxHxHkvxD,...] [--reps N] [--software]`:
// attention variant 1 (shaders/attention.wgsl) beside variant 2 (shaders/attention_fa2.wgsl)
// on the presets' head shapes, interleaved rep by rep (v1, v2, v1, v2, …) so a load change on
// a shared machine hits both alike; the two variants' outputs must agree first. On a
// software adapter these are CPU numbers: a ratio there says little about a GPU, where
// variant 2's registers and broadcast tiles are what matter (`bench static` models those).
import type { Gpu } from '../../src/gpu/gpu.ts';
import { attentionBackward, attentionForward, attentionTiles, type AttentionDims } from '../../src/kernels/attention.ts';
import { fa2Tiles } from '../../src/kernels/attention-fa2.ts';
import type { BenchRow } from './table.ts';
import { median, parseAttentionShape, runVariantBench, tensorMaker } from './variant-bench.ts';

/** tiny's heads (D = 16, GQA 4/2), small's (D = 64, GQA 4/2) and base's (D = 64, 12 heads), at CPU-sized T. */
const DEFAULT_SHAPES = '4x64x4x2x16,1x256x4x2x64,1x128x12x12x64';



function maxRelDiff(xs: Float32Array[], ys: Float32Array[]): number {
  let worst = 0;
  for (let t = 0; t < xs.length; t++) {
    let num = 0;
    let den = 0;
    for (let i = 0; i < xs[t].length; i++) {
      num += (xs[t][i] - ys[t][i]) ** 2;
      den += ys[t][i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-30)));
  }
  return worst;
}


export async function benchAttentionFa2(gpu: Gpu, shapes: AttentionDims[], reps: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const dims of shapes) {
    const { B, T, H, Hkv, D } = dims;
    const { make: t, releaseAll } = tensorMaker(gpu);
    const [q, k, v, dout] = [t([B, T, H, D], 'q', 1), t([B, T, Hkv, D], 'k', 2), t([B, T, Hkv, D], 'v', 3), t([B, T, H, D], 'dout', 4)];
    const outs = [1, 2].map((n) => ({
      out: t([B, T, H, D], `out${n}`),
      lse: t([B, H, T], `lse${n}`),
      dq: t([B, T, H, D], `dq${n}`),
      dk: t([B, T, Hkv, D], `dk${n}`),
      dv: t([B, T, Hkv, D], `dv${n}`),
    }));
    const run = async (variant: 1 | 2, backward: boolean) => {
      const o = outs[variant - 1];
      const d = { ...dims, variant };
      const t0 = performance.now();
      attentionForward(gpu, q, k, v, o.out, o.lse, d);
      if (backward) attentionBackward(gpu, q, k, v, o.out, o.lse, dout, o.dq, o.dk, o.dv, d);
      await gpu.sync();
      return performance.now() - t0;
    };
    // Warm-up (pipeline compilation) and the agreement check.
    await run(1, true);
    await run(2, true);
    const read = async (o: (typeof outs)[number]) => Promise.all([o.out, o.lse, o.dq, o.dk, o.dv].map((x) => gpu.readF32(x)));
    const diff = maxRelDiff(await read(outs[1]), await read(outs[0]));
    const times = { f1: [] as number[], f2: [] as number[], b1: [] as number[], b2: [] as number[] };
    for (let r = 0; r < reps; r++) {
      times.f1.push(await run(1, false));
      times.f2.push(await run(2, false));
      times.b1.push(await run(1, true));
      times.b2.push(await run(2, true));
    }
    releaseAll();
    const v1 = attentionTiles(gpu, D);
    const v2 = fa2Tiles(gpu, dims);
    const [f1, f2, b1, b2] = [median(times.f1), median(times.f2), median(times.b1), median(times.b2)];
    const fwdFlop = 2 * 2 * B * H * ((T * (T + 1)) / 2) * D;
    rows.push({
      'B×T×H/Hkv×D': `${B}×${T}×${H}/${Hkv}×${D}`,
      'v1 fwd tile': `${v1.forward.BR}×${v1.forward.BC}`,
      'v2 fwd tile': `${v2.forward.rows}×${v2.forward.tile}`,
      reps,
      'v1 fwd ms': f1,
      'v2 fwd ms': f2,
      'v2/v1 fwd': f2 / f1,
      'v2 fwd GFLOP/s': fwdFlop / (f2 * 1e6),
      'v1 fwd+bwd ms': b1,
      'v2 fwd+bwd ms': b2,
      'v2/v1 fwd+bwd': b2 / b1,
      rel_diff: diff,
    });
  }
  return rows;
}

export function runAttentionFa2Bench(argv: string[]): Promise<number> {
  return runVariantBench(argv, { defaultShapes: DEFAULT_SHAPES, parseShape: parseAttentionShape, bench: benchAttentionFa2, title: 'attention variant 1 vs variant 2, interleaved rep by rep (median ms per submit)', name: 'attention-fa2' });
}
