// Float64 CPU reference of the model (or of a pipeline slice of it): forward, loss, and a
// hand-written backward giving every parameter gradient. Written llm.c-style for clarity,
// not speed: one forward/backward pair per layer type, each with its shape legend
// (reference-layers.ts), composed here into a block and a slice. It is the ground truth the
// GPU model is tested against (and is itself tested against finite differences in
// test/model/reference.test.ts).
//
// Legend (src/kernels/README.md): B batch, T time, C channels, V vocab, F MLP width, H heads,
// Hkv kv heads, D = C/H head size, N = B·T rows. Activations are [N, C] row-major; linear
// weights are [out, in] and y = x·Wᵀ; q is [B, T, H, D], k and v are [B, T, Hkv, D].
//
// Model: x = embedding[tokens]; per block l:
//   x = x + wo·attn(rope(wq·n1), rope(wk·n1), wv·n1),  n1 = rmsnorm(x, attnNorm)
//   x = x + wDown·(silu(wGate·n2) ∘ (wUp·n2)),          n2 = rmsnorm(x, mlpNorm)
// then logits = rmsnorm(x, finalNorm)·headᵀ (head = embedding when tied) and the loss is the
// mean cross-entropy over targets ≠ −1 (0 when every target is −1).
//
// Slices: a stage holding layers [from, to) takes tokens when from = 0, else activations
// x [N, C] from the stage before; it ends in the loss when to = layers, else hands its
// activations on. Its backward takes dOut = ∂loss/∂out [N, C] (when to < layers) and returns
// dx = ∂loss/∂x (when from > 0) along with its own parameters' gradients. See config.ts for
// how a tied embedding is split between the first and last stage.
import { type ModelConfig, blockParamName, parameterLayout, validateConfig, validateSlice } from './config.ts';
import {
  attentionBackward, attentionForward, crossEntropyBackward, crossEntropyForward, linearBackward, linearForward,
  rmsnormBackward, rmsnormForward, rope, swigluBackward, swigluForward,
} from './reference-layers.ts';

export type ParamArray = Float32Array | Float64Array;
export type ParamMap = ReadonlyMap<string, ParamArray>;

export class ReferenceInputError extends Error {
  constructor(message: string) {
    super(`model reference: ${message}`);
    this.name = 'ReferenceInputError';
  }
}

// ---- one transformer block ----

interface BlockWeights {
  attnNorm: ArrayLike<number>; wq: ArrayLike<number>; wk: ArrayLike<number>; wv: ArrayLike<number>; wo: ArrayLike<number>;
  mlpNorm: ArrayLike<number>; wGate: ArrayLike<number>; wUp: ArrayLike<number>; wDown: ArrayLike<number>;
}

/** Everything the block's backward needs from its forward. */
interface BlockCache {
  x: Float64Array; n1: Float64Array; rstd1: Float64Array; qr: Float64Array; kr: Float64Array; v: Float64Array;
  att: Float64Array; ao: Float64Array; x1: Float64Array; n2: Float64Array; rstd2: Float64Array;
  g: Float64Array; u: Float64Array; h: Float64Array;
}

interface Dims { B: number; T: number; N: number; C: number; H: number; Hkv: number; D: number; F: number; base: number; eps: number }

/** x [N, C] → x + attention → + MLP, returning the output [N, C] and the cache. */
function blockForward(x: Float64Array, w: BlockWeights, dm: Dims): { y: Float64Array; cache: BlockCache } {
  const { B, T, N, C, H, Hkv, D, F, base, eps } = dm;
  const { y: n1, rstd: rstd1 } = rmsnormForward(x, w.attnNorm, N, C, eps); //  [N, C]
  const q = linearForward(n1, w.wq, N, C, H * D); //                          [B, T, H, D]
  const k = linearForward(n1, w.wk, N, C, Hkv * D); //                        [B, T, Hkv, D]
  const v = linearForward(n1, w.wv, N, C, Hkv * D); //                        [B, T, Hkv, D]
  const qr = rope(q, B, T, H, D, base, 1);
  const kr = rope(k, B, T, Hkv, D, base, 1);
  const { out: ao, att } = attentionForward(qr, kr, v, { B, T, H, Hkv, D }); // [B, T, H, D], [B, H, T, T]
  const a = linearForward(ao, w.wo, N, H * D, C); //                          [N, C]
  const x1 = new Float64Array(N * C);
  for (let i = 0; i < x1.length; i++) x1[i] = x[i] + a[i];
  const { y: n2, rstd: rstd2 } = rmsnormForward(x1, w.mlpNorm, N, C, eps); // [N, C]
  const g = linearForward(n2, w.wGate, N, C, F); //                           [N, F]
  const u = linearForward(n2, w.wUp, N, C, F); //                             [N, F]
  const h = swigluForward(g, u); //                                           [N, F]
  const m = linearForward(h, w.wDown, N, F, C); //                            [N, C]
  const y = new Float64Array(N * C);
  for (let i = 0; i < y.length; i++) y[i] = x1[i] + m[i];
  return { y, cache: { x, n1, rstd1, qr, kr, v, att, ao, x1, n2, rstd2, g, u, h } };
}

/** dy [N, C] → dx [N, C]; accumulates into the block's gradients. */
function blockBackward(dy: Float64Array, w: BlockWeights, dw: BlockGrads, c: BlockCache, dm: Dims): Float64Array {
  const { B, T, N, C, H, Hkv, D, F, base } = dm;
  // MLP branch: y = x1 + m
  const dh = linearBackward(dy, c.h, w.wDown, dw.wDown, N, F, C); //           [N, F]
  const { dg, du } = swigluBackward(dh, c.g, c.u); //                        [N, F]
  const dn2 = linearBackward(dg, c.n2, w.wGate, dw.wGate, N, C, F); //        [N, C]
  const dn2u = linearBackward(du, c.n2, w.wUp, dw.wUp, N, C, F);
  for (let i = 0; i < dn2.length; i++) dn2[i] += dn2u[i];
  const dx1 = rmsnormBackward(dn2, c.x1, c.rstd2, w.mlpNorm, dw.mlpNorm, N, C);
  for (let i = 0; i < dx1.length; i++) dx1[i] += dy[i]; // residual
  // attention branch: x1 = x + wo·attn
  const dao = linearBackward(dx1, c.ao, w.wo, dw.wo, N, H * D, C); //        [B, T, H, D]
  const { dq: dqr, dk: dkr, dv } = attentionBackward(dao, c.qr, c.kr, c.v, c.att, { B, T, H, Hkv, D });
  const dq = rope(dqr, B, T, H, D, base, -1);
  const dk = rope(dkr, B, T, Hkv, D, base, -1);
  const dn1 = linearBackward(dq, c.n1, w.wq, dw.wq, N, C, H * D); //         [N, C]
  const dn1k = linearBackward(dk, c.n1, w.wk, dw.wk, N, C, Hkv * D);
  const dn1v = linearBackward(dv, c.n1, w.wv, dw.wv, N, C, Hkv * D);
  for (let i = 0; i < dn1.length; i++) dn1[i] += dn1k[i] + dn1v[i];
  const dx = rmsnormBackward(dn1, c.x, c.rstd1, w.attnNorm, dw.attnNorm, N, C);
  for (let i = 0; i < dx.length; i++) dx[i] += dx1[i]; // residual
  return dx;
}

type BlockGrads = { [K in keyof BlockWeights]: Float64Array };

// ---- the slice ----

export interface SliceInput {
  /** Token ids [N]; required when the slice starts at layer 0. */
  tokens?: Int32Array;
  /** Activations [N, C] from the previous stage; required when the slice starts later. */
  x?: ArrayLike<number>;
  /** Targets [N] (−1 ignored); required when the slice ends at the last layer. */
  targets?: Int32Array;
}

export interface SliceForwardResult {
  /** Mean cross-entropy (last stage only). */
  loss?: number;
  /** Logits [N, V] (last stage only). */
  logits?: Float64Array;
  /** Output activations [N, C] (every stage but the last). */
  out?: Float64Array;
}

export interface SliceBackwardResult {
  loss?: number;
  /** ∂loss/∂x [N, C] for the input activations (every stage but the first). */
  dx?: Float64Array;
  /** ∂loss/∂θ for every tensor of parameterLayout(cfg, from, to), by name. */
  grads: Map<string, Float64Array>;
}

function getParam(params: ParamMap, name: string, size: number): ParamArray {
  const p = params.get(name);
  if (!p) throw new ReferenceInputError(`missing parameter ${name}`);
  if (p.length !== size) throw new ReferenceInputError(`parameter ${name} has ${p.length} elements, expected ${size}`);
  return p;
}

function checkIds(what: string, ids: Int32Array | undefined, N: number, lo: number, V: number): Int32Array {
  if (!(ids instanceof Int32Array)) throw new ReferenceInputError(`${what} must be an Int32Array`);
  if (ids.length !== N) throw new ReferenceInputError(`${what} has ${ids.length} entries, expected B·T = ${N}`);
  for (let i = 0; i < N; i++) {
    if (ids[i] < lo || ids[i] >= V) throw new ReferenceInputError(`${what}[${i}] = ${ids[i]} is outside [${lo}, ${V})`);
  }
  return ids;
}

function runSlice(
  cfg: ModelConfig, from: number, to: number, params: ParamMap, input: SliceInput, B: number, T: number,
  backward: false | { dOut?: ArrayLike<number> },
): SliceForwardResult & Partial<SliceBackwardResult> {
  validateConfig(cfg);
  validateSlice(cfg, from, to);
  if (!Number.isInteger(B) || B < 1) throw new ReferenceInputError(`B must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T < 1 || T > cfg.seqLen) throw new ReferenceInputError(`T must be an integer in [1, ${cfg.seqLen}], got ${T}`);
  const L = cfg.layers;
  const { vocabSize: V, dim: C, heads: H, kvHeads: Hkv, mlpHidden: F } = cfg;
  const D = C / H;
  const N = B * T;
  const dm: Dims = { B, T, N, C, H, Hkv, D, F, base: cfg.ropeBase, eps: cfg.normEps };
  const layout = parameterLayout(cfg, from, to);
  for (const spec of layout) getParam(params, spec.name, spec.size);
  const first = from === 0;
  const last = to === L;
  const headName = cfg.tiedEmbeddings ? 'embedding' : 'head';

  // embedding [V, C]: x[n] = embedding[tokens[n]]   (or the previous stage's activations)
  let tokens: Int32Array | undefined;
  let x: Float64Array;
  if (first) {
    tokens = checkIds('tokens', input.tokens, N, 0, V);
    const emb = getParam(params, 'embedding', V * C);
    x = new Float64Array(N * C);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) x[n * C + c] = emb[tokens[n] * C + c];
  } else {
    if (!input.x || input.x.length !== N * C) throw new ReferenceInputError(`x must hold B·T·C = ${N * C} activations`);
    x = Float64Array.from(input.x);
  }
  const targets = last ? checkIds('targets', input.targets, N, -1, V) : undefined;

  const weights: BlockWeights[] = [];
  const caches: BlockCache[] = [];
  for (let l = from; l < to; l++) {
    const w = {} as Record<keyof BlockWeights, ArrayLike<number>>;
    for (const spec of layout) {
      const prefix = `blocks.${l}.`;
      if (spec.name.startsWith(prefix)) w[spec.name.slice(prefix.length) as keyof BlockWeights] = params.get(spec.name)!;
    }
    weights.push(w);
    const r = blockForward(x, w, dm);
    caches.push(r.cache);
    x = r.y;
  }

  const result: SliceForwardResult & Partial<SliceBackwardResult> = {};
  let xf: { y: Float64Array; rstd: Float64Array } | undefined;
  let ce: ReturnType<typeof crossEntropyForward> | undefined;
  if (last) {
    xf = rmsnormForward(x, getParam(params, 'finalNorm', C), N, C, dm.eps); //   [N, C]
    const logits = linearForward(xf.y, getParam(params, headName, V * C), N, C, V); // [N, V]
    ce = crossEntropyForward(logits, targets!, N, V);
    result.loss = ce.loss;
    result.logits = logits;
  } else {
    result.out = x;
  }
  if (!backward) return result;

  // ---- backward ----
  const grads = new Map<string, Float64Array>();
  for (const spec of layout) grads.set(spec.name, new Float64Array(spec.size));
  let dx: Float64Array;
  if (last) {
    const dlogits = crossEntropyBackward(ce!.probs, targets!, ce!.count, N, V); //     [N, V]
    const dxf = linearBackward(dlogits, xf!.y, getParam(params, headName, V * C), grads.get(headName)!, N, C, V);
    dx = rmsnormBackward(dxf, x, xf!.rstd, getParam(params, 'finalNorm', C), grads.get('finalNorm')!, N, C);
  } else {
    const dOut = backward.dOut;
    if (!dOut || dOut.length !== N * C) throw new ReferenceInputError(`dOut must hold B·T·C = ${N * C} gradients`);
    dx = Float64Array.from(dOut);
  }
  for (let l = to - 1; l >= from; l--) {
    const i = l - from;
    const dw = {} as BlockGrads;
    for (const t of Object.keys(weights[i]) as (keyof BlockWeights)[]) dw[t] = grads.get(blockParamName(l, t))!;
    dx = blockBackward(dx, weights[i], dw, caches[i], dm);
  }
  if (first) {
    const demb = grads.get('embedding')!;
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) demb[tokens![n] * C + c] += dx[n * C + c];
  } else {
    result.dx = dx;
  }
  result.grads = grads;
  return result;
}

/** Forward of the layer slice [from, to) (see SliceInput for what each kind of stage takes). */
export function referenceSliceForward(
  cfg: ModelConfig, from: number, to: number, params: ParamMap, input: SliceInput, B: number, T: number,
): SliceForwardResult {
  return runSlice(cfg, from, to, params, input, B, T, false);
}

/**
 * Forward and backward of the layer slice [from, to). `dOut` = ∂loss/∂out [N, C] is required
 * unless the slice ends at the last layer.
 */
export function referenceSliceBackward(
  cfg: ModelConfig, from: number, to: number, params: ParamMap, input: SliceInput, B: number, T: number,
  dOut?: ArrayLike<number>,
): SliceBackwardResult {
  const r = runSlice(cfg, from, to, params, input, B, T, { dOut });
  return { loss: r.loss, dx: r.dx, grads: r.grads! };
}

/** Whole-model forward: mean cross-entropy over targets ≠ −1, and the logits [B·T, V]. */
export function referenceForward(
  cfg: ModelConfig, params: ParamMap, tokens: Int32Array, targets: Int32Array, B: number, T: number,
): { loss: number; logits: Float64Array } {
  const r = referenceSliceForward(cfg, 0, cfg.layers, params, { tokens, targets }, B, T);
  return { loss: r.loss!, logits: r.logits! };
}

/** Whole-model loss and the gradient of every parameter (a tied embedding gets both parts). */
export function referenceBackward(
  cfg: ModelConfig, params: ParamMap, tokens: Int32Array, targets: Int32Array, B: number, T: number,
): { loss: number; grads: Map<string, Float64Array> } {
  const r = referenceSliceBackward(cfg, 0, cfg.layers, params, { tokens, targets }, B, T);
  return { loss: r.loss!, grads: r.grads };
}
