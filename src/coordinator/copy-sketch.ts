// Candidate copies in linear time: a MinHash sketch of each update's top-k index set and LSH
// banding over the sketches. An update's set is every (tensor, flat index) pair it sends, one
// set across tensors, as indexOverlap counts it. Two updates land in the same band bucket
// with a probability that rises steeply with their Jaccard similarity, so copies become
// candidates and honest pairs (little natural overlap) almost never do; scoring.ts confirms
// every candidate with the exact overlap, so the sketch can miss a copy (rarely, see below)
// but never flags one on its own.
//
// The sketch is one-permutation MinHash (Li, Owen & Zhang 2012) with optimal densification
// (Shrivastava 2017): every element is hashed once into one of bands × rows slots, each slot
// keeps the smallest value hashed into it, and an empty slot borrows a filled one's value by
// a probe sequence the same for every update. Each slot of two sketches agrees with
// probability J = |A ∩ B| / |A ∪ B|, at O(|A| + slots) per update — classic MinHash with one
// hash function per slot would cost |A| × slots (16M indices × 1,000 slots at the 1b preset).
// Hashing is seeded and deterministic: the same updates and seed give the same candidates.
// The seed must be secret: whoever knows it can drop the few elements that decide each band
// (one per band, 440 of 110,592) and pass a 99% copy; the validator derives it per round from
// its sampling key (scoring.ts copySketchForRound).

/** How the sketch is cut into bands: `bands` × `rows` slots, and the hashes' seed. */
export interface SketchParams {
  bands: number;
  rows: number;
  seed: number;
}

/**
 * The copy rule is |A ∩ B| / min(|A|, |B|) > 0.4 (COPY_OVERLAP). Every update of a run keeps
 * the same k per chunk (the wire format checks it), so |A| = |B| and an overlap o is a
 * Jaccard similarity J = o / (2 − o): 0.25 at the threshold.
 *
 * A band (r slots) matches with probability J^r; a pair is a candidate when any of b bands
 * matches: P(J) = 1 − (1 − J^r)^b. For P(0.25) ≥ 0.999 we need
 *   (1 − 0.25^r)^b ≤ 0.001  ⇔  b ≥ ln 0.001 / ln(1 − 0.25^r):
 *   r = 2: b ≥ 107.0; r = 3: b ≥ 438.6; r = 4: b ≥ 1765.
 * r = 3, b = 440 (1,320 slots): P(0.25) = 0.99902, and a pair above the threshold is found
 * still more surely (overlap 0.45: J = 0.29, P = 0.99998). Honest pairs: an overlap o gives
 *   o = 0.016 (chance, 64 of 4096 per chunk): J = 0.0079, P = 0.0002;
 *   o = 0.05: J = 0.026, P = 0.0075;  o = 0.1: J = 0.053, P = 0.063;  o = 0.2: P = 0.45.
 * r = 2 would make pairs at o = 0.1 candidates a quarter of the time (P = 0.25) and r = 4
 * quadruples the sketch for o = 0.1 → 0.013. Measured honest overlaps are in
 * test/bench/RESULTS.md ("Copy check: pairwise vs sketch").
 */
export const COPY_SKETCH: Readonly<SketchParams> = Object.freeze({ bands: 440, rows: 3, seed: 0x7e55e7a });

/** P(a pair of Jaccard similarity `jaccard` shares at least one band bucket). */
export function candidateProbability(jaccard: number, p: Pick<SketchParams, 'bands' | 'rows'> = COPY_SKETCH): number {
  return 1 - (1 - jaccard ** p.rows) ** p.bands;
}

/** The Jaccard similarity of two sets of equal size whose overlap (|A ∩ B| / |A|) is `overlap`. */
export function jaccardOfEqualSets(overlap: number): number {
  return overlap / (2 - overlap);
}

/** murmur3's 32-bit finaliser: a bijection of 32-bit integers that mixes every bit. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const GOLDEN = 0x9e3779b9;
const TWO_32 = 2 ** 32;
/** An empty slot probes this many random slots for a filled one before scanning onwards. */
const MAX_PROBES = 64;

/** Seeds for the separate uses of the hash, derived from the one seed. */
function seeds(seed: number) {
  return { tensor: mix32(seed ^ 0x1b873593), probe: mix32(seed ^ 0x68e31da4), band: mix32(seed ^ 0x2c1b3c6d) };
}

function tensorKeyOf(tensorSeed: number, t: number): number {
  return mix32(tensorSeed ^ Math.imul(t + 1, GOLDEN));
}

function slotOf(hash: number, slots: number): number {
  return Math.floor((hash * slots) / TWO_32);
}

/** Where element (tensor t, flat index) lands in a sketch and the hash it competes with there. */
export function hashElement(t: number, index: number, p: SketchParams = COPY_SKETCH): { slot: number; hash: number } {
  const hash = mix32(index ^ tensorKeyOf(seeds(p.seed).tensor, t));
  return { slot: slotOf(hash, p.bands * p.rows), hash };
}

/**
 * The sketch of one update's index sets (one per tensor, as indexOverlap takes them): bands ×
 * rows slot values, or null for an update with no indices (it overlaps nothing).
 */
export function sketchIndexSets(indices: readonly Uint32Array[], p: SketchParams = COPY_SKETCH): Uint32Array | null {
  const slots = p.bands * p.rows;
  const s = seeds(p.seed);
  const min = new Uint32Array(slots);
  const filled = new Uint8Array(slots);
  let elements = 0;
  for (let t = 0; t < indices.length; t++) {
    // (tensor, index) → x: a bijection of the index for each tensor, so a tensor's elements never collide.
    const tensorKey = tensorKeyOf(s.tensor, t);
    const set = indices[t];
    elements += set.length;
    for (let i = 0; i < set.length; i++) {
      // One hash does both: its range is cut into the slots, and the slot keeps the least hash
      // in it — the element of A ∪ B with the least hash in a slot is any of them alike, so
      // two slots agree with probability J.
      const x = mix32(set[i] ^ tensorKey);
      const slot = slotOf(x, slots);
      if (!filled[slot] || x < min[slot]) {
        min[slot] = x;
        filled[slot] = 1;
      }
    }
  }
  if (elements === 0) return null;
  const sketch = min.slice();
  for (let j = 0; j < slots; j++) {
    if (filled[j]) continue;
    sketch[j] = borrow(j, min, filled, s.probe);
  }
  return sketch;
}

/**
 * Optimal densification: empty slot j takes the value of the first filled slot in its own
 * probe sequence (the same sequence in every sketch), so two sketches agree on it with
 * probability J as on a filled slot. After MAX_PROBES misses (a set far smaller than the
 * sketch) it scans on from the last probe, which is deterministic too.
 */
function borrow(j: number, min: Uint32Array, filled: Uint8Array, probeSeed: number): number {
  const slots = min.length;
  let slot = 0;
  for (let attempt = 1; attempt <= MAX_PROBES; attempt++) {
    slot = Math.floor((mix32(probeSeed ^ Math.imul(j + 1, GOLDEN) ^ mix32(attempt)) * slots) / TWO_32);
    if (filled[slot]) return min[slot];
  }
  for (let step = 1; step < slots; step++) {
    const k = (slot + step) % slots;
    if (filled[k]) return min[k];
  }
  throw new Error('unreachable: a non-empty set fills at least one slot');
}

/**
 * A second, cheap screen before the exact overlap: the fraction of all bands × rows slots on
 * which two sketches agree estimates J. At the threshold (J = 0.25 for equal sets; lower for
 * unequal ones, computed from the sizes) the count over S slots is about Binomial(S, J) (one-
 * permutation hashing varies a little less: its slots sample the union without replacement),
 * so a pair agreeing on fewer than S·J − 5·√(S·J·(1 − J)) slots — 251 of 1,320 at J = 0.25,
 * an estimate of 0.19 — is dropped: a pair at or above the threshold is dropped with
 * probability ≤ 3·10⁻⁷ (a 5-sd tail), while an honest candidate (J ≈ 0.05 at overlap 0.1)
 * costs S comparisons instead of a merge of two k-sized sets. Only when both sets have at
 * least SCREEN_MIN_FILL × S elements: a smaller set leaves slots empty and its densified
 * slots repeat a few values, so their agreements are not independent enough for the bound.
 */
const SCREEN_SDS = 5;
const SCREEN_MIN_FILL = 4;

/** Slots on which two sketches agree. */
export function agreeingSlots(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) n++;
  return n;
}

/**
 * False only when the sketches rule out an overlap |A ∩ B| / min(|A|, |B|) above `overlap`
 * (see SCREEN_SDS): then no exact overlap is needed.
 */
export function mayBeCopy(a: Uint32Array, b: Uint32Array, elementsA: number, elementsB: number, overlap: number): boolean {
  const slots = a.length;
  const smaller = Math.min(elementsA, elementsB);
  if (smaller < SCREEN_MIN_FILL * slots) return true;
  const common = overlap * smaller;
  const jaccard = common / (elementsA + elementsB - common);
  return agreeingSlots(a, b) >= slots * jaccard - SCREEN_SDS * Math.sqrt(slots * jaccard * (1 - jaccard));
}

/** A 52-bit key for band `band` of a sketch (two 32-bit hashes of its rows): equal rows, equal key. */
function bandKey(sketch: Uint32Array, band: number, rows: number, bandSeed: number): number {
  let h1 = mix32(bandSeed ^ Math.imul(band + 1, GOLDEN));
  let h2 = mix32(h1 ^ 0x85ebca6b);
  for (let r = 0; r < rows; r++) {
    const v = sketch[band * rows + r];
    h1 = mix32(h1 ^ v);
    h2 = mix32(Math.imul(h2, 31) ^ v ^ 0xc2b2ae35);
  }
  return h1 * 2 ** 20 + (h2 >>> 12);
}

/**
 * The band buckets holding two or more sketches: each a list of positions in `sketches`
 * (ascending). Every pair inside one bucket is a candidate; a pair may share several
 * buckets. Null sketches (no indices) are in none. O(N × bands).
 */
export function bandBuckets(sketches: readonly (Uint32Array | null)[], p: SketchParams = COPY_SKETCH): number[][] {
  const { band: bandSeed } = seeds(p.seed);
  const buckets = new Map<number, number[]>();
  for (let band = 0; band < p.bands; band++) {
    for (let u = 0; u < sketches.length; u++) {
      const sketch = sketches[u];
      if (!sketch) continue;
      if (sketch.length !== p.bands * p.rows) throw new RangeError(`a sketch has ${sketch.length} slots, the parameters ${p.bands * p.rows}`);
      const key = bandKey(sketch, band, p.rows, bandSeed);
      const members = buckets.get(key);
      if (members) members.push(u);
      else buckets.set(key, [u]);
    }
  }
  return [...buckets.values()].filter((m) => m.length > 1);
}
