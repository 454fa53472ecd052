// SparseLoCo's 2-bit quantiser of one tensor's kept values (DESIGN.md, step 3): subtract the
// mean μ; σ = standard deviation of x − μ (population, over the kept values); scale = 6σ/4;
// code = clamp(round((x − μ)/scale + 2), 0, 3). The receiver gets a 4-entry lookup table per
// tensor: the mean ORIGINAL value of the values that fell in each bin (an empty bin gets its
// centre μ + (code − 2)·scale, clamped to the f32 range). σ = 0 (all values equal): scale 1,
// every code 2, and table[2] is that value exactly.
//
// Deterministic: sums run in float64 in index order and the table is rounded to f32 once, so
// the sender's own decode (wire.ts decodeOwn) is bit-identical to what every receiver applies.
// Environment-free.

export interface Quantized {
  /** One code in 0..3 per value. */
  codes: Uint8Array;
  /** Bin means (f32), indexed by code. */
  table: Float32Array;
}

const F32_MAX = 3.4028234663852886e38;

/** Mean, σ and scale of the values (float64, in order). Throws RangeError on a non-finite value. */
export function quantizeStats(values: ArrayLike<number>): { mean: number; std: number; scale: number } {
  const n = values.length;
  if (n === 0) return { mean: 0, std: 0, scale: 1 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - mean;
    ss += d * d;
  }
  const std = Math.sqrt(ss / n);
  // Any NaN or ±Inf among finite-ranged f32 values makes the mean or σ non-finite.
  if (!Number.isFinite(mean) || !Number.isFinite(std)) {
    let bad = 0;
    while (bad < n && Number.isFinite(values[bad])) bad++;
    throw new RangeError(`quantize: value ${values[bad]} at position ${bad} is not finite`);
  }
  return { mean, std, scale: std === 0 ? 1 : (6 * std) / 4 };
}

/** 2-bit codes and the 4-entry table of bin means. Throws RangeError on a non-finite value. */
export function quantize(values: ArrayLike<number>): Quantized {
  const n = values.length;
  const { mean, scale } = quantizeStats(values);
  const codes = new Uint8Array(n);
  const sums = [0, 0, 0, 0];
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const x = values[i];
    let c = Math.round((x - mean) / scale + 2);
    c = c < 0 ? 0 : c > 3 ? 3 : c;
    codes[i] = c;
    sums[c] += x;
    counts[c]++;
  }
  const table = new Float32Array(4);
  for (let c = 0; c < 4; c++) {
    let v = counts[c] > 0 ? sums[c] / counts[c] : mean + (c - 2) * scale;
    if (v > F32_MAX) v = F32_MAX;
    else if (v < -F32_MAX) v = -F32_MAX;
    table[c] = v;
  }
  return { codes, table };
}

/** table[code] for each code. Throws RangeError on a code outside 0..3. */
export function dequantize(codes: Uint8Array, table: ArrayLike<number>, out = new Float32Array(codes.length)): Float32Array {
  if (table.length !== 4) throw new RangeError(`dequantize: the table has ${table.length} entries, expected 4`);
  if (out.length < codes.length) throw new RangeError(`dequantize: output holds ${out.length} values, ${codes.length} needed`);
  const t0 = table[0], t1 = table[1], t2 = table[2], t3 = table[3];
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    out[i] = c === 0 ? t0 : c === 1 ? t1 : c === 2 ? t2 : c === 3 ? t3 : NaN;
    if (c > 3) throw new RangeError(`dequantize: code ${c} at position ${i} is outside 0..3`);
  }
  return out;
}
