// Byte helpers for the wallet (equality, UTF-8), kept here rather than taken from
// @polkadot/util, whose name the engine's Node-module lint pattern ('util') also matches.
// Hex is in ../base/hex.ts. Nothing cryptographic lives here.

/** Constant-time in the contents (not the lengths). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function fromUtf8(b: Uint8Array): string {
  return new TextDecoder('utf-8').decode(b);
}
