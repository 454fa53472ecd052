// Model configuration, parameter layout and deterministic initialisation for a LLaMA-style
// decoder: token embedding → layers × [RMSNorm → GQA attention with RoPE → residual →
// RMSNorm → SwiGLU MLP → residual] → final RMSNorm → head → softmax cross-entropy.
//
// Shape legend (src/kernels/README.md): V vocab, C channels (dim), L layers, H heads,
// Hkv key/value heads, D = C/H head size, F MLP width. Linear weights are [out, in]
// (y = x·Wᵀ). Per block: attnNorm [C], wq [H·D, C], wk [Hkv·D, C], wv [Hkv·D, C],
// wo [C, H·D], mlpNorm [C], wGate [F, C], wUp [F, C], wDown [C, F]. Then finalNorm [C],
// head [V, C] (untied only); embedding [V, C].
//
// Tensor names: `embedding`, `blocks.{l}.{attnNorm|wq|wk|wv|wo|mlpNorm|wGate|wUp|wDown}`,
// `finalNorm`, `head`. A name is the tensor's identity everywhere: across pipeline
// stages, in checkpoints, and as the key of its initialisation stream.
//
// Weight tying across pipeline slices. With tiedEmbeddings the head is the embedding
// matrix: logits = x·embeddingᵀ.
//   - Slice [0, L) (the whole model on one contributor): `embedding` is held once and used
//     twice; its gradient is the sum of the lookup's and the head's contributions.
//   - Split into stages: the first stage holds `embedding` for the lookup, and the last
//     stage holds ITS OWN COPY, under the same name `embedding` (flagged `tiedCopy`), for the
//     head. Both copies initialise identically (same name → same stream). Each stage's
//     backward yields only its own part of the gradient; the true gradient of the tied
//     matrix is the sum of the two, so the pipeline must exchange and add these two [V, C]
//     gradients (or the two stages' updates) every step to keep the copies equal. Until
//     that exchange exists, split + tied training lets the copies drift apart; untied
//     configs have no such coupling.
//
// Weight decay: every matrix decays (attention and MLP projections, head, and the
// embedding); 1-D norm weights do not. We decay the embedding, as GPT-2/nanoGPT/llm.c do,
// because (a) with tying it IS the output projection, a matmul weight like any other, and
// tied or not one rule — "2-D decays, 1-D does not" — keeps the optimizer free of special
// cases; (b) rows of tokens that are rare in the data would otherwise never shrink.
//
// Initialisation: normal(0, initStd) for every matrix (initStd defaults to 0.02), with the
// residual output projections wo and wDown scaled by 1/sqrt(2·L) as GPT-2 does; norm
// weights = 1. Each tensor draws from its own stream, keyed by (seed, name), so a slice
// initialises its tensors bit-identically to the whole model's, on every engine: the
// generator uses only 32-bit integer arithmetic and IEEE +, −, ×, ÷, √ (correctly rounded
// everywhere), with a hand-written logarithm instead of Math.log (whose last bit varies
// between JavaScript engines).

export interface ModelConfig {
  /** V: vocabulary size (256 for bytes, 50257 for GPT-2 BPE). */
  vocabSize: number;
  /** C: model width (channels). */
  dim: number;
  /** L: number of transformer blocks. */
  layers: number;
  /** H: query heads; D = dim / heads must be even (RoPE rotates pairs). */
  heads: number;
  /** Hkv: key/value heads (grouped-query attention); heads must be a multiple. */
  kvHeads: number;
  /** F: SwiGLU hidden width. */
  mlpHidden: number;
  /** T max: the longest context the model is trained on. */
  seqLen: number;
  /** RoPE frequency base: θ_d = ropeBase^(−2d/D). */
  ropeBase: number;
  /** RMSNorm epsilon, added to mean(x²). */
  normEps: number;
  /** Head = embedding matrix (logits = x·embeddingᵀ). */
  tiedEmbeddings: boolean;
  /** Standard deviation of the normal initialisation of matrices; default 0.02. */
  initStd?: number;
}

export const DEFAULT_INIT_STD = 0.02;

/** A config field (or slice bound) is invalid. `field` names it. */
export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`model config: ${field} ${problem}`);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/** Byte-level toy model: runs in seconds on a CPU-emulated GPU. */
const tiny: ModelConfig = {
  vocabSize: 256, dim: 64, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 172, seqLen: 64,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: false,
};
/** ~17M parameters, GPT-2 BPE vocabulary; tied so the embedding does not dominate twice. */
const small: ModelConfig = {
  vocabSize: 50257, dim: 256, layers: 6, heads: 4, kvHeads: 2, mlpHidden: 704, seqLen: 512,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: true,
};
/** ~124M parameters: GPT-2-small shape (12 × 768, 12 heads, tied), LLaMA-style blocks. */
const base: ModelConfig = {
  vocabSize: 50257, dim: 768, layers: 12, heads: 12, kvHeads: 12, mlpHidden: 2048, seqLen: 1024,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: true,
};
/** ~1.0B parameters (TinyLlama-like width, GQA 32/8), for large GPUs. */
const oneB: ModelConfig = {
  vocabSize: 50257, dim: 2048, layers: 20, heads: 32, kvHeads: 8, mlpHidden: 5632, seqLen: 2048,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: true,
};

export const PRESETS: Readonly<Record<'tiny' | 'small' | 'base' | '1b', Readonly<ModelConfig>>> = Object.freeze({
  tiny: Object.freeze(tiny),
  small: Object.freeze(small),
  base: Object.freeze(base),
  '1b': Object.freeze(oneB),
});
export type PresetName = keyof typeof PRESETS;

/** A fresh, mutable copy of a preset. */
export function preset(name: PresetName): ModelConfig {
  const p = PRESETS[name];
  if (!p) throw new ConfigError('preset', `is unknown: ${String(name)} (known: ${Object.keys(PRESETS).join(', ')})`);
  return { ...p };
}

/** D: the head size. */
export function headDim(cfg: ModelConfig): number {
  return cfg.dim / cfg.heads;
}

function positiveInt(cfg: ModelConfig, field: keyof ModelConfig): number {
  const v = cfg[field] as unknown;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(field, `must be an integer, got ${String(v)}`);
  if (v < 1) throw new ConfigError(field, `must be ≥ 1, got ${v}`);
  return v;
}

/** Throws ConfigError naming the first invalid field. */
export function validateConfig(cfg: ModelConfig): void {
  if (cfg === null || typeof cfg !== 'object') throw new ConfigError('config', 'must be an object');
  const V = positiveInt(cfg, 'vocabSize');
  const C = positiveInt(cfg, 'dim');
  positiveInt(cfg, 'layers');
  const H = positiveInt(cfg, 'heads');
  const Hkv = positiveInt(cfg, 'kvHeads');
  positiveInt(cfg, 'mlpHidden');
  positiveInt(cfg, 'seqLen');
  if (V > 2 ** 31 - 1) throw new ConfigError('vocabSize', `must fit an i32 token id, got ${V}`);
  if (C % H !== 0) throw new ConfigError('heads', `must divide dim: dim ${C} is not divisible by heads ${H}`);
  if (H % Hkv !== 0) throw new ConfigError('kvHeads', `must divide heads: heads ${H} is not divisible by kvHeads ${Hkv}`);
  const D = C / H;
  if (D % 2 !== 0) throw new ConfigError('heads', `gives an odd head size D = dim/heads = ${D}; RoPE needs an even head size`);
  if (typeof cfg.ropeBase !== 'number' || !Number.isFinite(cfg.ropeBase) || !(cfg.ropeBase > 1)) {
    throw new ConfigError('ropeBase', `must be a finite number > 1, got ${String(cfg.ropeBase)}`);
  }
  if (typeof cfg.normEps !== 'number' || !Number.isFinite(cfg.normEps) || !(cfg.normEps >= 0)) {
    throw new ConfigError('normEps', `must be a finite number ≥ 0, got ${String(cfg.normEps)}`);
  }
  if (typeof cfg.tiedEmbeddings !== 'boolean') {
    throw new ConfigError('tiedEmbeddings', `must be a boolean, got ${String(cfg.tiedEmbeddings)}`);
  }
  if (cfg.initStd !== undefined && (typeof cfg.initStd !== 'number' || !Number.isFinite(cfg.initStd) || !(cfg.initStd > 0))) {
    throw new ConfigError('initStd', `must be a finite number > 0 when given, got ${String(cfg.initStd)}`);
  }
}

// ---- parameter layout ----

export const BLOCK_TENSORS = ['attnNorm', 'wq', 'wk', 'wv', 'wo', 'mlpNorm', 'wGate', 'wUp', 'wDown'] as const;
export type BlockTensor = (typeof BLOCK_TENSORS)[number];

export function blockParamName(layer: number, tensor: BlockTensor): string {
  return `blocks.${layer}.${tensor}`;
}

export interface ParamSpec {
  /** Identity of the tensor across stages, checkpoints and initialisation. */
  name: string;
  /** Row-major shape; matrices are [out, in]. */
  shape: number[];
  /** Number of elements. */
  size: number;
  /** AdamW weight decay applies (every matrix, including the embedding; not norms). */
  weightDecay: boolean;
  /** How initParameters fills it. */
  init: { kind: 'normal'; std: number } | { kind: 'ones' };
  /**
   * Set on `embedding` in a last stage that does not also hold layer 0 of a tied model:
   * the stage's private copy of the tied matrix, used only as the head. Its gradient must be
   * summed with the first stage's (see the header of this file).
   */
  tiedCopy?: boolean;
}

/** Throws ConfigError unless 0 ≤ from < to ≤ layers are integers. */
export function validateSlice(cfg: ModelConfig, from: number, to: number): void {
  if (!Number.isInteger(from) || from < 0 || from >= cfg.layers) {
    throw new ConfigError('from', `must be an integer layer in [0, ${cfg.layers}), got ${from}`);
  }
  if (!Number.isInteger(to) || to <= from || to > cfg.layers) {
    throw new ConfigError('to', `must be an integer in (${from}, ${cfg.layers}], got ${to}`);
  }
}

/**
 * The parameter tensors of the layer slice [from, to), in forward order: `embedding` when
 * from = 0, the blocks from..to−1, then `finalNorm` and the head when to = layers (the head
 * is `head` when untied; when tied it is `embedding`, listed once if the slice also starts
 * at 0, else listed at the end as the stage's tied copy).
 */
export function parameterLayout(cfg: ModelConfig, from = 0, to = cfg.layers): ParamSpec[] {
  validateConfig(cfg);
  validateSlice(cfg, from, to);
  const { vocabSize: V, dim: C, heads: H, kvHeads: Hkv, mlpHidden: F, layers: L } = cfg;
  const D = C / H;
  const std = cfg.initStd ?? DEFAULT_INIT_STD;
  const residualStd = std / Math.sqrt(2 * L);
  const matrix = (name: string, out: number, inp: number, s = std): ParamSpec => ({
    name, shape: [out, inp], size: out * inp, weightDecay: true, init: { kind: 'normal', std: s },
  });
  const norm = (name: string): ParamSpec => ({ name, shape: [C], size: C, weightDecay: false, init: { kind: 'ones' } });

  const out: ParamSpec[] = [];
  if (from === 0) out.push(matrix('embedding', V, C));
  for (let l = from; l < to; l++) {
    const n = (t: BlockTensor) => blockParamName(l, t);
    out.push(
      norm(n('attnNorm')),
      matrix(n('wq'), H * D, C),
      matrix(n('wk'), Hkv * D, C),
      matrix(n('wv'), Hkv * D, C),
      matrix(n('wo'), C, H * D, residualStd),
      norm(n('mlpNorm')),
      matrix(n('wGate'), F, C),
      matrix(n('wUp'), F, C),
      matrix(n('wDown'), C, F, residualStd),
    );
  }
  if (to === L) {
    out.push(norm('finalNorm'));
    if (!cfg.tiedEmbeddings) out.push(matrix('head', V, C));
    else if (from !== 0) out.push({ ...matrix('embedding', V, C), tiedCopy: true });
  }
  return out;
}

/** Distinct trainable parameters of the whole model (a tied matrix counts once). */
export function parameterCount(cfg: ModelConfig): number {
  return layoutElements(parameterLayout(cfg, 0, cfg.layers));
}

/** The elements of every tensor of a layout, summed (× 4 for f32 bytes). */
export function layoutElements(layout: readonly ParamSpec[]): number {
  return layout.reduce((n, p) => n + p.size, 0);
}

// ---- deterministic initialisation ----

/** 32-bit FNV-1a over the UTF-16 code units of s, starting from h. */
function fnv1a(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: a bijective avalanche (also used by the data sampler). */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * xoshiro128** seeded through splitmix32 from a 32-bit key: integer-only, so its stream is
 * identical on every JavaScript engine.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(key: number) {
    let z = key >>> 0;
    const next = () => {
      z = (z + 0x9e3779b9) >>> 0;
      let x = z;
      x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
      x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
      return (x ^ (x >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform in (−1, 1), never exactly 0 or ±1 (midpoints of 2^32 bins). */
  nextSymmetric(): number {
    return ((this.nextU32() + 0.5) / 2 ** 31) - 1;
  }

  /**
   * Standard normal via Marsaglia's polar form of Box–Muller: z = u·sqrt(−2·ln(s)/s),
   * s = u² + v² ∈ (0, 1). The second variate of each pair is kept for the next call.
   */
  nextNormal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    for (;;) {
      const u = this.nextSymmetric();
      const v = this.nextSymmetric();
      const s = u * u + v * v;
      if (s >= 1 || s === 0) continue;
      const f = Math.sqrt((-2 * portableLog(s)) / s);
      this.spare = v * f;
      return u * f;
    }
  }

  private spare: number | null = null;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE ? 1 : 0;
const LN2 = 0.6931471805599453;

/**
 * Natural logarithm of a positive, finite, normal x using only IEEE-exact operations (bit
 * extraction, +, −, ×, ÷), so the result is the same on every engine. Accurate to a few ulp:
 * x = m·2^e with m ∈ [√½, √2); ln m = 2·atanh(r), r = (m−1)/(m+1), |r| < 0.172, summed as a
 * fixed 12-term series.
 */
export function portableLog(x: number): number {
  f64[0] = x;
  const hi = u32[HI];
  let e = ((hi >>> 20) & 0x7ff) - 1023;
  u32[HI] = (hi & 0x800fffff) | (1023 << 20); // m ∈ [1, 2)
  let m = f64[0];
  if (m > Math.SQRT2) {
    m /= 2;
    e += 1;
  }
  const r = (m - 1) / (m + 1);
  const r2 = r * r;
  let sum = 0;
  for (let k = 23; k >= 1; k -= 2) sum = sum * r2 + 1 / k;
  return e * LN2 + 2 * r * sum;
}

/** The 32-bit key of a tensor's stream: a hash of the run seed and the tensor's name. */
export function streamKey(seed: number, name: string): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ConfigError('seed', `must be a safe integer ≥ 0, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return mix32(fnv1a(name, mix32(lo ^ mix32(hi ^ 0x5bd1e995))));
}

/**
 * Deterministic initial values of every tensor in `layout` (from parameterLayout), keyed by
 * name. Same (seed, name, shape, std) → same bits, whatever slice the tensor belongs to.
 */
export function initParameters(cfg: ModelConfig, layout: readonly ParamSpec[], seed: number): Map<string, Float32Array> {
  validateConfig(cfg);
  const out = new Map<string, Float32Array>();
  for (const spec of layout) {
    const a = new Float32Array(spec.size);
    if (spec.init.kind === 'ones') {
      a.fill(1);
    } else {
      const rng = new Rng(streamKey(seed, spec.name));
      const std = spec.init.std;
      for (let i = 0; i < a.length; i++) a[i] = rng.nextNormal() * std;
    }
    out.set(spec.name, a);
  }
  return out;
}
