// `npm run bench -- attention-rope [--shapes BxTxHxHkvxD,...] [--reps N] [--software]`:
// attention off the fused projection with RoPE on load (attention-qkv.ts, one forward and
// two backward dispatches) beside the passes it replaced (ropeQkvForward + attentionForward,
// attentionBackward + ropeQkvBackward), both variant 2, interleaved rep by rep so a load
// change hits both alike; outputs must agree first. The passes side takes separate q, k, v,
// which variant 2 copies into one buffer first (copies, not dispatches). On a software
// adapter these are CPU numbers.
import type { Gpu } from '../../src/gpu/gpu.ts';
import { attentionBackward, attentionForward, type AttentionDims } from '../../src/kernels/attention.ts';
import { attentionQkvBackward, attentionQkvForward } from '../../src/kernels/attention-qkv.ts';
import { ropeQkvBackward, ropeQkvForward } from '../../src/kernels/rope.ts';
import type { BenchRow } from './table.ts';
import { median, parseAttentionShape, relDiff, runVariantBench, tensorMaker } from './variant-bench.ts';

/** tiny's heads (D = 16), small's (D = 64, GQA 4/2) and base's (D = 64, 12 heads), at CPU-sized T. */
const DEFAULT_SHAPES = '4x64x4x2x16,1x256x4x2x64,1x128x12x12x64';




export async function benchAttentionRope(gpu: Gpu, shapes: AttentionDims[], reps: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const dims of shapes) {
    const { B, T, H, Hkv, D } = dims;
    const N = B * T;
    const W = (H + 2 * Hkv) * D;
    const { make: t, releaseAll } = tensorMaker(gpu);
    const [qkv, dout] = [t([N, W], 'qkv', 1), t([N, H * D], 'dout', 2)];
    const [q, k, v, dq, dk, dv] = [t([N, H * D], 'q'), t([N, Hkv * D], 'k'), t([N, Hkv * D], 'v'), t([N, H * D], 'dq'), t([N, Hkv * D], 'dk'), t([N, Hkv * D], 'dv')];
    const outs = [0, 1].map((n) => ({ out: t([N, H * D], `out${n}`), lse: t([B, H, T], `lse${n}`), dqkv: t([N, W], `dqkv${n}`) }));
    const rope = { B, T, H, Hkv, D, base: 10000 };
    const run = async (fused: boolean, backward: boolean) => {
      const o = outs[fused ? 1 : 0];
      const t0 = performance.now();
      if (fused) {
        attentionQkvForward(gpu, qkv, o.out, o.lse, dims);
        if (backward) attentionQkvBackward(gpu, qkv, o.out, o.lse, dout, o.dqkv, dims);
      } else {
        ropeQkvForward(gpu, qkv, q, k, v, rope);
        attentionForward(gpu, q, k, v, o.out, o.lse, dims);
        if (backward) {
          attentionBackward(gpu, q, k, v, o.out, o.lse, dout, dq, dk, dv, dims);
          ropeQkvBackward(gpu, dq, dk, dv, o.dqkv, rope);
        }
      }
      await gpu.sync();
      return performance.now() - t0;
    };
    await run(false, true); // warm-up (compiles) and the agreement check
    await run(true, true);
    let diff = 0;
    for (const key of ['out', 'lse', 'dqkv'] as const) diff = Math.max(diff, relDiff(await gpu.readF32(outs[1][key]), await gpu.readF32(outs[0][key])));
    const times = { fp: [] as number[], ff: [] as number[], bp: [] as number[], bf: [] as number[] };
    for (let r = 0; r < reps; r++) {
      times.fp.push(await run(false, false));
      times.ff.push(await run(true, false));
      times.bp.push(await run(false, true));
      times.bf.push(await run(true, true));
    }
    releaseAll();
    const [fp, ff, bp, bf] = [median(times.fp), median(times.ff), median(times.bp), median(times.bf)];
    rows.push({
      'B×T×H/Hkv×D': `${B}×${T}×${H}/${Hkv}×${D}`,
      reps,
      'passes fwd ms': fp,
      'fused fwd ms': ff,
      'fused/passes fwd': ff / fp,
      'passes fwd+bwd ms': bp,
      'fused fwd+bwd ms': bf,
      'fused/passes fwd+bwd': bf / bp,
      rel_diff: diff,
    });
  }
  return rows;
}

export function runAttentionRopeBench(argv: string[]): Promise<number> {
  return runVariantBench(argv, {
    defaultShapes: DEFAULT_SHAPES, parseShape: parseAttentionShape, bench: benchAttentionRope,
    title: 'attention with RoPE on load vs RoPE passes + attention (variant 2), interleaved rep by rep (median ms per submit)', name: 'attention-rope',
  });
}
