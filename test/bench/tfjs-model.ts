// The peer of the training benchmark: the same LLaMA-style model as src/model/reference.ts,
// written in tfjs ops and run by tfjs-backend-webgpu on our device (test/bench/tfjs-webgpu.ts),
// trained with tfjs's own autodiff. test/bench/tfjs-model.test.ts checks that its loss and
// gradients match the float64 reference on the same initParameters weights, so a tokens/s
// comparison with our engine compares like with like.
//
// Model (legend of src/kernels/README.md; N = B·T): x = embedding[tokens] [N, C]; per block
//   x = x + attn(rmsnorm(x, attnNorm))·woᵀ,  x = x + (silu(n2·wGateᵀ) ∘ n2·wUpᵀ)·wDownᵀ
// with rotate-half RoPE on q and k and causal grouped-query attention; then
// logits = rmsnorm(x, finalNorm)·headᵀ (head = embedding when tied), loss = mean
// cross-entropy over targets ≠ −1. Linear weights are [out, in]: y = tf.matMul(x, W, false, true).
//
// Grouped-query attention without copying k/v: query head h reads kv head ⌊h / G⌋, G = H/Hkv,
// so q [B, H, T, D] is viewed as [B, Hkv, G·T, D] (the G query heads of one kv head stacked
// along time) and multiplied by k [B, Hkv, T, D] directly; the causal mask is tiled G times
// along rows. This is the same arithmetic as repeating k and v G times, minus the copies and
// the gradient reduction of the repeat (the cheapest tfjs formulation we know).
//
// Optimiser: global-norm clipping (scale min(1, clip / (‖g‖ + 1e-6)), as src/kernels/gradnorm.ts),
// decoupled weight decay on the tensors whose ParamSpec says so (θ ← θ·(1 − lr·wd), applied as
// an extra op before the update, as AdamW does), then tf.train.adam (m̂ / (√v̂ + ε), bias-
// corrected) with betas 0.9/0.95, eps 1e-8. That is AdamW as src/train/optimizer.ts defines
// it, composed from tfjs pieces: the same work per step, spread over more, smaller kernels.
//
// Gradients. tfjs registers its gradient functions only through the side-effect module
// '@tensorflow/tfjs-core/dist/register_all_gradients', which the union package
// '@tensorflow/tfjs' imports; that module ships only as extensionless ES modules that neither
// Node nor vitest's externalised loading can import, and tfjs-core's CommonJS bundle (what
// Node gets) leaves gradients out. So registerTfjsGradients below registers, for the ~15
// kernels this model records on the tape, gradient functions written here in tfjs ops, in
// the form tfjs's own take (broadcast-reducing Add/Sub/Multiply, matmul transposes,
// unsortedSegmentSum for Gather, …); a kernel that already has a registered gradient keeps it.
// tfjs-model.test.ts checks every parameter gradient against the float64 reference.
import type { AdamOptimizer, GradConfig, NamedAttrMap, Scalar, Tensor, Tensor1D, Variable } from '@tensorflow/tfjs-core';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { type ModelConfig, type ParamSpec, blockParamName, initParameters, parameterLayout } from '../../src/model/config.ts';
import { type Tf, tfjsOnDevice } from './tfjs-webgpu.ts';

export interface TfjsOptimizerSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clipNorm: number;
}

export const TFJS_DEFAULT_OPTIMIZER: TfjsOptimizerSettings = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 };

let nextInstance = 0;

/** Registers (once) gradient functions for the kernels TfjsModel differentiates through. */
export function registerTfjsGradients(tf: Tf): void {
  const bu = tf.backend_util;
  /** Sums dy over the axes `shape` was broadcast along, and gives it `shape`. */
  const unbroadcast = (dy: Tensor, shape: number[]): Tensor => {
    const axes = bu.getReductionAxes(shape, dy.shape);
    return tf.reshape(axes.length > 0 ? tf.sum(dy, axes) : dy, shape);
  };
  const axesOf = (attrs: NamedAttrMap, rank: number): number[] => {
    const a = attrs.axis as number | number[] | null | undefined;
    return tf.util.parseAxisParam(a ?? [...Array(rank).keys()], [...Array(rank).fill(1)] as number[]);
  };
  /** dy of a reduction over `axes` of x, broadcast back to x's shape. */
  const unreduce = (dy: Tensor, x: Tensor, axes: number[]): Tensor => {
    const keep = bu.expandShapeToKeepDim(
      x.shape.filter((_, i) => !axes.includes(i)),
      axes,
    );
    return tf.mul(tf.reshape(dy, keep), tf.ones(x.shape));
  };
  const configs: GradConfig[] = [
    {
      kernelName: 'Add', inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(dy as Tensor, a.shape), b: () => unbroadcast(dy as Tensor, b.shape) }),
    },
    {
      kernelName: 'Sub', inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b]) => ({ a: () => unbroadcast(dy as Tensor, a.shape), b: () => unbroadcast(tf.neg(dy as Tensor), b.shape) }),
    },
    {
      kernelName: 'Multiply', inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b]) => ({
        a: () => unbroadcast(tf.mul(dy as Tensor, b), a.shape),
        b: () => unbroadcast(tf.mul(dy as Tensor, a), b.shape),
      }),
    },
    { kernelName: 'Square', inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as Tensor, tf.mul(x, 2)) }) },
    {
      // d x^(−1/2) = −½ x^(−3/2)
      kernelName: 'Rsqrt', inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => tf.div(tf.mul(dy as Tensor, -0.5), tf.mul(x, tf.sqrt(x))) }),
    },
    {
      kernelName: 'Sigmoid', outputsToSave: [true],
      gradFunc: (dy, [y]) => ({ x: () => tf.mul(dy as Tensor, tf.mul(y, tf.sub(1, y))) }),
    },
    {
      kernelName: 'Sum', inputsToSave: ['x'],
      gradFunc: (dy, [x], attrs) => ({ x: () => unreduce(dy as Tensor, x, axesOf(attrs, x.rank)) }),
    },
    {
      kernelName: 'Mean', inputsToSave: ['x'],
      gradFunc: (dy, [x], attrs) => {
        const axes = axesOf(attrs, x.rank);
        const n = axes.reduce((p, i) => p * x.shape[i], 1);
        return { x: () => tf.div(unreduce(dy as Tensor, x, axes), n) };
      },
    },
    { kernelName: 'Reshape', inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.reshape(dy as Tensor, x.shape) }) },
    {
      kernelName: 'Transpose',
      gradFunc: (dy, _s, attrs) => {
        const perm = attrs.perm as number[];
        const inverse = perm.map((_, i) => perm.indexOf(i));
        return { x: () => tf.transpose(dy as Tensor, inverse) };
      },
    },
    {
      kernelName: 'Slice', inputsToSave: ['x'],
      gradFunc: (dy, [x], attrs) => {
        const d = dy as Tensor;
        const begin = attrs.begin as number[];
        return { x: () => tf.pad(d, x.shape.map((n, i) => [begin[i], n - begin[i] - d.shape[i]] as [number, number])) };
      },
    },
    {
      kernelName: 'Concat', saveAllInputs: true,
      gradFunc: (dy, saved, attrs) => {
        const d = dy as Tensor;
        const axis = tf.util.parseAxisParam(attrs.axis as number, d.shape)[0];
        const out: Record<string, () => Tensor> = {};
        let at = 0;
        saved.forEach((x, i) => {
          const begin = d.shape.map((_, j) => (j === axis ? at : 0));
          at += x.shape[axis];
          out[i] = () => tf.slice(d, begin, x.shape);
        });
        return out;
      },
    },
    {
      kernelName: 'BatchMatMul', inputsToSave: ['a', 'b'],
      gradFunc: (dy, [a, b], attrs) => {
        const d = dy as Tensor;
        if (a.rank !== b.rank || a.shape.slice(0, -2).some((n, i) => n !== b.shape[i])) {
          throw new Error('tfjs model gradients: BatchMatMul with broadcast batch dimensions is not supported');
        }
        const tA = attrs.transposeA as boolean;
        const tB = attrs.transposeB as boolean;
        // C = op(A)·op(B): dA and dB from dC, for each pair of transposes.
        if (!tA && !tB) return { a: () => tf.matMul(d, b, false, true), b: () => tf.matMul(a, d, true, false) };
        if (!tA && tB) return { a: () => tf.matMul(d, b, false, false), b: () => tf.matMul(d, a, true, false) };
        if (tA && !tB) return { a: () => tf.matMul(b, d, false, true), b: () => tf.matMul(a, d, false, false) };
        return { a: () => tf.matMul(b, d, true, true), b: () => tf.matMul(d, a, true, true) };
      },
    },
    {
      // y = softmax(x): dx = y ∘ (dy − Σ dy∘y)
      kernelName: 'Softmax', outputsToSave: [true],
      gradFunc: (dy, [y], attrs) => {
        const dim = attrs.dim as number;
        return { logits: () => tf.mul(y, tf.sub(dy as Tensor, tf.sum(tf.mul(dy as Tensor, y), dim, true))) };
      },
    },
    {
      // Rows gathered along axis 0 by 1-D indices: their gradients scatter-add back.
      kernelName: 'GatherV2', inputsToSave: ['x', 'indices'],
      gradFunc: (dy, [x, indices], attrs) => {
        if ((attrs.axis as number) !== 0 || indices.rank !== 1 || ((attrs.batchDims as number) ?? 0) !== 0) {
          throw new Error('tfjs model gradients: only GatherV2 of rows by 1-D indices is supported');
        }
        return { x: () => tf.unsortedSegmentSum(dy as Tensor, indices as Tensor1D, x.shape[0]), indices: () => indices };
      },
    },
  ];
  for (const c of configs) if (!tf.getGradient(c.kernelName)) tf.registerGradient(c);
}

/** Per-T constants: RoPE tables [T, 1, D/2] and the additive causal mask [G·T, T]. */
interface TimeConstants {
  cos: Tensor;
  sin: Tensor;
  mask: Tensor;
}

export class TfjsModel {
  readonly tf: Tf;
  readonly cfg: ModelConfig;
  readonly layout: ParamSpec[];
  /** tfjs variables by parameter name (`embedding`, `blocks.0.wq`, …). */
  readonly vars = new Map<string, Variable>();
  private readonly varList: Variable[];
  private readonly optimizer: AdamOptimizer;
  private readonly opt: TfjsOptimizerSettings;
  private readonly consts = new Map<number, TimeConstants>();
  private disposed = false;

  constructor(tf: Tf, cfg: ModelConfig, params: ReadonlyMap<string, Float32Array>, opt: Partial<TfjsOptimizerSettings> = {}) {
    this.tf = tf;
    this.cfg = { ...cfg };
    this.layout = parameterLayout(cfg);
    registerTfjsGradients(tf);
    this.opt = { ...TFJS_DEFAULT_OPTIMIZER, ...opt };
    // tfjs variable names are global to the engine: prefix them per instance.
    const prefix = `tessera${nextInstance++}/`;
    for (const spec of this.layout) {
      const data = params.get(spec.name);
      if (!data || data.length !== spec.size) throw new Error(`tfjs model: parameter ${spec.name} missing or not ${spec.size} long`);
      this.vars.set(spec.name, tf.variable(tf.tensor(data, spec.shape, 'float32'), true, prefix + spec.name));
    }
    this.varList = [...this.vars.values()];
    this.optimizer = tf.train.adam(1e-3, this.opt.beta1, this.opt.beta2, this.opt.eps) as AdamOptimizer;
  }

  private v(name: string): Variable {
    return this.vars.get(name)!;
  }

  private timeConstants(T: number): TimeConstants {
    let c = this.consts.get(T);
    if (c) return c;
    const { tf, cfg } = this;
    const D = cfg.dim / cfg.heads;
    const half = D / 2;
    const G = cfg.heads / cfg.kvHeads;
    const cos = new Float32Array(T * half);
    const sin = new Float32Array(T * half);
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < half; d++) {
        const angle = t * Math.pow(cfg.ropeBase, (-2 * d) / D);
        cos[t * half + d] = Math.cos(angle);
        sin[t * half + d] = Math.sin(angle);
      }
    }
    const mask = new Float32Array(G * T * T);
    for (let r = 0; r < G * T; r++) for (let t2 = (r % T) + 1; t2 < T; t2++) mask[r * T + t2] = -1e9;
    c = {
      cos: tf.keep(tf.tensor(cos, [T, 1, half])),
      sin: tf.keep(tf.tensor(sin, [T, 1, half])),
      mask: tf.keep(tf.tensor(mask, [G * T, T])),
    };
    this.consts.set(T, c);
    return c;
  }

  private rmsnorm(x: Tensor, w: Tensor): Tensor {
    const tf = this.tf;
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, this.cfg.normEps))), w);
  }

  /** x [N, in] · Wᵀ, W [out, in]. */
  private linear(x: Tensor, w: Tensor): Tensor {
    return this.tf.matMul(x, w, false, true);
  }

  /** Rotate-half RoPE on [B, T, nh, D]: pairs (d, d + D/2) rotated by t·θ_d. */
  private rope(x: Tensor, c: TimeConstants): Tensor {
    const tf = this.tf;
    const [b, t, nh, D] = x.shape as [number, number, number, number];
    const half = D / 2;
    const x0 = tf.slice(x, [0, 0, 0, 0], [b, t, nh, half]);
    const x1 = tf.slice(x, [0, 0, 0, half], [b, t, nh, half]);
    return tf.concat([tf.sub(tf.mul(x0, c.cos), tf.mul(x1, c.sin)), tf.add(tf.mul(x1, c.cos), tf.mul(x0, c.sin))], -1);
  }

  private block(x: Tensor, l: number, B: number, T: number, c: TimeConstants): Tensor {
    const { tf, cfg } = this;
    const { heads: H, kvHeads: Hkv, dim: C } = cfg;
    const D = C / H;
    const G = H / Hkv;
    const w = (t: Parameters<typeof blockParamName>[1]) => this.v(blockParamName(l, t));
    const n1 = this.rmsnorm(x, w('attnNorm'));
    const q = this.rope(tf.reshape(this.linear(n1, w('wq')), [B, T, H, D]), c);
    const k = this.rope(tf.reshape(this.linear(n1, w('wk')), [B, T, Hkv, D]), c);
    const v = tf.reshape(this.linear(n1, w('wv')), [B, T, Hkv, D]);
    const qg = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B, Hkv, G * T, D]); // head h = g·G + j
    const kt = tf.transpose(k, [0, 2, 1, 3]); //                                 [B, Hkv, T, D]
    const vt = tf.transpose(v, [0, 2, 1, 3]);
    const scores = tf.add(tf.mul(tf.matMul(qg, kt, false, true), 1 / Math.sqrt(D)), c.mask); // [B, Hkv, G·T, T]
    const att = tf.softmax(scores, -1);
    const o = tf.reshape(tf.matMul(att, vt), [B, H, T, D]);
    const ao = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B * T, H * D]);
    const x1 = tf.add(x, this.linear(ao, w('wo')));
    const n2 = this.rmsnorm(x1, w('mlpNorm'));
    const g = this.linear(n2, w('wGate'));
    const u = this.linear(n2, w('wUp'));
    const h = tf.mul(tf.mul(g, tf.sigmoid(g)), u);
    return tf.add(x1, this.linear(h, w('wDown')));
  }

  /** Logits [B·T, V] of the whole model. Not tidied: call inside tf.tidy. */
  private logits(tokens: Tensor, B: number, T: number): Tensor {
    const { tf, cfg } = this;
    if (T > cfg.seqLen) throw new Error(`tfjs model: T = ${T} exceeds seqLen ${cfg.seqLen}`);
    const c = this.timeConstants(T);
    let x: Tensor = tf.gather(this.v('embedding'), tokens); // [N, C]
    for (let l = 0; l < cfg.layers; l++) x = this.block(x, l, B, T, c);
    const xf = this.rmsnorm(x, this.v('finalNorm'));
    return this.linear(xf, this.v(cfg.tiedEmbeddings ? 'embedding' : 'head'));
  }

  /** Mean cross-entropy over targets ≠ −1 (0 when there are none). Not tidied. */
  private lossOf(tokens: Int32Array, targets: Int32Array, B: number, T: number): Scalar {
    const { tf, cfg } = this;
    const N = B * T;
    const V = cfg.vocabSize;
    if (tokens.length !== N || targets.length !== N) throw new Error(`tfjs model: tokens and targets must hold B·T = ${N} ids`);
    const picked: number[] = [];
    for (let n = 0; n < N; n++) if (targets[n] !== -1) picked.push(n * V + targets[n]);
    const logits = this.logits(tf.tensor1d(tokens, 'int32'), B, T);
    if (picked.length === 0) return tf.mul(tf.sum(logits), 0) as Scalar;
    const logp = tf.reshape(tf.logSoftmax(logits, -1), [N * V]);
    const chosen = tf.gather(logp, tf.tensor1d(Int32Array.from(picked), 'int32'));
    return tf.mul(tf.sum(chosen), -1 / picked.length) as Scalar;
  }

  /** The loss as a tfjs scalar (the caller disposes it). */
  loss(tokens: Int32Array, targets: Int32Array, B: number, T: number): Scalar {
    return this.tf.tidy(() => this.lossOf(tokens, targets, B, T));
  }

  /** Loss and ∂loss/∂θ of every parameter, read back (for tests). */
  async gradients(tokens: Int32Array, targets: Int32Array, B: number, T: number): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const { tf } = this;
    const { value, grads } = tf.variableGrads(() => this.lossOf(tokens, targets, B, T), this.varList);
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.vars) out.set(name, (await grads[v.name].data()) as Float32Array);
    const loss = (await value.data())[0];
    value.dispose();
    tf.dispose(Object.values(grads));
    return { loss, grads: out };
  }

  /**
   * One training step at learning rate `lr`: forward, backward, clip, decoupled decay, Adam
   * update. Returns the loss before the update (awaiting its read-back).
   */
  async trainStep(tokens: Int32Array, targets: Int32Array, B: number, T: number, lr: number): Promise<number> {
    const { tf, opt } = this;
    (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => this.lossOf(tokens, targets, B, T), this.varList);
      const list = this.varList.map((v) => grads[v.name]);
      // (tf.addN over every tensor would exceed the device's storage-buffer limit per shader.)
      const norm = tf.sqrt(list.map((g) => tf.sum(tf.square(g))).reduce((acc, x) => tf.add(acc, x)));
      const scale = tf.minimum(1, tf.div(opt.clipNorm, tf.add(norm, 1e-6)));
      if (opt.weightDecay !== 0) {
        const keep = 1 - lr * opt.weightDecay;
        for (const spec of this.layout) {
          if (!spec.weightDecay) continue;
          const v = this.v(spec.name);
          v.assign(tf.mul(v, keep));
        }
      }
      // Adam keys its moments by position: the order of this list never changes.
      const named: { name: string; tensor: Tensor }[] = this.varList.map((v, i) => ({ name: v.name, tensor: tf.mul(list[i], scale) }));
      this.optimizer.applyGradients(named);
      return value;
    });
    const out = (await loss.data())[0];
    loss.dispose();
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer.dispose();
    for (const v of this.varList) v.dispose();
    for (const c of this.consts.values()) this.tf.dispose([c.cos, c.sin, c.mask]);
    this.consts.clear();
  }
}

/** Deterministic batch: random tokens, targets = the next token (the last one −1). */
export function syntheticBatch(V: number, B: number, T: number, seed = 7): { tokens: Int32Array; targets: Int32Array } {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const row = new Int32Array(T + 1);
    for (let t = 0; t <= T; t++) row[t] = next() % V;
    for (let t = 0; t < T; t++) {
      tokens[b * T + t] = row[t];
      targets[b * T + t] = row[t + 1];
    }
  }
  return { tokens, targets };
}

/**
 * tfjs training throughput for `cfg` at batch B × T on gpu's device: initParameters weights
 * (seed 1), one fixed synthetic batch, `warmup` steps (default 2: shader compilation and
 * buffer pools), then `steps` timed steps, each awaiting its loss read-back. stepMs is the
 * mean over the timed steps. tfjs's backend stays registered on the device (its compiled
 * pipelines are reused by a later call); call releaseTfjs() from tfjs-webgpu.ts when done.
 */
export async function benchTfjsTrainStep(
  gpu: Gpu, cfg: ModelConfig, { B, T, steps, warmup = 2, lr = 1e-3 }: { B: number; T: number; steps: number; warmup?: number; lr?: number },
): Promise<{ tokensPerSec: number; stepMs: number; losses: number[] }> {
  const tf = await tfjsOnDevice(gpu);
  const model = new TfjsModel(tf, cfg, initParameters(cfg, parameterLayout(cfg), 1));
  try {
    const { tokens, targets } = syntheticBatch(cfg.vocabSize, B, T);
    for (let i = 0; i < warmup; i++) await model.trainStep(tokens, targets, B, T, lr);
    const losses: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) losses.push(await model.trainStep(tokens, targets, B, T, lr));
    const stepMs = (performance.now() - t0) / steps;
    return { tokensPerSec: (B * T * 1000) / stepMs, stepMs, losses };
  } finally {
    model.dispose();
  }
}
