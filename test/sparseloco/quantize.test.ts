import { describe, expect, it } from 'vitest';
import { codeBytes, indexBytes, packCodes, packIndices, unpackCodes, unpackIndices } from '../../src/sparseloco/bitpack.ts';
import { dequantize, quantize } from '../../src/sparseloco/quantize.ts';
import { rng } from '../helpers/rng.ts';


function randomValues(n: number, seed: number, spread = 1, offset = 0): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
    out[i] = offset + spread * g * (u() < 0.1 ? 10 : 1);
  }
  return out;
}

/** The quantiser of DESIGN.md, written out plainly in float64. */
function reference(values: Float32Array) {
  const n = values.length;
  const xs = Array.from(values);
  const mu = xs.reduce((a, b) => a + b, 0) / n;
  const sigma = Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / n);
  const scale = sigma === 0 ? 1 : (6 * sigma) / 4;
  const codes = xs.map((x) => Math.min(3, Math.max(0, Math.round((x - mu) / scale + 2))));
  const table = [0, 1, 2, 3].map((c) => {
    const bin = xs.filter((_, i) => codes[i] === c);
    return bin.length ? bin.reduce((a, b) => a + b, 0) / bin.length : mu + (c - 2) * scale;
  });
  return { codes, table: Float32Array.from(table) };
}

describe('2-bit quantiser', () => {
  it.each([[1, 1], [2, 2], [3, 3], [7, 4], [64, 5], [1000, 6], [4096, 7], [9280, 8]])('n = %i: codes in 0..3, table = bin means (seed %i)', (n, seed) => {
    const x = randomValues(n, seed, 0.01 * seed, seed % 2 ? 0.003 : -0.002);
    const q = quantize(x);
    const ref = reference(x);
    expect(q.codes.length).toBe(n);
    expect(q.codes.every((c) => c <= 3)).toBe(true);
    expect(Array.from(q.codes)).toEqual(ref.codes);
    expect(Array.from(q.table)).toEqual(Array.from(ref.table));
    const d = dequantize(q.codes, q.table);
    for (let i = 0; i < n; i++) expect(d[i]).toBe(q.table[q.codes[i]]);
  });

  it('uses all four codes on spread data, with table means inside their bins', () => {
    const x = randomValues(5000, 11);
    const q = quantize(x);
    const used = new Set(q.codes);
    expect(used.size).toBe(4);
    for (let c = 1; c < 4; c++) expect(q.table[c]).toBeGreaterThan(q.table[c - 1]);
  });

  it('σ = 0: every code 2 and the table holds the value exactly', () => {
    for (const v of [0, 1.5, -3.25e-7, 0.1]) {
      const x = new Float32Array(100).fill(v);
      const q = quantize(x);
      expect(q.codes.every((c) => c === 2)).toBe(true);
      expect(q.table[2]).toBe(Math.fround(v));
      expect(Array.from(dequantize(q.codes, q.table))).toEqual(Array.from(x));
      // empty bins get their centres μ + (c − 2)·1
      expect(q.table[0]).toBe(Math.fround(Math.fround(v) - 2));
      expect(q.table[3]).toBe(Math.fround(Math.fround(v) + 1));
    }
  });

  it('a single value decodes exactly', () => {
    const q = quantize(Float32Array.of(-0.0123));
    expect(Array.from(q.codes)).toEqual([2]);
    expect(dequantize(q.codes, q.table)[0]).toBe(Math.fround(-0.0123));
  });

  it('empty bins get their bin centre', () => {
    // μ = 0, σ = 1 for ±1: codes round(±1/1.5 + 2) = 1 and 3; bins 0 and 2 are empty.
    const q = quantize(Float32Array.of(-1, 1, -1, 1));
    expect(Array.from(q.codes)).toEqual([1, 3, 1, 3]);
    expect(Array.from(q.table)).toEqual([-3, -1, 0, 1]);
  });

  it('rejects non-finite values', () => {
    expect(() => quantize(Float32Array.of(1, NaN, 2))).toThrow(/position 1 is not finite/);
    expect(() => quantize(Float32Array.of(Infinity, 2))).toThrow(RangeError);
  });
});

describe('bit-packing', () => {
  it('packs 12-bit indices two per 3 bytes, odd counts padded', () => {
    const u = rng(3);
    for (const n of [0, 1, 2, 3, 4, 5, 63, 64, 65, 4095, 4096]) {
      const v = Uint16Array.from({ length: n }, () => Math.floor(u() * 4096));
      const packed = packIndices(v);
      expect(packed.length).toBe(indexBytes(n));
      expect(packed.length).toBe(Math.ceil((n * 12) / 8));
      expect(Array.from(unpackIndices(packed, n))).toEqual(Array.from(v));
      if (n & 1) expect(packed[packed.length - 1] >> 4).toBe(0);
    }
    expect(Array.from(packIndices(Uint16Array.of(0xabc, 0x123)))).toEqual([0xbc, 0x3a, 0x12]);
    expect(() => packIndices([4096])).toThrow(RangeError);
    expect(() => packIndices([1, -1])).toThrow(RangeError);
  });

  it('packs 2-bit codes four per byte', () => {
    const u = rng(4);
    for (const n of [0, 1, 2, 3, 4, 5, 64, 67]) {
      const v = Uint8Array.from({ length: n }, () => Math.floor(u() * 4));
      const packed = packCodes(v);
      expect(packed.length).toBe(codeBytes(n));
      expect(packed.length).toBe(Math.ceil(n / 4));
      expect(Array.from(unpackCodes(packed, n))).toEqual(Array.from(v));
    }
    expect(Array.from(packCodes([1, 2, 3, 0, 3]))).toEqual([0b00111001, 0b11]);
    expect(() => packCodes([4])).toThrow(RangeError);
  });

  it('packs at an offset into a larger buffer', () => {
    const buf = new Uint8Array(10).fill(0xff);
    packIndices([1, 2, 3], buf, 2);
    expect(Array.from(unpackIndices(buf, 3, undefined, 2))).toEqual([1, 2, 3]);
    expect(buf[0]).toBe(0xff);
    expect(buf[7]).toBe(0xff);
    expect(() => packIndices([1, 2, 3], buf, 6)).toThrow(RangeError);
  });
});
