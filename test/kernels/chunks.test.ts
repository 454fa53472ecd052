import { describe, expect, it } from 'vitest';
import { chunkGrid, chunkSize, flatIndex, isValidLocal, keptInTensor } from '../../src/kernels/chunks.ts';

describe('chunk grid', () => {
  it.each([
    [[256, 64]],
    [[65, 130]],
    [[1, 1]],
    [[172, 64]],
    [[10000]],
    [[64]],
  ])('covers every element of %j exactly once', (shape) => {
    const g = chunkGrid(shape);
    const n = shape.reduce((a, b) => a * b, 1);
    const seen = new Uint8Array(n);
    let total = 0;
    for (let c = 0; c < g.count; c++) {
      for (let local = 0; local < 4096; local++) {
        if (!isValidLocal(g, c, local)) continue;
        seen[flatIndex(g, c, local)]++;
        total++;
      }
      expect(total).toBeGreaterThan(0);
    }
    expect(total).toBe(n);
    expect(seen.every((v) => v === 1)).toBe(true);
    let sizes = 0;
    for (let c = 0; c < g.count; c++) sizes += chunkSize(g, c);
    expect(sizes).toBe(n);
  });

  it('keeps 64 per full chunk: 1.5625% density', () => {
    const g = chunkGrid([768, 768]);
    expect(g.count).toBe(144);
    expect(keptInTensor(g, 64) / (768 * 768)).toBe(0.015625);
    expect(keptInTensor(chunkGrid([5]), 64)).toBe(5);
  });

  it('rejects shapes it cannot chunk', () => {
    expect(() => chunkGrid([2, 3, 4])).toThrow(/only 1-D and 2-D/);
    expect(() => chunkGrid([0, 3])).toThrow(/invalid shape/);
    expect(() => chunkGrid([8, 8], { block: 128 })).toThrow(/12-bit/);
  });
});
