// Causal attention benchmark: flash kernels (attention_fa2.wgsl where it applies, else
// attention.wgsl) against the naive version that materialises the [B, H, T, T] scores
// (attention_naive.wgsl), on the same device. Times are
// medians of timeGpu (record, submit, wait); memory is the intermediates each needs beyond
// q, k, v, out and their gradients.
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import {
  attentionBackward,
  attentionExtraBytes,
  attentionForward,
  attentionTiles,
  attentionVariant,
  type AttentionDims,
} from '../../src/kernels/attention.ts';
import { fa2Tiles } from '../../src/kernels/attention-fa2.ts';
import {
  attentionNaiveBackward,
  attentionNaiveExtraBytes,
  attentionNaiveForward,
} from '../../src/kernels/attention-naive.ts';
import type { BenchRow } from './table.ts';
import { timeGpu } from './timing.ts';
import { seededUniform } from './variant-bench.ts';

const MiB = 1 << 20;


/** The tiles the flash kernels run: variant 2's rows × tile where it applies, else variant 1's BR × BC (forward/dq/dkdv). */
function tilesText(gpu: Gpu, dims: AttentionDims): string {
  if (attentionVariant('bench', dims) === 2) {
    const t = fa2Tiles(gpu, dims);
    return `v2 ${t.forward.rows}×${t.forward.tile}/${t.dq.rows}×${t.dq.tile}/${t.dkdv.rows}×${t.dkdv.tile}`;
  }
  const t = attentionTiles(gpu, dims.D);
  return `v1 ${t.forward.BR}×${t.forward.BC}/${t.dq.BR}×${t.dq.BC}/${t.dkdv.BR}×${t.dkdv.BC}`;
}

export async function benchAttention(
  gpu: Gpu,
  opts: { Ts: number[]; reps: number; B?: number; H?: number; D?: number },
): Promise<BenchRow[]> {
  const B = opts.B ?? 1;
  const H = opts.H ?? 8;
  const D = opts.D ?? 64;
  const Hkv = H;
  const rows: BenchRow[] = [];
  for (const T of opts.Ts) {
    const dims: AttentionDims = { B, T, H, Hkv, D };
    const tileText = tilesText(gpu, dims);
    const made: Tensor[] = [];
    const t = (shape: number[], label: string, seed?: number) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = gpu.tensor(shape, 'f32', label, seed === undefined ? undefined : seededUniform(size, seed));
      made.push(x);
      return x;
    };
    const q = t([B, T, H, D], 'q', 1);
    const k = t([B, T, Hkv, D], 'k', 2);
    const v = t([B, T, Hkv, D], 'v', 3);
    const dout = t([B, T, H, D], 'dout', 4);
    const out = t([B, T, H, D], 'out');
    const lse = t([B, H, T], 'lse');
    const dq = t([B, T, H, D], 'dq');
    const dk = t([B, T, Hkv, D], 'dk');
    const dv = t([B, T, Hkv, D], 'dv');
    const timing = { reps: opts.reps, warmup: 1 };

    const fwd = await timeGpu(gpu, () => attentionForward(gpu, q, k, v, out, lse, dims), timing);
    const naiveFwd = await timeGpu(gpu, () => attentionNaiveForward(gpu, q, k, v, out, lse, dims), timing);
    const both = await timeGpu(
      gpu,
      () => {
        attentionForward(gpu, q, k, v, out, lse, dims);
        attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dv, dims);
      },
      timing,
    );
    const naiveBoth = await timeGpu(
      gpu,
      () => {
        attentionNaiveForward(gpu, q, k, v, out, lse, dims);
        attentionNaiveBackward(gpu, q, k, v, out, lse, dout, dq, dk, dv, dims);
      },
      timing,
    );
    for (const x of made) x.release();

    // Causal: half of the T×T score entries, 2 matmul-like products forward, 5 backward.
    const fwdFlop = 2 * 2 * B * H * ((T * (T + 1)) / 2) * D;
    const ours = attentionExtraBytes(dims);
    const naive = attentionNaiveExtraBytes(dims);
    rows.push({
      T,
      'B×H×D': `${B}×${H}×${D}`,
      tiles: tileText,
      'fwd ms': fwd.medianMs,
      'naive fwd ms': naiveFwd.medianMs,
      'fwd speedup': naiveFwd.medianMs / fwd.medianMs,
      'fwd GFLOP/s': fwdFlop / (fwd.medianMs * 1e6),
      'fwd+bwd ms': both.medianMs,
      'naive fwd+bwd ms': naiveBoth.medianMs,
      'fwd+bwd speedup': naiveBoth.medianMs / both.medianMs,
      // Peak intermediates over forward + backward. Ours: lse and D_i, O(T). Naive: lse,
      // then P and dP/dS in the backward, O(T²).
      'extra MiB': ours.peak / MiB,
      'naive extra MiB': naive.peak / MiB,
    });
  }
  return rows;
}
