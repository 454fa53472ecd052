// Rice codes of non-negative integers (the gaps between a chunk's ascending kept indices,
// wire.ts), with parameter p in 0..MAX_RICE_PARAM:
//   value g → quotient q = g >> p in unary as q one-bits then one zero-bit, then the
//   remainder g & (2^p − 1) in p bits, most significant bit first: q + 1 + p bits.
// Bits fill each byte from its most significant bit (bit 7) down; a stream ends with zero
// bits up to the next byte boundary, so n codes of B bits in all take ceil(B/8) bytes.
// The reader never reads a bit at or past its end, and every unary run is bounded by the
// caller's largest allowed quotient, so its work is proportional to the bits it consumes.
// Environment-free.

export const MAX_RICE_PARAM = 11;

/**
 * Adds to bits[p], for every p in 0..MAX_RICE_PARAM, the bits of the Rice codes of
 * gaps[start, start+count). Gaps must be non-negative integers below 2^16.
 */
export function addRiceBits(gaps: ArrayLike<number>, start: number, count: number, bits: Float64Array): void {
  // Σ (g >> p) per p, then + count·(1 + p): sums stay exact (below 2^53).
  const s = new Float64Array(MAX_RICE_PARAM + 1);
  for (let i = start, end = start + count; i < end; i++) {
    const g = gaps[i];
    for (let p = 0; p <= MAX_RICE_PARAM; p++) s[p] += g >>> p;
  }
  for (let p = 0; p <= MAX_RICE_PARAM; p++) bits[p] += s[p] + count * (1 + p);
}

/** The p of fewest bits (ties → the smaller p) and that bit count. */
export function bestRiceParam(bits: Float64Array): { p: number; bits: number } {
  let best = 0;
  for (let p = 1; p <= MAX_RICE_PARAM; p++) if (bits[p] < bits[best]) best = p;
  return { p: best, bits: bits[best] };
}

/** Bytes of a Rice stream of `bits` bits: ceil(bits/8). */
export function riceBytes(bits: number): number {
  return Math.ceil(bits / 8);
}

/**
 * Writes the Rice codes of gaps[0, n) with parameter p into dst at offset, zero-padded to a
 * byte boundary; returns the bytes written. Throws RangeError on a bad p, a negative or
 * non-integer gap, or too small a destination.
 */
export function writeRice(gaps: ArrayLike<number>, n: number, p: number, dst: Uint8Array, offset: number): number {
  if (!Number.isInteger(p) || p < 0 || p > MAX_RICE_PARAM) throw new RangeError(`writeRice: parameter ${p} is not in 0..${MAX_RICE_PARAM}`);
  const mask = (1 << p) - 1;
  let acc = 0; // pending bits, fewer than 8 after each flush
  let nb = 0;
  let o = offset;
  const end = dst.length;
  for (let i = 0; i < n; i++) {
    const g = gaps[i];
    if (!(g >= 0) || (g >>> 0) !== g) throw new RangeError(`writeRice: gap ${g} at ${i} is not a non-negative integer`);
    let q = g >>> p;
    while (q >= 16) {
      acc = (acc << 16) | 0xffff;
      nb += 16;
      q -= 16;
      while (nb >= 8) {
        nb -= 8;
        if (o >= end) throw new RangeError(`writeRice: the stream does not fit in ${end - offset} bytes`);
        dst[o++] = (acc >>> nb) & 0xff;
      }
      acc &= (1 << nb) - 1;
    }
    // q ones and a zero (at most 16 bits on top of < 8 pending), flush, then p ≤ 11 bits.
    acc = (acc << (q + 1)) | (((1 << q) - 1) << 1);
    nb += q + 1;
    while (nb >= 8) {
      nb -= 8;
      if (o >= end) throw new RangeError(`writeRice: the stream does not fit in ${end - offset} bytes`);
      dst[o++] = (acc >>> nb) & 0xff;
    }
    acc = ((acc & ((1 << nb) - 1)) << p) | (g & mask);
    nb += p;
    while (nb >= 8) {
      nb -= 8;
      if (o >= end) throw new RangeError(`writeRice: the stream does not fit in ${end - offset} bytes`);
      dst[o++] = (acc >>> nb) & 0xff;
    }
    acc &= (1 << nb) - 1;
  }
  if (nb > 0) {
    if (o >= end) throw new RangeError(`writeRice: the stream does not fit in ${end - offset} bytes`);
    dst[o++] = (acc << (8 - nb)) & 0xff;
  }
  return o - offset;
}

/**
 * Reads Rice codes from bytes [start, end) of a buffer, MSB first. `read` returns the next
 * value, or −1 when its quotient would exceed `maxQ` (checked while the unary run is read, so
 * a long run stops early), or −2 when the code does not end before the stream does.
 */
export class RiceReader {
  /** Bit position from the start of the buffer. */
  pos: number;
  private readonly endBit: number;
  private readonly fastEnd: number;

  constructor(private readonly b: Uint8Array, start: number, private readonly end: number, private readonly p: number) {
    if (!Number.isInteger(p) || p < 0 || p > MAX_RICE_PARAM) throw new RangeError(`RiceReader: parameter ${p} is not in 0..${MAX_RICE_PARAM}`);
    if (start < 0 || end < start || end > b.length) throw new RangeError(`RiceReader: bytes ${start}..${end} are not inside the ${b.length}-byte buffer`);
    this.pos = 8 * start;
    this.endBit = 8 * end;
    this.fastEnd = end - 5;
  }

  /** 32 bits from bit `pos` on (as an int32); bytes at or past the end read as zero. */
  private peek(pos: number): number {
    const b = this.b;
    const i = pos >>> 3;
    const s = pos & 7;
    if (i <= this.fastEnd) {
      const w = (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
      return s === 0 ? w : (w << s) | (b[i + 4] >>> (8 - s));
    }
    const e = this.end;
    const at = (j: number) => (j < e ? b[j] : 0);
    const w = (at(i) << 24) | (at(i + 1) << 16) | (at(i + 2) << 8) | at(i + 3);
    return s === 0 ? w : (w << s) | (at(i + 4) >>> (8 - s));
  }

  read(maxQ: number): number {
    const p = this.p;
    let pos = this.pos;
    let q = 0;
    let w: number;
    let ones: number;
    for (;;) {
      if (pos >= this.endBit) return -2;
      w = this.peek(pos);
      ones = Math.clz32(~w);
      if (q + ones > maxQ) return -1;
      if (ones < 32) break;
      q += 32;
      pos += 32;
    }
    q += ones;
    let r = 0;
    if (p > 0) {
      if (ones + 1 + p <= 32 && ones < 31) r = (w << (ones + 1)) >>> (32 - p);
      else r = this.peek(pos + ones + 1) >>> (32 - p);
    }
    pos += ones + 1 + p;
    if (pos > this.endBit) return -2;
    this.pos = pos;
    return (q << p) | r;
  }

  /** True when the rest of the current byte is zero bits. */
  paddingIsZero(): boolean {
    const s = this.pos & 7;
    return s === 0 || (this.b[this.pos >>> 3] & (0xff >>> s)) === 0;
  }

  /** Bytes consumed from `start`, counting a partly read last byte. */
  bytesUsed(start: number): number {
    return Math.ceil(this.pos / 8) - start;
  }
}
