import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/base/crc32.ts';
import { rng } from '../helpers/rng.ts';

const text = (s: string) => new TextEncoder().encode(s);

/** CRC32 one bit at a time, straight from the definition (reflected, polynomial 0xEDB88320). */
function bitwiseCrc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

function randomBytes(n: number, next: () => number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

describe('crc32', () => {
  it('matches the known vectors of CRC-32/ISO-HDLC', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(text('123456789'))).toBe(0xcbf43926); // the catalogue's check value
    expect(crc32(text('a'))).toBe(0xe8b7be43);
    expect(crc32(text('abc'))).toBe(0x352441c2);
    expect(crc32(text('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
    expect(crc32(new Uint8Array(32).fill(0xff))).toBe(0xff6cab0b);
  });

  it('equals the bitwise definition and zlib at every length 0..64 and on views at odd offsets', () => {
    const next = rng(16);
    const data = randomBytes(200, next);
    for (let n = 0; n <= 64; n++) {
      for (const at of [0, 1, 3]) {
        const view = data.subarray(at, at + n);
        expect(crc32(view), `${n} bytes at ${at}`).toBe(bitwiseCrc32(view));
        expect(crc32(view), `${n} bytes at ${at}`).toBe(zlibCrc32(view));
      }
    }
    const big = randomBytes(1 << 16, next);
    expect(crc32(big)).toBe(zlibCrc32(big));
  });

  it('continues from a previous value: crc32(b, crc32(a)) = crc32(a‖b)', () => {
    const next = rng(7);
    const all = randomBytes(1000, next);
    for (const cut of [0, 1, 4, 5, 333, 999, 1000]) {
      expect(crc32(all.subarray(cut), crc32(all.subarray(0, cut))), `cut at ${cut}`).toBe(crc32(all));
    }
  });

  it('sees any single changed bit', () => {
    const data = randomBytes(64, rng(3));
    const good = crc32(data);
    for (let i = 0; i < data.length * 8; i++) {
      const bad = data.slice();
      bad[i >> 3] ^= 1 << (i & 7);
      expect(crc32(bad), `bit ${i}`).not.toBe(good);
    }
  });
});
