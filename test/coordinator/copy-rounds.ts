// Synthetic rounds for the copy check (test/coordinator/validator-scoring.test.ts and
// test/bench/copy-check.ts): updates shaped like real ones — a few tensors cut into chunks of
// 64×64, top-64 of each chunk (1.5625%) — with honest updates sharing a natural overlap,
// copies planted at chosen overlaps with an earlier update, and times that make the source
// earlier (or simultaneous). Seeded: the same options give the same round.
import type { CopyCandidate } from '../../src/coordinator/scoring.ts';

export const CHUNK = 4096;
export const KEPT_PER_CHUNK = 64;

export interface RoundOptions {
  seed: number;
  /** Honest updates. */
  honest: number;
  /** Elements of each tensor (multiples of CHUNK). */
  tensors: readonly number[];
  /**
   * The fraction of each chunk's picks an honest update takes from the chunk's shared "hot"
   * positions (the common direction every honest peer's gradient has): two honest updates
   * overlap by about hotShare² plus chance (64/4096).
   */
  hotShare: number;
  /** Copies to plant: each keeps `overlap` of a random earlier update's picks, chunk by chunk. */
  copies: readonly { overlap: number; count: number }[];
  /** Fraction of copies delivered at the same instant as their source (both are then flagged). */
  simultaneous?: number;
}

export interface PlantedCopy {
  sender: string;
  source: string;
  overlap: number;
}

/** A seeded uniform [0, 1) generator (mulberry32). */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` distinct positions in [0, CHUNK) not in `taken`, added to it. */
function fresh(random: () => number, count: number, taken: Set<number>, out: number[]): void {
  while (count > 0) {
    const p = Math.floor(random() * CHUNK);
    if (taken.has(p)) continue;
    taken.add(p);
    out.push(p);
    count--;
  }
}

function shuffledPrefix(random: () => number, items: readonly number[], count: number): number[] {
  const a = [...items];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, count);
}

/** One tensor's sorted flat indices from each chunk's picks (chunk c holds flat [c·CHUNK, (c+1)·CHUNK)). */
function flatten(chunks: number[][]): Uint32Array {
  const out = new Uint32Array(chunks.length * KEPT_PER_CHUNK);
  chunks.forEach((locals, c) => {
    const sorted = [...locals].sort((a, b) => a - b);
    for (let i = 0; i < KEPT_PER_CHUNK; i++) out[c * KEPT_PER_CHUNK + i] = c * CHUNK + sorted[i];
  });
  return out;
}

/** Chunk c's picks of a tensor, as local positions (sorted flat indices hold them contiguously). */
function chunkOf(indices: Uint32Array, c: number): number[] {
  return Array.from(indices.subarray(c * KEPT_PER_CHUNK, (c + 1) * KEPT_PER_CHUNK), (i) => i - c * CHUNK);
}

export function syntheticRound(o: RoundOptions): { updates: CopyCandidate[]; planted: PlantedCopy[] } {
  const random = uniform(o.seed);
  for (const size of o.tensors) if (size % CHUNK !== 0) throw new RangeError(`tensor size ${size} is not a multiple of ${CHUNK}`);
  const positions = Array.from({ length: CHUNK }, (_, i) => i);
  const hot = o.tensors.map((size) => Array.from({ length: size / CHUNK }, () => shuffledPrefix(random, positions, KEPT_PER_CHUNK)));
  const updates: CopyCandidate[] = [];
  for (let h = 0; h < o.honest; h++) {
    const indices = hot.map((chunks) =>
      flatten(chunks.map((hotChunk) => {
        let fromHot = 0;
        for (let i = 0; i < KEPT_PER_CHUNK; i++) if (random() < o.hotShare) fromHot++;
        const out = shuffledPrefix(random, hotChunk, fromHot);
        fresh(random, KEPT_PER_CHUNK - out.length, new Set(out), out);
        return out;
      })),
    );
    updates.push({ sender: `honest-${h}`, indices, at: Math.floor(random() * 10_000) });
  }
  const planted: PlantedCopy[] = [];
  const keepOf = (overlap: number) => Math.round(overlap * KEPT_PER_CHUNK);
  let n = 0;
  for (const { overlap, count } of o.copies) {
    for (let i = 0; i < count; i++) {
      const source = updates[Math.floor(random() * updates.length)];
      const keep = keepOf(overlap);
      const indices = source.indices.map((tensor) =>
        flatten(Array.from({ length: tensor.length / KEPT_PER_CHUNK }, (_, c) => {
          const srcLocals = chunkOf(tensor, c);
          const out = shuffledPrefix(random, srcLocals, keep);
          fresh(random, KEPT_PER_CHUNK - keep, new Set(srcLocals), out);
          return out;
        })),
      );
      const sender = `copy-${n++}`;
      const simultaneous = random() < (o.simultaneous ?? 0);
      updates.push({ sender, indices, at: source.at + (simultaneous ? 0 : 1 + Math.floor(random() * 2_000)) });
      planted.push({ sender, source: source.sender, overlap: keep / KEPT_PER_CHUNK });
    }
  }
  // Delivery order is not sender order.
  const order = shuffledPrefix(random, updates.map((_, i) => i), updates.length);
  return { updates: order.map((i) => updates[i]), planted };
}
