import { describe, expect, it } from 'vitest';
import { FLOORED_BELOW, NonFiniteAggregate, aggregate, clipBound, lowerMedian, median, updateSize } from '../../src/sparseloco/aggregate.ts';
import type { SparseTensor } from '../../src/sparseloco/selection.ts';
import { rng } from '../helpers/rng.ts';


interface Spec { name: string; shape: number[] }

/** nnz unique random indices drawn from [0, range) (range ≤ size, so peers overlap), in random order. */
function randomSparse(spec: Spec, nnz: number, range: number, seed: number, gain = 1): SparseTensor {
  const u = rng(seed);
  const picked = new Set<number>();
  while (picked.size < nnz) picked.add(Math.floor(u() * range));
  const indices = Uint32Array.from(picked);
  const values = Float32Array.from(indices, () => gain * (u() - 0.5));
  return { name: spec.name, shape: spec.shape, indices, values };
}

/** DESIGN.md's rule written out plainly: zero tensors out, every other scaled to min(lower median, largest norm), then the average over senders. */
function reference(updates: SparseTensor[][], layout: Spec[]) {
  return layout.map((spec, t) => {
    const norms = updates.map((u) => Math.sqrt(Array.from(u[t].values).reduce((a, v) => a + v * v, 0)));
    const sorted = norms.filter((n) => n > 0).sort((a, b) => a - b);
    const m = sorted.length;
    const target = m === 0 ? 0 : Math.min(sorted[Math.floor((m - 1) / 2)], sorted[m - 1]);
    const sum = new Map<number, number>();
    const count = new Map<number, number>();
    updates.forEach((u, p) => {
      if (norms[p] === 0) return;
      const s = target / norms[p];
      u[t].indices.forEach((i, j) => {
        sum.set(i, (sum.get(i) ?? 0) + u[t].values[j] * s);
        count.set(i, (count.get(i) ?? 0) + 1);
      });
    });
    const indices = [...sum.keys()].sort((a, b) => a - b);
    return { indices, values: indices.map((i) => Math.fround(sum.get(i)! / count.get(i)!)) };
  });
}

const layout: Spec[] = [
  { name: 'norm', shape: [256] },
  { name: 'w', shape: [300, 200] },
  { name: 'big', shape: [5000, 1000] }, // 5M elements: indices need three 11-bit radix passes
  { name: 'tiny', shape: [3] },
];

describe('aggregate', () => {
  it.each([1, 2, 3, 4])('matches the reference for %i peers with overlapping indices', (P) => {
    for (let trial = 0; trial < 3; trial++) {
      const updates = Array.from({ length: P }, (_, p) => [
        randomSparse(layout[0], 64, 100, 10 * p + trial),
        randomSparse(layout[1], 900, 3000, 100 + 10 * p + trial, p === 0 ? 5 : 1),
        randomSparse(layout[2], 2000, 5_000_000, 200 + 10 * p + trial),
        randomSparse(layout[3], 1 + ((p + trial) % 3), 3, 300 + p),
      ]);
      // make the big tensor overlap too: every peer also sends the first peer's first 500 indices
      for (let p = 1; p < P; p++) {
        const own = new Set(updates[p][2].indices);
        const extra = Array.from(updates[0][2].indices.subarray(0, 500)).filter((i) => !own.has(i));
        const t = updates[p][2];
        updates[p][2] = { ...t, indices: Uint32Array.from([...extra, ...t.indices]), values: Float32Array.from([...extra.map(() => 0.25), ...t.values]) };
      }
      const got = aggregate(updates, layout);
      const ref = reference(updates, layout);
      got.forEach((g, t) => {
        expect(g.name).toBe(layout[t].name);
        expect(g.shape).toEqual(layout[t].shape);
        expect(Array.from(g.indices)).toEqual(ref[t].indices);
        expect(Array.from(g.values)).toEqual(ref[t].values);
      });
    }
  });

  it('clips an outlier peer down to the median norm', () => {
    const spec = layout[1];
    const a = randomSparse(spec, 100, 1000, 1);
    const b = randomSparse(spec, 100, 1000, 2);
    // c: disjoint indices, 100× larger values
    const c: SparseTensor = { ...spec, indices: Uint32Array.from({ length: 100 }, (_, i) => 2000 + i), values: Float32Array.from({ length: 100 }, (_, i) => 100 * Math.sin(i + 1)) };
    const norm = (v: Float32Array) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    const med = median([norm(a.values), norm(b.values), norm(c.values)]);
    expect(med).toBeLessThan(norm(c.values) / 50);
    const [out] = aggregate([[a], [b], [c]], [spec]);
    const fromC = Array.from(out.indices).map((i, j) => [i, out.values[j]] as const).filter(([i]) => i >= 2000);
    expect(fromC.length).toBe(100);
    const clipped = Math.sqrt(fromC.reduce((s, [, v]) => s + v * v, 0));
    expect(clipped).toBeCloseTo(med, 4);
    fromC.forEach(([i, v]) => expect(v).toBeCloseTo(c.values[i - 2000] * (med / norm(c.values)), 6));
  });

  it('averages an index over its senders only; a lone sender keeps its value', () => {
    const spec = { name: 'v', shape: [10] };
    const t = (idx: number[], vals: number[]): SparseTensor[] => [{ ...spec, indices: Uint32Array.from(idx), values: Float32Array.from(vals) }];
    // equal norms (5): no clipping
    const out = aggregate([t([0, 1], [3, 4]), t([1, 2], [4, 3]), t([9, 0], [4, -3])], [spec])[0];
    expect(Array.from(out.indices)).toEqual([0, 1, 2, 9]);
    expect(Array.from(out.values)).toEqual([0, 4, 3, 4]);
  });

  it('even peer count: the bound is the lower of the middle two, and every update is scaled to it, up as well as down; an all-zero tensor takes no part', () => {
    const spec = { name: 'v', shape: [4] };
    const t = (idx: number[], vals: number[]): SparseTensor[] => [{ ...spec, indices: Uint32Array.from(idx), values: Float32Array.from(vals) }];
    // norms 1 and 3 → bound 1: the second peer is scaled by 1/3
    const out = aggregate([t([0], [1]), t([1], [3])], [spec])[0];
    expect(Array.from(out.values)).toEqual([1, 1]);
    // norms 1, 2, 3, 4 → bound 2: the first is scaled up to it, the last two down
    const four = aggregate([t([0], [1]), t([1], [2]), t([2], [3]), t([3], [4])], [spec])[0];
    expect(Array.from(four.values)).toEqual([2, 2, 2, 2]);
    expect(lowerMedian([4, 1, 3, 2])).toBe(2);
    expect(lowerMedian([3, 1, 2])).toBe(2);
    expect(lowerMedian([])).toBe(0);
    // norms 0, 0, 1: the zero peers take no part (before: the bound was 0 and the non-zero update was zeroed)
    const z = aggregate([t([0], [0]), t([0], [0]), t([0, 1], [0.6, 0.8])], [spec])[0];
    expect(Array.from(z.indices)).toEqual([0, 1]);
    expect(Array.from(z.values)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    // A lone update keeps its size whatever the floor (never above the largest norm).
    expect(Array.from(aggregate([t([0, 1], [0.6, 0.8])], [spec], [5])[0].values)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(updateSize([1], 5)).toBe(1);
    expect(updateSize([1, 9], 5)).toBe(5);
    expect(updateSize([], 5)).toBe(0);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBe(0);
  });

  it('an update shrunk just over the undersize bar (×1/9) or all zeros no longer dilutes the indices it shares with honest ones (issue 19)', () => {
    const spec = layout[1];
    const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    // Honest updates agree (one direction, a little noise each), on the same indices.
    const base = randomSparse(spec, 400, 60_000, 31);
    const honest = [32, 33, 34].map((seed) => {
      const u = rng(seed);
      return { ...base, values: base.values.map((v) => v * (1 + 0.1 * (u() - 0.5))) };
    });
    // The attacker sends the first honest update's indices (all shared) with its values ×1/9, or zeros.
    const shrink: SparseTensor = { ...honest[0], values: honest[0].values.map((v) => v / 9) };
    const zeros: SparseTensor = { ...honest[0], values: new Float32Array(honest[0].values.length) };
    const [clean] = aggregate(honest.map((h) => [h]), [spec]);
    for (const attack of [shrink, zeros]) {
      const [out] = aggregate([...honest.map((h) => [h]), [attack]], [spec]);
      const at = new Map(Array.from(out.indices, (i, j) => [i, out.values[j]]));
      // The result keeps the clean average's size (before: (3 + 1/9) / 4 of it with the ×1/9, 3/4 with zeros).
      const shared = Array.from(base.indices);
      expect(norm(shared.map((i) => at.get(i)!))).toBeGreaterThan(0.98 * norm(clean.values));
    }
    // Beside one honest update with no floor (a run's first round) an all-zero update changes nothing.
    const [alone] = aggregate([[honest[0]], [zeros]], [spec]);
    expect(Array.from(alone.values)).toEqual(Array.from(aggregate([[honest[0]]], [spec])[0].values));
  });

  it('an update scaled ×1000 beside one honest update is clipped to the honest norm (issue 19: the mean of the middle two let ×500 through)', () => {
    const spec = layout[1];
    const honest = randomSparse(spec, 400, 60_000, 11);
    const attack = randomSparse(spec, 400, 60_000, 12, 1000);
    const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    for (const updates of [[[honest], [attack]], [[attack], [honest]]]) {
      const [out] = aggregate(updates, [spec]);
      // Both clipped to the honest norm h, on (mostly) disjoint indices: the result's norm is
      // at most √2·h (with the mean of the two norms it was ~500·h).
      expect(norm(out.values)).toBeLessThanOrEqual(Math.SQRT2 * norm(honest.values) * 1.0001);
    }
    // One attacker among three honest updates cannot move the bound either.
    const h2 = randomSparse(spec, 400, 60_000, 13);
    const h3 = randomSparse(spec, 400, 60_000, 14);
    const [out3] = aggregate([[honest], [h2], [h3], [attack]], [spec]);
    const bound = lowerMedian([honest, h2, h3].map((x) => norm(x.values)).concat(norm(attack.values)));
    expect(bound).toBeLessThan(2 * norm(honest.values));
    expect(norm(out3.values)).toBeLessThan(2 * bound);
  });

  it("the commit's clip floor: an update just over the undersize bar (×1/9) no longer shrinks the other of two; ×1000 is still clipped, to the floor (issue 19)", () => {
    const spec = layout[1];
    const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    const honest = randomSparse(spec, 400, 60_000, 21);
    const h = norm(honest.values);
    // The validator's reference of recent helpful norms: about the honest size.
    const floor = [1.2 * h];
    const shrink: SparseTensor = { ...honest, indices: randomSparse(spec, 400, 60_000, 22).indices, values: honest.values.map((v) => v / 9) };
    // Without the floor the bound is the smaller norm: the honest update is scaled to h/9.
    const [bare] = aggregate([[honest], [shrink]], [spec]);
    const [floored] = aggregate([[honest], [shrink]], [spec], floor);
    const honestPart = (out: SparseTensor) => norm(Array.from(out.indices).flatMap((i, j) => (honest.indices.includes(i) && !shrink.indices.includes(i) ? [out.values[j]] : [])));
    expect(honestPart(bare)).toBeLessThan(0.12 * h);
    expect(honestPart(floored)).toBeGreaterThan(0.9 * h);
    // And the shrunk one is scaled up to the same size (the largest norm, h, under the floor): one vote of one size each.
    const shrinkPart = (out: SparseTensor) => norm(Array.from(out.indices).flatMap((i, j) => (shrink.indices.includes(i) && !honest.indices.includes(i) ? [out.values[j]] : [])));
    expect(shrinkPart(floored)).toBeGreaterThan(0.9 * h);
    // ×1000 beside it: clipped to the floor (an honest size), not let through.
    const attack = randomSparse(spec, 400, 60_000, 23, 1000);
    const [withAttack] = aggregate([[honest], [attack]], [spec], floor);
    expect(norm(withAttack.values)).toBeLessThanOrEqual(Math.SQRT2 * floor[0] * 1.0001);
    // The floor only raises the bound of fewer than FLOORED_BELOW updates; with more, a majority decides.
    expect(clipBound([1, 9], 5)).toBe(5);
    expect(clipBound([1], 5)).toBe(5);
    expect(clipBound([6, 9], 5)).toBe(6);
    expect(clipBound(Array.from({ length: FLOORED_BELOW }, (_, i) => i + 1), 50)).toBe(2);
  });

  it('refuses an average that is not a finite f32 (nothing is applied from it)', () => {
    const spec = { name: 'v', shape: [4] };
    const t = (vals: number[]): SparseTensor[] => [{ ...spec, indices: Uint32Array.from(vals.map((_, i) => i)), values: Float32Array.from(vals) }];
    expect(() => aggregate([t([3e38, 1]), t([3e38, 1]), t([3e38, 1])], [spec])).not.toThrow();
    expect(() => aggregate([t([Infinity, 1])], [spec])).toThrow(NonFiniteAggregate);
  });

  it('no peers: empty tensors', () => {
    const out = aggregate([], layout);
    expect(out.map((t) => t.indices.length)).toEqual([0, 0, 0, 0]);
  });

  it('rejects a misnamed tensor, a missing tensor, an index outside the tensor', () => {
    const spec = { name: 'v', shape: [4] };
    const t = (name: string, idx: number[]): SparseTensor[] => [{ name, shape: [4], indices: Uint32Array.from(idx), values: new Float32Array(idx.length) }];
    expect(() => aggregate([t('x', [0])], [spec])).toThrow(/'x', expected 'v'/);
    expect(() => aggregate([[]], [spec])).toThrow(/sent 0 tensors/);
    expect(() => aggregate([t('v', [4])], [spec])).toThrow(/index 4, outside/);
  });
});
