// The gather exchange's vocabulary between neighbours (src/contributor/gather.ts): small JSON
// messages carried in signed 'gather' envelopes over the mesh. The updates themselves travel
// as their authors' own signed 'update' envelopes, unchanged, so a receiver checks the
// author's signature and the commit's payload hash, never the relaying neighbour's word.
//
//   have   {round, hashes}        "I hold these updates of `round`" (payload hashes, hex):
//                                 our own once the store accepted it, others once fetched and
//                                 checked against the commit
//   want   {round, hash}          "send me that one": answered with the update's envelope,
//   refuse {round, hash, reason}  or refused at once ('busy': this peer's serving cap for the
//                                 round is spent; 'missing': it does not hold it) so the asker
//                                 moves on to another neighbour or the store
//
// Every incoming message is checked with parsePeerMessage, which returns null for anything
// malformed (the caller counts it and drops it).
import { exactUtf8 } from '../base/format.ts';
import { MAX_GATHER_K } from './run-config.ts';

/** Hashes one have may carry: a round's committed K and our own, at the largest K a run may set. */
export const MAX_HAVE_HASHES = MAX_GATHER_K + 1;
/** Largest gather message accepted: a have of MAX_HAVE_HASHES hashes (67 bytes each as JSON) and room for its fields. */
export const MAX_PEER_MESSAGE_BYTES = MAX_HAVE_HASHES * 67 + 1024;

export type RefuseReason = 'busy' | 'missing';

export type PeerMessage =
  | { type: 'have'; round: number; hashes: string[] }
  | { type: 'want'; round: number; hash: string }
  | { type: 'refuse'; round: number; hash: string; reason: RefuseReason };

const utf8 = new TextEncoder();

export function encodePeerMessage(m: PeerMessage): Uint8Array {
  return utf8.encode(JSON.stringify(m));
}

const isRound = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
/** A payload hash as the commit writes it: 64 lowercase hex digits (blake2b-256). */
const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/** A neighbour's gather message (a 'gather' envelope's payload), or null when malformed. */
export function parsePeerMessage(bytes: Uint8Array): PeerMessage | null {
  if (bytes.length > MAX_PEER_MESSAGE_BYTES) return null;
  const text = exactUtf8(bytes);
  if (text === null) return null;
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return null;
  const o = m as Record<string, unknown>;
  if (!isRound(o.round)) return null;
  switch (o.type) {
    case 'have':
      return Array.isArray(o.hashes) && o.hashes.length >= 1 && o.hashes.length <= MAX_HAVE_HASHES && o.hashes.every(isHash)
        ? { type: 'have', round: o.round, hashes: [...o.hashes] }
        : null;
    case 'want':
      return isHash(o.hash) ? { type: 'want', round: o.round, hash: o.hash } : null;
    case 'refuse':
      return isHash(o.hash) && (o.reason === 'busy' || o.reason === 'missing') ? { type: 'refuse', round: o.round, hash: o.hash, reason: o.reason } : null;
    default:
      return null;
  }
}
