// Byte helpers for the wallet (hex, equality, UTF-8), kept here rather than taken from
// @polkadot/util, whose name the engine's Node-module lint pattern ('util') also matches.
// Nothing cryptographic lives here.

const HEX = /^0x([0-9a-fA-F]{2})*$/;

/** Whether s is '0x' followed by an even number of hex digits. */
export function isHexString(s: unknown): s is string {
  return typeof s === 'string' && HEX.test(s);
}

export function hexToBytes(s: string): Uint8Array {
  if (!isHexString(s)) throw new TypeError('not 0x-prefixed hex');
  const out = new Uint8Array((s.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 + 2 * i, 4 + 2 * i), 16);
  return out;
}

export function bytesToHex(b: Uint8Array): string {
  let s = '0x';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

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
