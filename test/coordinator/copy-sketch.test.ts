// The copy check's sketch (src/coordinator/copy-sketch.ts): deterministic seeded MinHash of an
// update's (tensor, index) set, slots that agree with probability J, and LSH bands whose
// candidate rate is the formula 1 − (1 − J^r)^b.
import { describe, expect, it } from 'vitest';
import { COPY_OVERLAP } from '../../src/coordinator/scoring.ts';
import { COPY_SKETCH, agreeingSlots, bandBuckets, candidateProbability, jaccardOfEqualSets, mayBeCopy, sketchIndexSets, type SketchParams } from '../../src/coordinator/copy-sketch.ts';
import { uniform } from './copy-rounds.ts';

const UNIVERSE = 1 << 24;

/** Two updates of `tensors` × `perTensor` distinct indices sharing round(overlap × perTensor) per tensor. */
function pairAt(random: () => number, overlap: number, tensors = 2, perTensor = 1000): [Uint32Array[], Uint32Array[]] {
  const a: Uint32Array[] = [];
  const b: Uint32Array[] = [];
  const shared = Math.round(overlap * perTensor);
  for (let t = 0; t < tensors; t++) {
    const used = new Set<number>();
    const draw = () => {
      for (;;) {
        const i = Math.floor(random() * UNIVERSE);
        if (!used.has(i)) return used.add(i), i;
      }
    };
    const x = Array.from({ length: perTensor }, draw);
    const y = [...x.slice(0, shared), ...Array.from({ length: perTensor - shared }, draw)];
    a.push(Uint32Array.from(x).sort());
    b.push(Uint32Array.from(y).sort());
  }
  return [a, b];
}

function agreeing(x: Uint32Array, y: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] === y[i]) n++;
  return n;
}

describe('the parameters', () => {
  it('make a pair at the copy threshold a candidate with probability ≥ 0.999, honest overlaps rarely', () => {
    const atThreshold = jaccardOfEqualSets(COPY_OVERLAP);
    expect(atThreshold).toBeCloseTo(0.25, 12);
    expect(candidateProbability(atThreshold)).toBeGreaterThanOrEqual(0.999);
    // The formula by hand for r = 3, b = 440: 1 − (1 − 1/64)^440.
    expect(candidateProbability(0.25)).toBeCloseTo(1 - (63 / 64) ** 440, 12);
    // One band fewer would not do: 439 is the least b for r = 3 (ln 0.001 / ln(63/64) = 438.6).
    expect(candidateProbability(0.25, { rows: 3, bands: 438 })).toBeLessThan(0.999);
    expect(candidateProbability(jaccardOfEqualSets(0.016))).toBeLessThan(0.001);
    expect(candidateProbability(jaccardOfEqualSets(0.05))).toBeLessThan(0.01);
  });
});

describe('sketchIndexSets', () => {
  const random = uniform(11);
  const [a] = pairAt(random, 0.5);

  it('is deterministic for a seed and changes with it', () => {
    const s = sketchIndexSets(a)!;
    expect(s.length).toBe(COPY_SKETCH.bands * COPY_SKETCH.rows);
    expect(sketchIndexSets(a.map((t) => t.slice()))).toEqual(s);
    const other = sketchIndexSets(a, { ...COPY_SKETCH, seed: COPY_SKETCH.seed + 1 })!;
    expect(agreeing(s, other)).toBeLessThan(s.length / 100);
  });

  it('keeps tensors apart: the same index in another tensor is another element', () => {
    const one = [Uint32Array.from([5, 6, 7]), new Uint32Array(0)];
    const moved = [new Uint32Array(0), Uint32Array.from([5, 6, 7])];
    expect(agreeing(sketchIndexSets(one)!, sketchIndexSets(moved)!)).toBe(0);
  });

  it('has no sketch for an update without indices', () => {
    expect(sketchIndexSets([new Uint32Array(0), new Uint32Array(0)])).toBeNull();
  });

  it('fills every slot of a set far smaller than the sketch, from its own elements', () => {
    const small = [Uint32Array.from([3, 1000, 77777])];
    const s = sketchIndexSets(small)!;
    expect(new Set(s).size).toBeLessThanOrEqual(3);
    expect(sketchIndexSets([Uint32Array.from([3, 1000, 77777])])).toEqual(s);
  });

  it('agrees slot by slot with probability J (large sets: no empty slots)', () => {
    for (const overlap of [0.2, 0.4, 0.8]) {
      const [x, y] = pairAt(uniform(100 + overlap * 10), overlap, 3, 4000);
      const sx = sketchIndexSets(x)!;
      const sy = sketchIndexSets(y)!;
      // 1,320 slots: sd of the agreeing fraction ≤ √(¼ / 1320) ≈ 0.014; 0.05 is over 3.5 sd.
      expect(Math.abs(agreeing(sx, sy) / sx.length - jaccardOfEqualSets(overlap))).toBeLessThan(0.05);
    }
  });
});

describe('bandBuckets', () => {
  it('puts identical updates together in every band and skips empty ones', () => {
    const [a, b] = pairAt(uniform(3), 0);
    const sketches = [sketchIndexSets(a), null, sketchIndexSets(b), sketchIndexSets(a.map((t) => t.slice()))];
    const buckets = bandBuckets(sketches);
    expect(buckets.filter((m) => m.length === 2 && m[0] === 0 && m[1] === 3)).toHaveLength(COPY_SKETCH.bands);
    expect(buckets.some((m) => m.includes(1) || m.includes(2))).toBe(false);
  });

  it('refuses a sketch made with other parameters', () => {
    const [a] = pairAt(uniform(4), 0);
    expect(() => bandBuckets([sketchIndexSets(a, { ...COPY_SKETCH, bands: 10 })], COPY_SKETCH)).toThrow(/slots/);
  });

  it('makes pairs candidates at the rate of the formula (at the threshold, J = 0.25)', () => {
    // With 440 bands a miss is 1 in 1,000, too rare to count here; the same sketches cut into
    // fewer bands test the formula where its value is mid-range: r = 3, b = 20 gives
    // 1 − (63/64)^20 = 0.270. 400 pairs: sd √(0.27·0.73/400) = 0.022; 0.08 is over 3.5 sd.
    const few: SketchParams = { ...COPY_SKETCH, bands: 20 };
    const random = uniform(2024);
    let candidates = 0;
    let bandMatches = 0;
    let bandsSeen = 0;
    const pairs = 400;
    for (let i = 0; i < pairs; i++) {
      const [a, b] = pairAt(random, COPY_OVERLAP, 2, 600);
      if (bandBuckets([sketchIndexSets(a, few), sketchIndexSets(b, few)], few).length > 0) candidates++;
      // And per band with the real parameters: J^3 = 1/64 of all 440 bands (sd ≈ 0.0009 over 176,000 bands).
      const sa = sketchIndexSets(a)!;
      const sb = sketchIndexSets(b)!;
      for (let band = 0; band < COPY_SKETCH.bands; band++) {
        let same = true;
        for (let r = 0; r < COPY_SKETCH.rows; r++) same &&= sa[band * COPY_SKETCH.rows + r] === sb[band * COPY_SKETCH.rows + r];
        if (same) bandMatches++;
        bandsSeen++;
      }
    }
    expect(Math.abs(candidates / pairs - candidateProbability(0.25, few))).toBeLessThan(0.08);
    expect(Math.abs(bandMatches / bandsSeen - 0.25 ** 3)).toBeLessThan(0.004);
  });
});

describe('mayBeCopy', () => {
  const slots = COPY_SKETCH.bands * COPY_SKETCH.rows;
  const size = (x: Uint32Array[]) => x.reduce((s, t) => s + t.length, 0);

  it('never screens out a pair at or above the threshold, and screens out honest overlaps', () => {
    const random = uniform(77);
    const agreeAt: Record<string, number[]> = {};
    for (const overlap of [0.1, 0.2, COPY_OVERLAP, 0.45]) {
      agreeAt[overlap] = [];
      for (let i = 0; i < 60; i++) {
        const [a, b] = pairAt(random, overlap, 2, 2700); // 5,400 elements: enough to screen (≥ 4 × 1,320)
        const sa = sketchIndexSets(a)!;
        const sb = sketchIndexSets(b)!;
        agreeAt[overlap].push(agreeingSlots(sa, sb));
        const verdict = mayBeCopy(sa, sb, size(a), size(b), COPY_OVERLAP);
        if (overlap >= COPY_OVERLAP) expect(verdict).toBe(true);
        if (overlap <= 0.2) expect(verdict).toBe(false);
      }
    }
    // The bound (251 of 1,320 at J = 0.25) sits between them: at the threshold the fewest
    // agreeing slots are well above it, at overlap 0.2 (J = 0.11) the most well under.
    expect(Math.min(...agreeAt[COPY_OVERLAP])).toBeGreaterThan(280);
    expect(Math.max(...agreeAt[0.2])).toBeLessThan(200);
  });

  it('does not screen small sets (their densified slots are not independent) and bounds unequal ones by their own threshold', () => {
    const [a, b] = pairAt(uniform(5), 0, 1, 1000);
    expect(mayBeCopy(sketchIndexSets(a)!, sketchIndexSets(b)!, 1000, 1000, COPY_OVERLAP)).toBe(true);
    // A set of 6,000 inside one of 24,000: overlap 1 against the smaller, J = 0.25 — not screened.
    const random = uniform(6);
    const [big] = pairAt(random, 0, 1, 24_000);
    const inside = [Uint32Array.from(big[0].filter(() => random() < 0.25))];
    expect(size(inside)).toBeGreaterThan(4 * slots);
    expect(mayBeCopy(sketchIndexSets(big)!, sketchIndexSets(inside)!, size(big), size(inside), COPY_OVERLAP)).toBe(true);
  });
});
