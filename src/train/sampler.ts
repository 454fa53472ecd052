// Deterministic data assignment: which token windows a contributor trains on, as a pure
// function of (run seed, round, contributor, step) — so a validator can rebuild exactly the
// batch a contributor was given, on any machine and any JavaScript engine (integer
// arithmetic only). Plus a deterministic train/held-out split. Environment-free.
import { mix32 } from '../model/config.ts';

export interface SampleKey {
  /** The run's data seed (a safe integer ≥ 0). */
  runSeed: number;
  /** Outer round (integer ≥ 0). */
  round: number;
  /** Who the batch is for: the contributor's hotkey (ss58) or any stable id. */
  contributor: string;
  /** Inner step within the round (integer ≥ 0). */
  step: number;
}

export interface BatchShape {
  /** Sequences per batch. */
  B: number;
  /** Tokens per sequence. */
  T: number;
}

export interface Batch {
  /** [B, T] row-major: window b is tokens[offset_b .. offset_b + T). */
  tokens: Int32Array;
  /** [B, T]: the next token of each position, tokens[offset_b + 1 .. offset_b + T]. */
  targets: Int32Array;
  /** The B window starts, in batch order. */
  offsets: number[];
}

export const SAMPLER_VERSION = 1;

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function checkKey(key: SampleKey): void {
  const int = (name: keyof SampleKey) => {
    const v = key[name] as unknown;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`sample key: ${name} must be a safe integer ≥ 0, got ${String(v)}`);
  };
  int('runSeed');
  int('round');
  int('step');
  if (typeof key.contributor !== 'string' || key.contributor.length === 0) {
    throw new RangeError('sample key: contributor must be a non-empty string');
  }
}

/**
 * 128 bits of state from the key: four independent 32-bit hashes (FNV-1a over the UTF-8 of
 * a canonical string, each lane with its own basis, then mix32). The canonical string
 * carries the sampler version, so a change of algorithm never silently reuses old keys.
 */
export function sampleSeed(key: SampleKey): [number, number, number, number] {
  checkKey(key);
  const bytes = utf8(`tessera-sample/v${SAMPLER_VERSION}\u0000${key.runSeed}\u0000${key.round}\u0000${key.step}\u0000${key.contributor}`);
  const lanes: number[] = [];
  for (let lane = 0; lane < 4; lane++) {
    let h = (0x811c9dc5 ^ Math.imul(lane + 1, 0x9e3779b9)) >>> 0;
    for (let i = 0; i < bytes.length; i++) {
      h ^= bytes[i];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    lanes.push(mix32(h ^ bytes.length));
  }
  if ((lanes[0] | lanes[1] | lanes[2] | lanes[3]) === 0) lanes[0] = 1;
  return lanes as [number, number, number, number];
}

/** xoshiro128**: integer-only, the same stream on every engine. */
export class SampleRng {
  private s: Uint32Array;
  constructor(seed: readonly [number, number, number, number]) {
    this.s = Uint32Array.from(seed);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform integer in [0, n), n ≤ 2^32, without modulo bias (rejection sampling). */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`below: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * B windows of T+1 consecutive tokens at offsets drawn uniformly from [0, n − T − 1] by a
 * PRNG seeded from the key; tokens = first T of each window, targets = last T. Same
 * (tokens, B, T, key) → same batch everywhere.
 */
export function sampleBatch(tokens: ArrayLike<number>, shape: BatchShape, key: SampleKey): Batch {
  const { B, T } = shape;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`sampleBatch: B must be an integer ≥ 1, got ${B}`);
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`sampleBatch: T must be an integer ≥ 1, got ${T}`);
  const n = tokens.length;
  if (n < T + 1) throw new RangeError(`sampleBatch: ${n} tokens cannot hold one window of T + 1 = ${T + 1}`);
  const starts = n - T; // offsets 0 .. n − T − 1
  if (starts > 2 ** 32) throw new RangeError(`sampleBatch: ${n} tokens is more than the sampler addresses (2^32 windows)`);
  const rng = new SampleRng(sampleSeed(key));
  const out: Batch = { tokens: new Int32Array(B * T), targets: new Int32Array(B * T), offsets: [] };
  for (let b = 0; b < B; b++) {
    const o = rng.below(starts);
    out.offsets.push(o);
    for (let t = 0; t < T; t++) {
      out.tokens[b * T + t] = tokens[o + t];
      out.targets[b * T + t] = tokens[o + t + 1];
    }
  }
  return out;
}

type Sliceable = ArrayLike<number> & { slice(start?: number, end?: number): Sliceable };

/**
 * Splits a token stream into train and held-out parts: the held-out part is the LAST
 * floor(n · validFraction) tokens, the train part everything before, so training windows
 * (sampled inside `train`) never contain a held-out token. Typed arrays come back as
 * views (subarray), arrays as copies.
 */
export function splitShard<A extends ArrayLike<number>>(tokens: A, opts: { validFraction: number }): { train: A; valid: A } {
  const f = opts.validFraction;
  if (typeof f !== 'number' || !(f >= 0 && f < 1)) throw new RangeError(`splitShard: validFraction must be in [0, 1), got ${f}`);
  const n = tokens.length;
  const cut = n - Math.floor(n * f);
  const t = tokens as unknown as { subarray?: (a: number, b?: number) => A } & Sliceable;
  if (typeof t.subarray === 'function') return { train: t.subarray(0, cut), valid: t.subarray(cut, n) };
  return { train: t.slice(0, cut) as unknown as A, valid: t.slice(cut, n) as unknown as A };
}

/**
 * The held-out stream as consecutive, non-overlapping evaluation batches: window i starts
 * at i·T; at most maxBatches batches of B windows (only full batches). Deterministic.
 */
export function evalBatches(valid: ArrayLike<number>, shape: BatchShape, maxBatches = Infinity): Batch[] {
  const { B, T } = shape;
  if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) throw new RangeError(`evalBatches: B and T must be integers ≥ 1, got ${B}, ${T}`);
  const windows = Math.floor((valid.length - 1) / T);
  const count = Math.min(Math.floor(Math.max(windows, 0) / B), maxBatches);
  const out: Batch[] = [];
  for (let k = 0; k < count; k++) {
    const batch: Batch = { tokens: new Int32Array(B * T), targets: new Int32Array(B * T), offsets: [] };
    for (let b = 0; b < B; b++) {
      const o = (k * B + b) * T;
      batch.offsets.push(o);
      for (let t = 0; t < T; t++) {
        batch.tokens[b * T + t] = valid[o + t];
        batch.targets[b * T + t] = valid[o + t + 1];
      }
    }
    out.push(batch);
  }
  return out;
}
