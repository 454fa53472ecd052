import { describe, expect, it } from 'vitest';
import { indexBytes, packIndices, unpackIndices } from '../../src/sparseloco/bitpack.ts';
import { MAX_RICE_PARAM, RiceReader, addRiceBits, bestRiceParam, riceBytes, writeRice } from '../../src/sparseloco/rice.ts';
import { rng } from '../helpers/rng.ts';


/** The documented Rice format, one bit at a time: q ones, a zero, p bits MSB first; bytes filled from bit 7. */
function riceRef(gaps: number[], p: number): Uint8Array {
  const bits: number[] = [];
  for (const g of gaps) {
    const q = Math.floor(g / 2 ** p);
    for (let i = 0; i < q; i++) bits.push(1);
    bits.push(0);
    for (let b = p - 1; b >= 0; b--) bits.push((g >> b) & 1);
  }
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => (out[i >> 3] |= b << (7 - (i & 7))));
  return out;
}

describe('12-bit index packing', () => {
  it('matches the documented layout and round-trips', () => {
    expect(Array.from(packIndices([0xabc, 0x123]))).toEqual([0xbc, 0x3a, 0x12]);
    expect(Array.from(packIndices([0xabc]))).toEqual([0xbc, 0x0a]);
    const u = rng(1);
    for (const n of [0, 1, 2, 3, 63, 64, 1001]) {
      const v = Array.from({ length: n }, () => Math.floor(u() * 4096));
      const packed = packIndices(v);
      expect(packed.length).toBe(indexBytes(n));
      expect(Array.from(unpackIndices(packed, n))).toEqual(v);
    }
    expect(() => packIndices([4096])).toThrow(RangeError);
  });
});

describe('Rice coding', () => {
  it('writes the documented bit layout (checked against a bit-by-bit reference)', () => {
    // gaps 5, 0, 9 at p = 2: 1 0 01 | 0 00 | 11 0 01 → 10010001 10010000
    expect(Array.from(riceRef([5, 0, 9], 2))).toEqual([0b10010001, 0b10010000]);
    const dst = new Uint8Array(2);
    expect(writeRice([5, 0, 9], 3, 2, dst, 0)).toBe(2);
    expect(Array.from(dst)).toEqual([0b10010001, 0b10010000]);
    const u = rng(2);
    for (let trial = 0; trial < 200; trial++) {
      const n = Math.floor(u() * 300);
      const p = trial % (MAX_RICE_PARAM + 1);
      const spread = [1, 8, 64, 600, 4096][trial % 5] >> (p < 4 ? 4 - p : 0);
      const gaps = Array.from({ length: n }, () => Math.floor(u() * (spread + 1)));
      const want = riceRef(gaps, p);
      const out = new Uint8Array(want.length + 3).fill(0xee);
      expect(writeRice(gaps, n, p, out, 1)).toBe(want.length);
      expect(Array.from(out.subarray(1, 1 + want.length))).toEqual(Array.from(want));
      expect(out[0]).toBe(0xee);
      expect(out[want.length + 1]).toBe(0xee);
      const bits = new Float64Array(MAX_RICE_PARAM + 1);
      addRiceBits(gaps, 0, n, bits);
      expect(riceBytes(bits[p])).toBe(want.length);
      // read back, from a buffer with bytes on both sides
      const rd = new RiceReader(out, 1, 1 + want.length, p);
      for (let i = 0; i < n; i++) expect(rd.read(1 << 20)).toBe(gaps[i]);
      expect(rd.paddingIsZero()).toBe(true);
      expect(rd.bytesUsed(1)).toBe(want.length);
    }
  });

  it('picks the p of fewest bits, ties to the smaller', () => {
    const u = rng(3);
    const gaps = Array.from({ length: 64 }, () => Math.floor(-Math.log(1 - u()) * 63));
    const bits = new Float64Array(MAX_RICE_PARAM + 1);
    addRiceBits(gaps, 0, gaps.length, bits);
    const best = bestRiceParam(bits);
    for (let p = 0; p <= MAX_RICE_PARAM; p++) {
      const b = riceRef(gaps, p).length;
      expect(Math.ceil(bits[p] / 8)).toBe(b);
      expect(bits[p]).toBeGreaterThanOrEqual(best.bits);
    }
    expect(best.p).toBeGreaterThanOrEqual(4);
    expect(best.p).toBeLessThanOrEqual(6);
    const tie = new Float64Array(MAX_RICE_PARAM + 1).fill(10);
    expect(bestRiceParam(tie).p).toBe(0);
  });

  it('the reader stops a long unary run at maxQ and never reads past its end', () => {
    const ones = new Uint8Array(1000).fill(0xff);
    const rd = new RiceReader(ones, 0, 1000, 0);
    expect(rd.read(4096)).toBe(-1); // 8000 ones: over 4096 long before the end
    expect(new RiceReader(ones, 0, 1000, 3).read(1 << 20)).toBe(-2); // the run outlasts the stream
    // a code whose zero or remainder lies past the end: the byte after the end is never used
    const b = new Uint8Array([0b11111111, 0b11111110, 0x00]);
    expect(new RiceReader(b, 0, 2, 0).read(100)).toBe(15);
    expect(new RiceReader(b, 0, 1, 0).read(100)).toBe(-2);
    expect(new RiceReader(b, 0, 2, 1).read(100)).toBe(-2); // q = 15, then a remainder bit past the end
    expect(new RiceReader(b, 0, 2, 0).read(14)).toBe(-1);
    // runs longer than 32 bits, at every bit offset
    for (let s = 0; s < 8; s++) {
      for (const q of [31, 32, 33, 63, 64, 65, 100]) {
        const gaps = [s, q * 8 + 5];
        const bytes = riceRef(gaps, 3);
        const r = new RiceReader(bytes, 0, bytes.length, 3);
        expect(r.read(1000)).toBe(s);
        expect(r.read(1000)).toBe(q * 8 + 5);
      }
    }
    expect(() => new RiceReader(b, 0, 4, 0)).toThrow(RangeError);
    expect(() => new RiceReader(b, 0, 1, 12)).toThrow(RangeError);
    expect(() => writeRice([1], 1, 12, new Uint8Array(4), 0)).toThrow(RangeError);
    expect(() => writeRice([-1], 1, 0, new Uint8Array(4), 0)).toThrow(RangeError);
    expect(() => writeRice([100], 1, 0, new Uint8Array(4), 0)).toThrow(RangeError);
  });
});
