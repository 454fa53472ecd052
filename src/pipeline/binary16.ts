// IEEE 754 binary16 ("half") from and to f32 bits, exactly: the f16 mode of the pipeline
// hand-off (activation-codec.ts) sends activations and their gradients as halves. CPU code on
// numbers; environment-free.

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * The binary16 bits of the f32 value `x`, rounded to nearest, ties to even (IEEE 754):
 * subnormal halves below 2^−14, ±0 below half the smallest subnormal (2^−25; exactly 2^−25
 * ties to 0), ±Inf from 65520 up (the midpoint past the largest half, 65504), NaN → quiet NaN.
 */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e === 0xff) return m ? sign | 0x7e00 : sign | 0x7c00;
  if (e > 142) return sign | 0x7c00; // ≥ 2^16: overflow
  if (e >= 113) {
    // a normal half (exponent e − 112 in 1..30); rounding may carry into the exponent, and
    // from 0x7bff into 0x7c00 = Inf, which is the IEEE result
    let h = ((e - 112) << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
    return sign | h;
  }
  // a subnormal half k·2^−24: k = M·2^(e−126) with M the 24-bit significand
  if (e < 102) return sign; // shift > 24: |x| < 2^−25, rounds to 0
  const M = m | 0x800000;
  const shift = 126 - e; // 14..24
  let k = M >>> shift;
  const rem = M & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (k & 1))) k++; // k = 1024 is the smallest normal: correct
  return sign | k;
}

/** The value of binary16 bits `h` (exact in f32/f64). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** The largest finite binary16 value. */
export const F16_MAX = 65504;
