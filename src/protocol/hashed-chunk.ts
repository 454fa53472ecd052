// The binary payload both piece exchanges send (an update's 'piece', a checkpoint's
// 'checkpoint-range'): a 32-byte hash (what it belongs to), a little-endian u32 (which piece,
// or where in it), then the bytes.
import { fromHex, toHex } from '../base/hex.ts';

export const HASHED_CHUNK_HEADER_BYTES = 32 + 4;

/** `hash` (64 hex digits), `at`, then `data`. */
export function encodeHashedChunk(hash: string, at: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASHED_CHUNK_HEADER_BYTES + data.length);
  out.set(fromHex(hash)!);
  new DataView(out.buffer).setUint32(32, at, true);
  out.set(data, HASHED_CHUNK_HEADER_BYTES);
  return out;
}

/** The payload read back (`data` a view, not a copy), or null when it is too short. */
export function decodeHashedChunk(payload: Uint8Array): { hash: string; at: number; data: Uint8Array } | null {
  if (payload.length < HASHED_CHUNK_HEADER_BYTES) return null;
  const at = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(32, true);
  return { hash: toHex(payload.subarray(0, 32)), at, data: payload.subarray(HASHED_CHUNK_HEADER_BYTES) };
}
