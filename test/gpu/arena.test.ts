// The arena plan: groups together, 256-byte aligned views, chunks no larger than a binding,
// spans per (chunk, group). Pure layout: no device.
import { describe, expect, it } from 'vitest';
import { ARENA_ALIGN, planArena } from '../../src/gpu/arena.ts';
import { KernelInputError } from '../../src/gpu/errors.ts';

describe('planArena', () => {
  const specs = [
    { name: 'norm1', shape: [3], group: 1 },
    { name: 'w1', shape: [10, 10], group: 0 },
    { name: 'norm2', shape: [5], group: 1 },
    { name: 'w2', shape: [64], group: 0 },
  ];

  it('puts each group together, in layout order, on aligned offsets, one span per group', () => {
    const plan = planArena(specs, 1 << 20);
    expect(plan.chunkBytes).toEqual([5 * ARENA_ALIGN]);
    expect(Object.fromEntries([...plan.places].map(([n, p]) => [n, p.offset]))).toEqual({
      w1: 0, //                 400 bytes, padded to 512
      w2: 2 * ARENA_ALIGN, //   256
      norm1: 3 * ARENA_ALIGN, // 12, padded to 256
      norm2: 4 * ARENA_ALIGN, // 20
    });
    expect(plan.spans).toEqual([
      { chunk: 0, offset: 0, bytes: 3 * ARENA_ALIGN, group: 0 },
      { chunk: 0, offset: 3 * ARENA_ALIGN, bytes: ARENA_ALIGN + 20, group: 1 },
    ]);
  });

  it('starts a new chunk when the next tensor would pass the binding limit, and names a tensor that cannot fit', () => {
    const plan = planArena(specs, 2 * ARENA_ALIGN);
    expect(plan.chunkBytes).toEqual([2 * ARENA_ALIGN, 2 * ARENA_ALIGN, ARENA_ALIGN]);
    expect(plan.spans.map((s) => [s.chunk, s.group])).toEqual([[0, 0], [1, 0], [1, 1], [2, 1]]);
    expect(() => planArena(specs, ARENA_ALIGN)).toThrow(KernelInputError);
    expect(() => planArena(specs, ARENA_ALIGN)).toThrow(/w1 needs 400 bytes/);
  });

  it('keeps a bundle in one chunk (a new chunk starts before it) unless the bundle alone passes the limit', () => {
    const bundled = [
      { name: 'a', shape: [64], group: 0 },
      { name: 'q', shape: [64], group: 0, bundle: 'qkv' },
      { name: 'k', shape: [64], group: 0, bundle: 'qkv' },
      { name: 'b', shape: [64], group: 0 },
    ];
    // without the bundle, q would share chunk 0 with a and k would start chunk 1
    const plan = planArena(bundled, 2 * ARENA_ALIGN);
    expect(Object.fromEntries([...plan.places].map(([n, p]) => [n, [p.chunk, p.offset]]))).toEqual({
      a: [0, 0], q: [1, 0], k: [1, ARENA_ALIGN], b: [2, 0],
    });
    // a bundle larger than a chunk is placed as usual
    const big = planArena(bundled, ARENA_ALIGN);
    expect([...big.places.values()].map((p) => p.chunk)).toEqual([0, 1, 2, 3]);
  });
});
