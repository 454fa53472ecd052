// CRC32 of a concatenation from its parts' CRCs (zlib's crc32_combine): crc(a‖b) from crc(a),
// crc(b) and b's length, by appending |b| zero bytes to crc(a) as a GF(2) matrix operator.
// The simulation's templated updates (update-templates.ts) rewrite a few regions of an
// 18.6 MB encoding: the unchanged stretches' CRCs are kept, so the trailing CRC32 costs the
// rewritten bytes plus one 32×32 bit-matrix product per stretch, not a pass over the whole.
import { crc32 } from '../base/crc32.ts';

const POLYNOMIAL = 0xedb88320;
const BITS = 32;

function times(matrix: Uint32Array, vector: number): number {
  let sum = 0;
  for (let i = 0, v = vector >>> 0; v !== 0; i++, v >>>= 1) if (v & 1) sum ^= matrix[i];
  return sum >>> 0;
}

function square(out: Uint32Array, matrix: Uint32Array): void {
  for (let n = 0; n < BITS; n++) out[n] = times(matrix, matrix[n]);
}

/** The operator that appends `bytes` zero bytes to a CRC (as a reflected 32-bit register). */
export function zeroBytesOperator(bytes: number): Uint32Array {
  if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`zeroBytesOperator: ${bytes} is not a byte count`);
  // One zero bit; squared twice: four bits; then doubled per bit of `bytes` × 8.
  let odd = new Uint32Array(BITS);
  let even = new Uint32Array(BITS);
  odd[0] = POLYNOMIAL;
  for (let n = 1, row = 1; n < BITS; n++, row <<= 1) odd[n] = row >>> 0;
  square(even, odd); // 2 bits
  square(odd, even); // 4 bits
  const result = new Uint32Array(BITS);
  for (let n = 0; n < BITS; n++) result[n] = (1 << n) >>> 0; // identity
  let acc: Uint32Array = result;
  let left = bytes;
  while (left > 0) {
    square(even, odd); // first pass: 8 bits = one byte
    if (left % 2 === 1) acc = compose(even, acc);
    left = Math.floor(left / 2);
    [odd, even] = [even, odd];
  }
  return acc;
}

/** b∘a: first a, then b. */
function compose(b: Uint32Array, a: Uint32Array): Uint32Array {
  const out = new Uint32Array(BITS);
  for (let n = 0; n < BITS; n++) out[n] = times(b, a[n]);
  return out;
}

/** crc(a‖b) from crc(a) and crc(b), given `appendB`: zeroBytesOperator(b's length). */
export function crc32Combine(crcA: number, crcB: number, appendB: Uint32Array): number {
  return (times(appendB, crcA) ^ crcB) >>> 0;
}

/** A stretch of bytes whose CRC is known: combining it costs one matrix product. */
export interface KnownStretch {
  crc: number;
  append: Uint32Array;
}

export function knownStretch(bytes: Uint8Array): KnownStretch {
  return { crc: crc32(bytes), append: zeroBytesOperator(bytes.length) };
}
