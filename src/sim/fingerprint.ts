// The simulated weights: no tensors, only a fingerprint every replica derives from the
// commits it applied — a hash chain over each round's committed update hashes, in commit
// order. Two replicas that applied the same updates in the same order hold the same
// fingerprint, as real replicas hold bit-identical weights; one that missed, added or
// reordered an update differs from then on. The simulated contributors and the simulation's
// validator engine compute it independently and the report compares them.
import { createHash } from 'node:crypto';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { toHex } from '../base/hex.ts';
import type { RunConfig } from '../protocol/run-config.ts';

/** θ_start of round 0: the run and its seed. */
export function genesisFingerprint(config: Pick<RunConfig, 'run' | 'seed' | 'model'>): string {
  return createHash('sha256').update(`tessera-sim:${config.run}:${config.model}:${config.seed}`).digest('hex');
}

/** θ_start(round + 1) from θ_start(round) and the round's committed payload hashes, in commit order. */
export function nextFingerprint(previous: string, round: number, hashes: readonly string[]): string {
  const h = createHash('sha256').update(previous).update(`:${round}`);
  for (const x of hashes) h.update(`:${x}`);
  return h.digest('hex');
}

/** The payload hash a commit names (the envelope's blake2b-256). */
export function payloadHash(payload: Uint8Array): string {
  return toHex(blake2AsU8a(payload, 256));
}

/** A simulated checkpoint: "TSIM", the round (u32 LE), the fingerprint as 32 bytes. */
const MAGIC = [0x54, 0x53, 0x49, 0x4d];
const FINGERPRINT_BYTES = 32;
export const SIM_WEIGHTS_BYTES = MAGIC.length + 4 + FINGERPRINT_BYTES;

export function encodeSimWeights(round: number, fingerprint: string): Uint8Array {
  const out = new Uint8Array(SIM_WEIGHTS_BYTES);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, round, true);
  out.set(Buffer.from(fingerprint, 'hex'), MAGIC.length + 4);
  return out;
}

export function decodeSimWeights(bytes: Uint8Array, source: string): { round: number; fingerprint: string } {
  if (bytes.length !== SIM_WEIGHTS_BYTES || MAGIC.some((m, i) => bytes[i] !== m)) throw new Error(`${source} is not a simulated checkpoint (TSIM, ${SIM_WEIGHTS_BYTES} bytes)`);
  const round = new DataView(bytes.buffer, bytes.byteOffset).getUint32(MAGIC.length, true);
  return { round, fingerprint: toHex(bytes.subarray(MAGIC.length + 4)) };
}
