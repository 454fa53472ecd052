// The copy check across rounds (src/coordinator/copy-history.ts): an update that repeats one of
// an earlier round — the sender's own or another's — is a copy; fresh top-k sets are not; a
// round more than HISTORY_ROUNDS back is forgotten. Pure, no GPU.
import { describe, expect, it } from 'vitest';
import { CopyHistory, HISTORY_ROUNDS, estimatedOverlap } from '../../src/coordinator/copy-history.ts';
import { COPY_SKETCH, sketchIndexSets } from '../../src/coordinator/copy-sketch.ts';
import { rng } from '../helpers/rng.ts';

const key = new Uint8Array(32).fill(9);
const SIZES = [4096 * 6, 4096 * 4];

/** A random top-k-like index set per tensor: `n` distinct indices, sorted. */
function indices(seed: number, n = 700): Uint32Array[] {
  const u = rng(seed);
  return SIZES.map((size) => {
    const s = new Set<number>();
    while (s.size < n) s.add(Math.floor(u() * size));
    return Uint32Array.from(s).sort();
  });
}

/** `keep` of `a`'s indices, the rest fresh. */
function partial(a: Uint32Array[], keep: number, seed: number): Uint32Array[] {
  const u = rng(seed);
  return a.map((t, i) => {
    const kept = t.filter(() => u() < keep);
    const s = new Set(kept);
    while (s.size < t.length) s.add(Math.floor(u() * SIZES[i]));
    return Uint32Array.from(s).sort();
  });
}

describe('CopyHistory', () => {
  it("flags a stale replay of the sender's own earlier update and a resend of another's, not fresh updates (issue 19)", () => {
    const h = new CopyHistory(key);
    const round0 = { a: indices(1), b: indices(2), c: indices(3) };
    expect(h.check(0, Object.entries(round0).map(([sender, idx]) => ({ sender, indices: idx }))).size).toBe(0);
    const found = h.check(1, [
      { sender: 'a', indices: indices(11) }, // fresh
      { sender: 'b', indices: round0.b }, // its own round-0 update again
      { sender: 'c', indices: partial(round0.a, 0.9, 5) }, // a's round-0 update, 90% of it
      { sender: 'd', indices: partial(round0.c, 0.2, 6) }, // a fifth in common: honest-looking
    ]);
    expect([...found.keys()].sort()).toEqual(['b', 'c']);
    expect(found.get('b')).toMatchObject({ round: 0, sender: 'b' });
    expect(found.get('b')!.overlap).toBeGreaterThan(0.95);
    expect(found.get('c')).toMatchObject({ round: 0, sender: 'a' });
  });

  it(`forgets rounds more than ${HISTORY_ROUNDS} back`, () => {
    const h = new CopyHistory(key);
    const old = indices(21);
    h.check(0, [{ sender: 'a', indices: old }]);
    for (let r = 1; r <= HISTORY_ROUNDS; r++) h.check(r, [{ sender: 'a', indices: indices(100 + r) }]);
    expect(h.check(HISTORY_ROUNDS + 1, [{ sender: 'b', indices: old }]).size).toBe(0);
  });

  it('estimates the overlap from the sketches within a few hundredths', () => {
    const a = indices(31);
    for (const keep of [0.1, 0.4, 0.7, 1]) {
      const b = partial(a, keep, 32);
      const exact = a.reduce((n, t, i) => n + t.filter((x) => b[i].includes(x)).length, 0) / a.reduce((n, t) => n + t.length, 0);
      const p = { ...COPY_SKETCH, seed: 77 };
      const n = a.reduce((m, t) => m + t.length, 0);
      expect(Math.abs(estimatedOverlap(sketchIndexSets(a, p)!, sketchIndexSets(b, p)!, n, n) - exact)).toBeLessThan(0.06);
    }
  });
});
