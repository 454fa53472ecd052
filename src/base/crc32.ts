// CRC32 (IEEE 802.3: reflected, polynomial 0xEDB88320), the checksum every binary format of
// Tessera ends with (token shards, checkpoints, SparseLoCo updates, pipeline hand-offs) and the
// replica's weight fingerprint. Slicing-by-4: four table lookups per 4 bytes. Environment-free.

const POLYNOMIAL = 0xedb88320;

const CRC_TABLES = (() => {
  const t = new Uint32Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 4; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
  }
  return t;
})();

/**
 * CRC32 of bytes, continuing from a previous value (`crc32(b, crc32(a))` = CRC of a‖b).
 * crc32(UTF-8 '123456789') = 0xCBF43926.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const T = CRC_TABLES;
  let c = ~previous >>> 0;
  let i = 0;
  const n = bytes.length;
  for (; i + 4 <= n; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = T[768 + (c & 0xff)] ^ T[512 + ((c >>> 8) & 0xff)] ^ T[256 + ((c >>> 16) & 0xff)] ^ T[c >>> 24];
  }
  for (; i < n; i++) c = T[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
