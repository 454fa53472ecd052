// Bit-packing for the wire (DESIGN.md, step 3): 12-bit local indices two per 3 bytes, 2-bit
// codes four per byte, little-end first.
//   indices a, b → byte0 = a & 0xff, byte1 = (a >> 8) | (b & 0xf) << 4, byte2 = b >> 4;
//   an odd count ends with 2 bytes whose top 4 bits are zero: ceil(12n/8) bytes in all.
//   codes c0..c3 → c0 | c1 << 2 | c2 << 4 | c3 << 6; unused high bits of the last byte are
//   zero: ceil(2n/8) bytes in all.
// Environment-free.

export const INDEX_BITS = 12;
export const CODE_BITS = 2;

/** Bytes of n packed 12-bit indices: ceil(12n/8). */
export function indexBytes(n: number): number {
  return Math.ceil((n * INDEX_BITS) / 8);
}

/** Bytes of n packed 2-bit codes: ceil(2n/8). */
export function codeBytes(n: number): number {
  return Math.ceil((n * CODE_BITS) / 8);
}

const is12 = (v: number) => v >= 0 && v < 4096 && (v | 0) === v;
function bad12(v: number, i: number): never {
  throw new RangeError(`packIndices: value ${v} at ${i} is not a 12-bit integer`);
}

/** Packs 12-bit values into dst at offset (default: a fresh array); returns dst. Throws RangeError on a value ≥ 4096. */
export function packIndices(src: ArrayLike<number>, dst?: Uint8Array, offset = 0): Uint8Array {
  const n = src.length;
  const out = dst ?? new Uint8Array(indexBytes(n));
  if (offset < 0 || offset + indexBytes(n) > out.length) throw new RangeError(`packIndices: ${indexBytes(n)} bytes do not fit at offset ${offset} of ${out.length}`);
  let o = offset;
  let i = 0;
  for (; i + 2 <= n; i += 2, o += 3) {
    const a = src[i], b = src[i + 1];
    if (!is12(a)) bad12(a, i);
    if (!is12(b)) bad12(b, i + 1);
    out[o] = a & 0xff;
    out[o + 1] = (a >>> 8) | ((b & 0xf) << 4);
    out[o + 2] = b >>> 4;
  }
  if (i < n) {
    const a = src[i];
    if (!is12(a)) bad12(a, i);
    out[o] = a & 0xff;
    out[o + 1] = a >>> 8;
  }
  return out;
}

/** Unpacks n 12-bit values from src at offset into dst (default: fresh); returns dst. */
export function unpackIndices(src: Uint8Array, n: number, dst?: Uint16Array, offset = 0): Uint16Array {
  const out = dst ?? new Uint16Array(n);
  if (offset < 0 || offset + indexBytes(n) > src.length) throw new RangeError(`unpackIndices: ${indexBytes(n)} bytes are not there at offset ${offset} of ${src.length}`);
  if (out.length < n) throw new RangeError(`unpackIndices: output holds ${out.length} values, ${n} needed`);
  let o = offset;
  let i = 0;
  for (; i + 2 <= n; i += 2, o += 3) {
    const b1 = src[o + 1];
    out[i] = src[o] | ((b1 & 0xf) << 8);
    out[i + 1] = (b1 >>> 4) | (src[o + 2] << 4);
  }
  if (i < n) out[i] = src[o] | ((src[o + 1] & 0xf) << 8);
  return out;
}

/** Packs 2-bit codes into dst at offset (default: fresh); returns dst. Throws RangeError on a code > 3. */
export function packCodes(src: ArrayLike<number>, dst?: Uint8Array, offset = 0): Uint8Array {
  const n = src.length;
  const out = dst ?? new Uint8Array(codeBytes(n));
  if (offset < 0 || offset + codeBytes(n) > out.length) throw new RangeError(`packCodes: ${codeBytes(n)} bytes do not fit at offset ${offset} of ${out.length}`);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const c = src[i];
    if (!(c >= 0 && c <= 3) || (c | 0) !== c) throw new RangeError(`packCodes: code ${c} at ${i} is not in 0..3`);
    acc |= c << ((i & 3) << 1);
    if ((i & 3) === 3) {
      out[offset + (i >>> 2)] = acc;
      acc = 0;
    }
  }
  if (n & 3) out[offset + (n >>> 2)] = acc;
  return out;
}

/** Unpacks n 2-bit codes from src at offset into dst (default: fresh); returns dst. */
export function unpackCodes(src: Uint8Array, n: number, dst?: Uint8Array, offset = 0): Uint8Array {
  const out = dst ?? new Uint8Array(n);
  if (offset < 0 || offset + codeBytes(n) > src.length) throw new RangeError(`unpackCodes: ${codeBytes(n)} bytes are not there at offset ${offset} of ${src.length}`);
  if (out.length < n) throw new RangeError(`unpackCodes: output holds ${out.length} values, ${n} needed`);
  for (let i = 0; i < n; i++) out[i] = (src[offset + (i >>> 2)] >>> ((i & 3) << 1)) & 3;
  return out;
}
