// MD5 (RFC 1321), for one job only: comparing bytes with an S3 object's ETag, which for an
// object PUT whole is the MD5 of its body, computed by the storage server. Not a security
// hash by itself: where it binds bytes (src/contributor/gather.ts) the bytes are also
// checked piece by piece against a blake2b root and opened against a signed blake2b hash.
// Environment-free (WebCrypto has no MD5).

/** Per-round left-rotation amounts. */
const SHIFTS = Int32Array.from([7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]);
/** floor(2^32 × |sin(i + 1)|). */
const K = Int32Array.from(Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0));
const BLOCK_BYTES = 64;

/** The MD5 of `data`, as 32 lowercase hex digits (an S3 ETag without its quotes). */
export function md5Hex(data: Uint8Array): string {
  const state = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  const words = new Uint32Array(16);
  const full = data.length - (data.length % BLOCK_BYTES);
  for (let at = 0; at < full; at += BLOCK_BYTES) block(state, words, data, at);
  // The tail, 0x80, zeros, then the length in bits (u64, little-endian): one or two blocks.
  const tail = new Uint8Array(data.length % BLOCK_BYTES < 56 ? BLOCK_BYTES : 2 * BLOCK_BYTES);
  tail.set(data.subarray(full));
  tail[data.length - full] = 0x80;
  const bits = data.length * 8;
  const dv = new DataView(tail.buffer);
  dv.setUint32(tail.length - 8, bits >>> 0, true);
  dv.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
  for (let at = 0; at < tail.length; at += BLOCK_BYTES) block(state, words, tail, at);
  let hex = '';
  for (const w of state) for (let b = 0; b < 4; b++) hex += ((w >>> (8 * b)) & 0xff).toString(16).padStart(2, '0');
  return hex;
}

/** Message word index of each step (rounds 2–4 permute the block's 16 words). */
const WORD = Int32Array.from({ length: 64 }, (_, i) => (i < 16 ? i : i < 32 ? (5 * i + 1) & 15 : i < 48 ? (3 * i + 5) & 15 : (7 * i) & 15));

function block(state: Uint32Array, m: Uint32Array, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++) {
    const o = at + 4 * i;
    m[i] = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
  }
  let a = state[0] | 0;
  let b = state[1] | 0;
  let c = state[2] | 0;
  let d = state[3] | 0;
  // The four rounds as four loops, each with its own mixing function (no branch per step).
  for (let i = 0; i < 16; i++) {
    const sum = (a + ((b & c) | (~b & d)) + K[i] + m[WORD[i]]) | 0;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << SHIFTS[i]) | (sum >>> (32 - SHIFTS[i])))) | 0;
  }
  for (let i = 16; i < 32; i++) {
    const sum = (a + ((d & b) | (~d & c)) + K[i] + m[WORD[i]]) | 0;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << SHIFTS[i]) | (sum >>> (32 - SHIFTS[i])))) | 0;
  }
  for (let i = 32; i < 48; i++) {
    const sum = (a + (b ^ c ^ d) + K[i] + m[WORD[i]]) | 0;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << SHIFTS[i]) | (sum >>> (32 - SHIFTS[i])))) | 0;
  }
  for (let i = 48; i < 64; i++) {
    const sum = (a + (c ^ (b | ~d)) + K[i] + m[WORD[i]]) | 0;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << SHIFTS[i]) | (sum >>> (32 - SHIFTS[i])))) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
}
