// md5Hex (src/base/md5.ts) against RFC 1321's test suite and Node's own MD5 on lengths around
// the block and padding boundaries, and on a megabyte (with its time: the gather's check of a
// neighbour's copy against the bucket's ETag costs one such pass per update).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5Hex } from '../../src/base/md5.ts';

const text = (s: string) => new TextEncoder().encode(s);

describe('md5Hex', () => {
  it("gives RFC 1321's answers", () => {
    expect(md5Hex(text(''))).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(md5Hex(text('a'))).toBe('0cc175b9c0f1b6a831c399e269772661');
    expect(md5Hex(text('abc'))).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(md5Hex(text('message digest'))).toBe('f96b697d7cb7938d525a2f31aaf161d0');
    expect(md5Hex(text('12345678901234567890123456789012345678901234567890123456789012345678901234567890'))).toBe('57edf4a22be3c955ac49da2e2107b67a');
  });

  it("matches Node's MD5 around the block and padding boundaries, and on a megabyte", () => {
    for (const n of [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect(md5Hex(b)).toBe(createHash('md5').update(b).digest('hex'));
    }
    const mb = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24);
    const t0 = performance.now();
    expect(md5Hex(mb)).toBe(createHash('md5').update(mb).digest('hex'));
    console.log(`md5Hex: 1 MiB in ${(performance.now() - t0).toFixed(1)} ms`);
  });
});
