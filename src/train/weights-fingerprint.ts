// The weights fingerprint: one SHA-256 that names θ_start exactly, equal on every replica
// after the same commits. A CRC would not do: it is linear, so weights could be forged to
// match it. The fingerprint folds a SHA-256 of each parameter tensor's bytes (float32
// little-endian, in layout order) with its name; the fold is shared so that a Node process
// hashing a checkpoint file tensor by tensor (src/coordinator/checkpoint-verify.ts) gets
// the same value as a replica hashing its tensors in memory. Environment-free.
import { sha256AsU8a } from '@polkadot/util-crypto';
import { sha256 } from '../wallet/sha256.ts';
import { toHex } from '../base/hex.ts';

const DOMAIN = new TextEncoder().encode('tessera-weights-v1\0');
export const FINGERPRINT_HEX = /^[0-9a-f]{64}$/;

/** The fingerprint from each tensor's name and SHA-256 digest, in layout order. */
export function fingerprintOfDigests(digests: Iterable<readonly [string, Uint8Array]>): string {
  const parts: Uint8Array[] = [DOMAIN];
  for (const [name, digest] of digests) parts.push(new TextEncoder().encode(`${name}\0`), digest);
  let n = 0;
  for (const p of parts) n += p.length;
  const all = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return toHex(sha256AsU8a(all));
}

/** The fingerprint of parameter tensors given in layout order (name without the 'param/' prefix). */
export async function weightsFingerprint(tensors: Iterable<readonly [string, Float32Array]>): Promise<string> {
  const digests: [string, Uint8Array][] = [];
  for (const [name, data] of tensors) digests.push([name, await sha256(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))]);
  return fingerprintOfDigests(digests);
}
