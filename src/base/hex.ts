// Bytes as hex text: lowercase, two digits a byte. Two spellings are in use over one codec:
// bare ('01ab': the control protocol's nonces, signatures and payload hashes) and
// '0x'-prefixed ('0x01ab': key files and the keystore's seeds, as Polkadot tools write them).
// Decoding accepts either case and checks the whole string first: a string that is not hex
// never yields bytes. Environment-free.

const HEX_DIGIT_PAIRS = /^([0-9a-fA-F]{2})*$/;
const PREFIX = '0x';

/** Bare hex: [0x01, 0xab] → '01ab'. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** '0x'-prefixed hex: [0x01, 0xab] → '0x01ab'. */
export function toPrefixedHex(bytes: Uint8Array): string {
  return PREFIX + toHex(bytes);
}

/** Whether s is a string of '0x' followed by an even number of hex digits. */
export function isPrefixedHex(s: unknown): s is string {
  return typeof s === 'string' && s.startsWith(PREFIX) && HEX_DIGIT_PAIRS.test(s.slice(PREFIX.length));
}

/** The bytes of hex with or without '0x'; null when s is not such a string. */
export function fromHex(s: unknown): Uint8Array | null {
  if (typeof s !== 'string') return null;
  const digits = s.startsWith(PREFIX) ? s.slice(PREFIX.length) : s;
  return HEX_DIGIT_PAIRS.test(digits) ? decodeDigits(digits) : null;
}

/** The bytes of '0x'-prefixed hex; throws TypeError on anything else (bare hex included). */
export function fromPrefixedHex(s: string): Uint8Array {
  if (!isPrefixedHex(s)) throw new TypeError('not 0x-prefixed hex');
  return decodeDigits(s.slice(PREFIX.length));
}

/** An even number of hex digits, already checked, as bytes. */
function decodeDigits(digits: string): Uint8Array {
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A u32 as '0x' and eight hex digits, for checksums and hashes in error messages. */
export function hex32(x: number): string {
  return `0x${(x >>> 0).toString(16).padStart(8, '0')}`;
}
