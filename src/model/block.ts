// One transformer block on the GPU: forward (saving what the backward needs) and backward
// (weight gradients and the residual-stream gradient), recorded with the kernels of
// src/kernels. The math is src/model/reference.ts's blockForward/blockBackward:
//
//   n1 = rmsnorm(x)·attnNorm; q, k, v = n1·wqᵀ, n1·wkᵀ, n1·wvᵀ; q, k = rope(q), rope(k)
//   ao = attention(q, k, v);  xMid = x + ao·woᵀ
//   n2 = rmsnorm(xMid)·mlpNorm; g, u = n2·wGateᵀ, n2·wUpᵀ; m = silu(g)·u;  y = xMid + m·wDownᵀ
//
// Legend (src/kernels/README.md): B batch, T time, N = B·T rows, C channels, H heads, Hkv kv
// heads, D = C/H head size (so H·D = C), F MLP width. Activations are [N, C] row-major.
//
// Saved per block (BlockActivations): rstd1, n1, q, k (after RoPE), v (or the packed path's
// q|k|v rows: unrotated with RoPE in attention, else rotated), ao, lse, xMid, rstd2, n2, g,
// u. The block input x and output y live in the slice's residual-stream buffers.
// m = silu(g)·u is not saved: the backward recomputes it (one cheap elementwise pass) to
// keep N·F floats per layer off the GPU. Shared by all blocks (BlockScratch): the pre-RoPE
// q and k of the forward, and every gradient temporary of the backward.
//
// Fused (packed) path, when wq|wk|wv and wGate|wUp lie back to back in one buffer (the
// slice's arenas place them so: PackedTensors): q, k, v come from one projection
// n1·[wq; wk; wv]ᵀ into rows [q | k | v] that one kernel unpacks with RoPE; g, u from one
// n2·[wGate; wUp]ᵀ saved as rows [g | u]; the backward packs dq | dk | dv (RoPE⁻¹ on the way)
// and dg | du so each pair or triple of weight- and input-gradient matmuls is one, and the
// SwiGLU backward recomputes m itself. 21 → 12 matmuls and 4 → 2 ropes per block, 3 → 2
// SwiGLU passes; results equal the split path's within float rounding (the input gradient
// sums over 2F or C + 2·Hkv·D in one matmul instead of two or three). Where attention
// variant 2 takes the head size with RoPE on load (D a multiple of 8: every preset;
// attention-qkv.ts), the projection's rows [q | k | v] are saved as they are and attention
// reads them, rotating q and k on load, and writes the packed dq | dk | dv itself: no RoPE
// dispatch either way (2 → 0 per block; hardware adapters: attentionQkvChosen). A software
// adapter hands attention the packed rows too, rotated by one ropeQkvPacked pass either side.
// On matmul variant 2
// (GPUs) the forward's SwiGLU is the down projection's A prologue (`aSwiglu`) and the
// backward's is the epilogue of the dm matmul (matmulSwigluBackward), and each RMSNorm the
// prologue of the projection after it (matmulRmsnorm, which also saves n and rstd), each
// computing what the separate pass would; split weight gradients reduce in the caller's SplitKGroup.
import type { Gpu } from '../gpu/gpu.ts';
import type { DType, Tensor } from '../gpu/tensor.ts';
import { attentionBackward, attentionForward } from '../kernels/attention.ts';
import { attentionQkvBackward, attentionQkvChosen, attentionQkvForward, attentionQkvProblem } from '../kernels/attention-qkv.ts';
import {
  matmul, matmulRmsnorm, matmulSplitElements, matmulSwigluBackward, matmulVariant, rmsnormMatmulFusable, swigluBackwardFusable,
} from '../kernels/matmul.ts';
import type { SplitKGroup } from '../kernels/matmul-split-group.ts';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.ts';
import { ropeBackward, ropeForward, ropeQkvBackward, ropeQkvForward, ropeQkvPacked } from '../kernels/rope.ts';
import { swigluBackward, swigluForward, swigluPackedBackward, swigluPackedForward } from '../kernels/swiglu.ts';
import type { BlockTensor } from './config.ts';

export interface BlockDims {
  B: number;
  T: number;
  /** B·T rows. */
  N: number;
  C: number;
  H: number;
  Hkv: number;
  D: number;
  F: number;
  ropeBase: number;
  eps: number;
}

/** The block's parameters (or their gradients), by BlockTensor name. */
export type BlockTensors = Record<BlockTensor, Tensor>;

/** Views over a block's back-to-back weights (or gradients): [wq; wk; wv] and [wGate; wUp]. */
export interface PackedTensors {
  qkv: Tensor; // [H·D + 2·Hkv·D, C]
  gu: Tensor; //  [2F, C]
}

/**
 * Where the two norms' dweight partial sums go when the caller reduces every norm of the
 * slice in one dispatch afterwards (rmsnormDweightReduce); null: each norm reduces itself.
 */
export interface NormPartials {
  attn: Tensor;
  mlp: Tensor;
}

/** A set of tensors allocated together and released together. */
export class TensorSet {
  readonly all: Tensor[] = [];
  constructor(readonly gpu: Gpu) {}

  make(shape: number[], label: string, dtype: DType = 'f32'): Tensor {
    const t = this.gpu.tensor(shape, dtype, label);
    this.all.push(t);
    return t;
  }

  /** Logical bytes of every tensor in the set. */
  get bytes(): number {
    return this.all.reduce((s, t) => s + t.byteLength, 0);
  }

  release(): void {
    for (const t of this.all) t.release();
    this.all.length = 0;
  }
}

/** What one block's backward needs from its forward. */
export interface BlockActivations {
  rstd1: Tensor; // [N]
  n1: Tensor; //    [N, C]
  /** Split path, or packed without RoPE in attention: q, k after RoPE, v. */
  q?: Tensor; //    [B, T, H, D]
  k?: Tensor; //    [B, T, Hkv, D]
  v?: Tensor; //    [B, T, Hkv, D]
  /** Packed path where attention reads the rows (qkvInAttention): [q | k | v], unrotated with RoPE in attention, else rotated. */
  qkv?: Tensor; //  [N, H·D + 2·Hkv·D]
  ao: Tensor; //    [B, T, H, D]   attention output
  lse: Tensor; //   [B, H, T]      attention row logsumexp
  xMid: Tensor; //  [N, C]         x + ao·woᵀ
  rstd2: Tensor; // [N]
  n2: Tensor; //    [N, C]
  /** Split path: gate pre-activation and up projection [N, F] each; packed path: gu. */
  g?: Tensor;
  u?: Tensor;
  /** Packed path: rows [g | u], [N, 2F]. */
  gu?: Tensor;
}

/** True when the packed path hands attention the projection's rows and RoPE runs inside it (attention-qkv.ts). */
export function ropeInAttention(gpu: Gpu, d: BlockDims, packed: boolean): boolean {
  return packed && attentionQkvChosen(gpu, d.D);
}

/** True when the packed path hands attention the q|k|v rows (attention-qkv.ts), with RoPE inside it or in a pass either side. */
export function qkvInAttention(d: BlockDims, packed: boolean): boolean {
  return packed && d.D % 2 === 0 && attentionQkvProblem(d.D, false) === null;
}

export function allocBlockActivations(set: TensorSet, d: BlockDims, layer: number, packed = false): BlockActivations {
  const { B, T, N, C, H, Hkv, D, F } = d;
  const name = (s: string) => `blocks.${layer}.${s}`;
  const qkv = qkvInAttention(d, packed)
    ? { qkv: set.make([N, C + 2 * Hkv * D], name('q|k|v')) }
    : { q: set.make([B, T, H, D], name('q')), k: set.make([B, T, Hkv, D], name('k')), v: set.make([B, T, Hkv, D], name('v')) };
  return {
    rstd1: set.make([N], name('rstd1')),
    n1: set.make([N, C], name('n1')),
    ...qkv,
    ao: set.make([B, T, H, D], name('ao')),
    lse: set.make([B, H, T], name('lse')),
    xMid: set.make([N, C], name('xMid')),
    rstd2: set.make([N], name('rstd2')),
    n2: set.make([N, C], name('n2')),
    ...(packed ? { gu: set.make([N, 2 * F], name('gate|up')) } : { g: set.make([N, F], name('gate')), u: set.make([N, F], name('up')) }),
  };
}

/** Temporaries shared by every block (forward and backward of one block at a time). */
export interface BlockScratch {
  /** Forward: q before RoPE. Backward: dq after attention (before RoPE⁻¹). Not with RoPE in attention. */
  qa?: Tensor; // [N, H·D]
  /** Backward: d(ao), then dq (after RoPE⁻¹). */
  qb: Tensor; // [N, H·D]
  /** Forward: k before RoPE. Backward: dk after attention. Not with RoPE in attention. */
  ka?: Tensor; // [N, Hkv·D]
  /** Split path, backward: dk after RoPE⁻¹. */
  kb?: Tensor; // [N, Hkv·D]
  /** Backward: dv. Not with RoPE in attention. */
  dv?: Tensor; // [N, Hkv·D]
  /** Forward: m = silu(g)·u. Backward: m (recomputed), then dg. */
  f1: Tensor; // [N, F]
  /** Backward: dm. */
  f2: Tensor; // [N, F]
  /** Split path, backward: du. */
  f3?: Tensor; // [N, F]
  /** Packed path: forward q | k | v rows before RoPE (not with RoPE in attention), backward dq | dk | dv after RoPE⁻¹. */
  qkv?: Tensor; // [N, H·D + 2·Hkv·D]
  /** Packed path, backward: dg | du rows. */
  dgu?: Tensor; // [N, 2F]
  /** Backward: d(n2), then d(n1) (and the final norm's dy in the slice). */
  dn: Tensor; // [N, C]
}

export function allocBlockScratch(set: TensorSet, d: BlockDims, packed = false): BlockScratch {
  const { N, C, Hkv, D, F } = d;
  const split = () => ({
    kb: set.make([N, Hkv * D], 'scratch.kb'),
    f3: set.make([N, F], 'scratch.f3'),
  });
  const pack = () => ({
    qkv: set.make([N, C + 2 * Hkv * D], 'scratch.qkv'),
    dgu: set.make([N, 2 * F], 'scratch.dgu'),
  });
  const unfusedRope = () => ({
    qa: set.make([N, C], 'scratch.qa'),
    ka: set.make([N, Hkv * D], 'scratch.ka'),
    dv: set.make([N, Hkv * D], 'scratch.dv'),
  });
  return {
    ...(qkvInAttention(d, packed) ? {} : unfusedRope()),
    qb: set.make([N, C], 'scratch.qb'),
    f1: set.make([N, F], 'scratch.f1'),
    f2: set.make([N, F], 'scratch.f2'),
    dn: set.make([N, C], 'scratch.dn'),
    ...(packed ? pack() : split()),
  };
}

/**
 * y = block(x); x and y are [N, C] and distinct. Fills `a` for the backward. `wp`: the packed
 * views of `w` for the fused path (activations and scratch allocated with `packed`), or null.
 */
export function blockForward(
  gpu: Gpu, d: BlockDims, w: BlockTensors, wp: PackedTensors | null, x: Tensor, y: Tensor, a: BlockActivations, s: BlockScratch,
): void {
  const { B, T, N, C, H, Hkv, D, F, eps } = d;
  const KV = Hkv * D;
  const lin = (inp: Tensor, wt: Tensor, out: Tensor, o: number, i: number, beta = 0) =>
    matmul(gpu, inp, wt, out, { M: N, N: o, K: i, transB: true, beta });
  if (wp) {
    // out = rmsnorm(inp)·g · wᵀ, n and rstd saved: in the matmul's prologue where it can (variant 2)
    const normLin = (inp: Tensor, g: Tensor, wt: Tensor, out: Tensor, o: number, n: Tensor, rstd: Tensor) => {
      if (rmsnormMatmulFusable(gpu, { rows: N, C, out: o })) {
        matmulRmsnorm(gpu, inp, g, wt, out, n, rstd, { rows: N, C, out: o, eps });
      } else {
        rmsnormForward(gpu, inp, g, n, rstd, { N, C, eps });
        lin(n, wt, out, o, C);
      }
    };
    if (a.qkv && ropeInAttention(gpu, d, true)) {
      normLin(x, w.attnNorm, wp.qkv, a.qkv, C + 2 * KV, a.n1, a.rstd1); // rows [q | k | v], kept
      attentionQkvForward(gpu, a.qkv, a.ao, a.lse, { B, T, H, Hkv, D, ropeBase: d.ropeBase }); // RoPE on load
    } else if (a.qkv) {
      normLin(x, w.attnNorm, wp.qkv, s.qkv!, C + 2 * KV, a.n1, a.rstd1); //  rows [q | k | v]
      ropeQkvPacked(gpu, s.qkv!, a.qkv, { B, T, H, Hkv, D, base: d.ropeBase }, 1); // rotated rows, kept
      attentionQkvForward(gpu, a.qkv, a.ao, a.lse, { B, T, H, Hkv, D, rope: false });
    } else {
      normLin(x, w.attnNorm, wp.qkv, s.qkv!, C + 2 * KV, a.n1, a.rstd1); // rows [q | k | v]
      ropeQkvForward(gpu, s.qkv!, a.q!, a.k!, a.v!, { B, T, H, Hkv, D, base: d.ropeBase });
      attentionForward(gpu, a.q!, a.k!, a.v!, a.ao, a.lse, { B, T, H, Hkv, D });
    }
    gpu.copy(x, a.xMid, x.byteLength);
    lin(a.ao, w.wo, a.xMid, C, C, 1);
    normLin(a.xMid, w.mlpNorm, wp.gu, a.gu!, 2 * F, a.n2, a.rstd2); //        rows [g | u]
    gpu.copy(a.xMid, y, a.xMid.byteLength);
    if (matmulVariant(gpu, {}) === 2) {
      // y += silu(g)·u · wDownᵀ with SwiGLU in the matmul's A prologue: m is never stored
      matmul(gpu, a.gu!, w.wDown, y, { M: N, N: C, K: F, transB: true, beta: 1, aSwiglu: true });
    } else {
      swigluPackedForward(gpu, a.gu!, s.f1, { N, F });
      lin(s.f1, w.wDown, y, C, F, 1);
    }
    return;
  }

  // attention branch
  rmsnormForward(gpu, x, w.attnNorm, a.n1, a.rstd1, { N, C, eps });
  lin(a.n1, w.wq, s.qa!, C, C);
  lin(a.n1, w.wk, s.ka!, KV, C);
  lin(a.n1, w.wv, a.v!, KV, C);
  ropeForward(gpu, s.qa!, a.q!, { B, T, H, D, base: d.ropeBase });
  ropeForward(gpu, s.ka!, a.k!, { B, T, H: Hkv, D, base: d.ropeBase });
  attentionForward(gpu, a.q!, a.k!, a.v!, a.ao, a.lse, { B, T, H, Hkv, D });
  gpu.copy(x, a.xMid, x.byteLength); // xMid = x, then += ao·woᵀ (x stays for the backward)
  lin(a.ao, w.wo, a.xMid, C, C, 1);

  // MLP branch
  rmsnormForward(gpu, a.xMid, w.mlpNorm, a.n2, a.rstd2, { N, C, eps });
  lin(a.n2, w.wGate, a.g!, F, C);
  lin(a.n2, w.wUp, a.u!, F, C);
  swigluForward(gpu, a.g!, a.u!, s.f1, { N, F });
  gpu.copy(a.xMid, y, a.xMid.byteLength);
  lin(s.f1, w.wDown, y, C, F, 1);
}

/** [out, in] of every weight gradient blockBackward computes (dW [out, in] = dYᵀ·X over N rows). */
export function blockWeightGradShapes(d: BlockDims, packed: boolean): [number, number][] {
  const { C, F } = d;
  const KV = d.Hkv * d.D;
  return packed
    ? [[C, F], [2 * F, C], [C, C], [C + 2 * KV, C]]
    : [[C, F], [F, C], [F, C], [C, C], [C, C], [KV, C], [KV, C]];
}

/** Split-K arena elements of one block's weight gradients (a SplitKGroup's share for the block). */
export function blockSplitKElements(gpu: Gpu, d: BlockDims, packed: boolean): number {
  return blockWeightGradShapes(d, packed).reduce((sum, [o, i]) => sum + matmulSplitElements(gpu, o, i, d.N), 0);
}

/**
 * Backward of one block. `dx` holds dy = ∂loss/∂y on entry and ∂loss/∂x on return (updated
 * in place along the residual stream). Weight gradients go into `g`: overwritten, or added
 * to when `accumulate`; with `splitK`, split weight gradients are complete only after the
 * caller's splitK.finish(). `packed`: the packed views of `w` and `g` (as in blockForward), or null.
 */
export function blockBackward(
  gpu: Gpu, d: BlockDims, w: BlockTensors, g: BlockTensors, packed: { w: PackedTensors; g: PackedTensors } | null,
  x: Tensor, a: BlockActivations, s: BlockScratch, dx: Tensor, accumulate: boolean, norms: NormPartials | null = null,
  splitK: SplitKGroup | null = null,
): void {
  const { B, T, N, C, H, Hkv, D, F, eps } = d;
  const KV = Hkv * D;
  const beta = accumulate ? 1 : 0;
  // dW [out, in] (+)= dYᵀ·X with dY [N, out], X [N, in]; a split-K reduction goes to splitK
  const dW = (dy: Tensor, inp: Tensor, dw: Tensor, o: number, i: number) =>
    matmul(gpu, dy, inp, dw, { M: o, N: i, K: N, transA: true, beta, splitGroup: splitK ?? undefined });
  // dX [N, in] (+)= dY·W with W [out, in]
  const dX = (dy: Tensor, wt: Tensor, out: Tensor, o: number, i: number, b = 0) =>
    matmul(gpu, dy, wt, out, { M: N, N: i, K: o, beta: b });

  if (packed) {
    blockBackwardPacked(gpu, d, w, g, packed.w, packed.g, x, a, s, dx, accumulate, norms, splitK);
    return;
  }
  // MLP branch: y = xMid + m·wDownᵀ
  swigluForward(gpu, a.g!, a.u!, s.f1, { N, F }); // m, recomputed
  dW(dx, s.f1, g.wDown, C, F);
  dX(dx, w.wDown, s.f2, C, F); //                  dm
  swigluBackward(gpu, a.g!, a.u!, s.f2, s.f1, s.f3!, { N, F }); // dg → f1, du → f3
  dW(s.f1, a.n2, g.wGate, F, C);
  dW(s.f3!, a.n2, g.wUp, F, C);
  dX(s.f1, w.wGate, s.dn, F, C);
  dX(s.f3!, w.wUp, s.dn, F, C, 1);
  rmsnormBackward(gpu, a.xMid, w.mlpNorm, a.rstd2, s.dn, dx, g.mlpNorm, { N, C, eps }, { accumulate, accumulateDx: true, partials: norms?.mlp });

  // attention branch: xMid = x + ao·woᵀ   (dx now holds ∂loss/∂xMid)
  dW(dx, a.ao, g.wo, C, C);
  dX(dx, w.wo, s.qb, C, C); //                     d(ao)
  attentionBackward(gpu, a.q!, a.k!, a.v!, a.ao, a.lse, s.qb, s.qa!, s.ka!, s.dv!, { B, T, H, Hkv, D });
  ropeBackward(gpu, s.qa!, s.qb, { B, T, H, D, base: d.ropeBase }); //      dq → qb
  ropeBackward(gpu, s.ka!, s.kb!, { B, T, H: Hkv, D, base: d.ropeBase }); // dk → kb
  dW(s.qb, a.n1, g.wq, C, C);
  dW(s.kb!, a.n1, g.wk, KV, C);
  dW(s.dv!, a.n1, g.wv, KV, C);
  dX(s.qb, w.wq, s.dn, C, C);
  dX(s.kb!, w.wk, s.dn, KV, C, 1);
  dX(s.dv!, w.wv, s.dn, KV, C, 1);
  rmsnormBackward(gpu, x, w.attnNorm, a.rstd1, s.dn, dx, g.attnNorm, { N, C, eps }, { accumulate, accumulateDx: true, partials: norms?.attn });
}

/** blockBackward's fused path: packed projections (see the header). */
function blockBackwardPacked(
  gpu: Gpu, d: BlockDims, w: BlockTensors, g: BlockTensors, wp: PackedTensors, gp: PackedTensors, x: Tensor,
  a: BlockActivations, s: BlockScratch, dx: Tensor, accumulate: boolean, norms: NormPartials | null, splitK: SplitKGroup | null,
): void {
  const { B, T, N, C, H, Hkv, D, F, eps } = d;
  const QKV = C + 2 * Hkv * D;
  const beta = accumulate ? 1 : 0;
  const dW = (dy: Tensor, inp: Tensor, dw: Tensor, o: number, i: number) =>
    matmul(gpu, dy, inp, dw, { M: o, N: i, K: N, transA: true, beta, splitGroup: splitK ?? undefined });
  const dX = (dy: Tensor, wt: Tensor, out: Tensor, o: number, i: number) => matmul(gpu, dy, wt, out, { M: N, N: i, K: o });

  // MLP branch: y = xMid + m·wDownᵀ, m = silu(g)·u
  if (swigluBackwardFusable(gpu, { rows: N, C, F })) {
    matmulSwigluBackward(gpu, dx, w.wDown, a.gu!, s.dgu!, s.f1, { rows: N, C, F }); // dm → dg | du, and m → f1
  } else {
    dX(dx, w.wDown, s.f2, C, F); //                                      dm
    swigluPackedBackward(gpu, a.gu!, s.f2, s.dgu!, s.f1, { N, F }); //   dg | du, and m → f1
  }
  dW(dx, s.f1, g.wDown, C, F);
  dW(s.dgu!, a.n2, gp.gu, 2 * F, C); //                                   d[wGate; wUp]
  dX(s.dgu!, wp.gu, s.dn, 2 * F, C); //                                   d(n2)
  rmsnormBackward(gpu, a.xMid, w.mlpNorm, a.rstd2, s.dn, dx, g.mlpNorm, { N, C, eps }, { accumulate, accumulateDx: true, partials: norms?.mlp });

  // attention branch: xMid = x + ao·woᵀ
  dW(dx, a.ao, g.wo, C, C);
  dX(dx, w.wo, s.qb, C, C); //                                           d(ao)
  if (a.qkv && ropeInAttention(gpu, d, true)) {
    attentionQkvBackward(gpu, a.qkv, a.ao, a.lse, s.qb, s.qkv!, { B, T, H, Hkv, D, ropeBase: d.ropeBase }); // dq | dk | dv, RoPE⁻¹ inside
  } else if (a.qkv) {
    const rotated = gpu.tensor([N, QKV], 'f32', 'scratch.dqkv rotated'); // pooled: reused after this submit
    attentionQkvBackward(gpu, a.qkv, a.ao, a.lse, s.qb, rotated, { B, T, H, Hkv, D, rope: false });
    ropeQkvPacked(gpu, rotated, s.qkv!, { B, T, H, Hkv, D, base: d.ropeBase }, -1); //     dq | dk | dv
    rotated.release();
  } else {
    attentionBackward(gpu, a.q!, a.k!, a.v!, a.ao, a.lse, s.qb, s.qa!, s.ka!, s.dv!, { B, T, H, Hkv, D });
    ropeQkvBackward(gpu, s.qa!, s.ka!, s.dv!, s.qkv!, { B, T, H, Hkv, D, base: d.ropeBase }); // dq | dk | dv
  }
  dW(s.qkv!, a.n1, gp.qkv, QKV, C); //                                    d[wq; wk; wv]
  dX(s.qkv!, wp.qkv, s.dn, QKV, C); //                                    d(n1)
  rmsnormBackward(gpu, x, w.attnNorm, a.rstd1, s.dn, dx, g.attnNorm, { N, C, eps }, { accumulate, accumulateDx: true, partials: norms?.attn });
}
