// The gather exchange's vocabulary between neighbours (src/contributor/gather.ts): small JSON
// messages carried in signed 'gather' envelopes over the mesh. The updates themselves travel
// in pieces (src/net/pieces.ts: 'piece' envelopes), each checked against a piece list that is
// itself checked against the root the commit names, so a receiver never takes the relaying
// neighbour's word for anything.
//
//   have      {round, hashes}       "I hold these whole updates of `round`" (payload hashes,
//                                   hex): our own once the store accepted it, others once
//                                   gathered and checked against the commit
//   want-list {round, hash}         "send me that update's piece list": answered with
//   list      {round, hash, bytes,  its envelope's length, piece size and piece hashes
//              pieceBytes, pieces}
//   want      {round, hash, piece}  "send me piece `piece` of it": answered with a 'piece'
//                                   envelope,
//   refuse    {round, hash, piece?, or refused at once ('busy': this peer is sending as many
//              reason}              pieces as it may at once, ask again later or elsewhere;
//                                   'spent': its serving cap for the round is spent, do not
//                                   ask it again this round; 'missing': it does not hold it)
//                                   so the asker moves on to another neighbour or the store;
//                                   `piece` absent: the refusal of a want-list
//
// Every incoming message is checked with parsePeerMessage, which returns null for anything
// malformed (the caller counts it and drops it).
import { exactUtf8 } from '../base/format.ts';
import { MAX_GATHER_K } from './run-config.ts';

/** Hashes one have may carry: a round's committed K and our own, at the largest K a run may set. */
export const MAX_HAVE_HASHES = MAX_GATHER_K + 1;
/** Most pieces in one update's piece list: an envelope above MAX_PIECES × PIECE_BYTES (4 GiB) gets larger pieces (src/net/pieces.ts). */
export const MAX_PIECES = 4096;
/** Largest gather message accepted: a list of MAX_PIECES hashes (67 bytes each as JSON) and room for its fields. */
export const MAX_PEER_MESSAGE_BYTES = Math.max(MAX_HAVE_HASHES, MAX_PIECES) * 67 + 1024;

export type RefuseReason = 'busy' | 'spent' | 'missing';

export type PeerMessage =
  | { type: 'have'; round: number; hashes: string[] }
  | { type: 'want-list'; round: number; hash: string }
  | { type: 'list'; round: number; hash: string; bytes: number; pieceBytes: number; pieces: string[] }
  | { type: 'want'; round: number; hash: string; piece: number }
  | { type: 'refuse'; round: number; hash: string; piece?: number; reason: RefuseReason };

const utf8 = new TextEncoder();

export function encodePeerMessage(m: PeerMessage): Uint8Array {
  return utf8.encode(JSON.stringify(m));
}

const isRound = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < MAX_PIECES;
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2 ** 32;
/** A hash as messages write it: 64 lowercase hex digits (a payload's blake2b-256, a checkpoint piece's SHA-256). */
export const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
export const REFUSE_REASONS: readonly unknown[] = ['busy', 'spent', 'missing'] satisfies RefuseReason[];

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
    case 'want-list':
      return isHash(o.hash) ? { type: 'want-list', round: o.round, hash: o.hash } : null;
    case 'list':
      return isHash(o.hash) && isSize(o.bytes) && isSize(o.pieceBytes) && Array.isArray(o.pieces) && o.pieces.length >= 1 && o.pieces.length <= MAX_PIECES && o.pieces.every(isHash)
        ? { type: 'list', round: o.round, hash: o.hash, bytes: o.bytes, pieceBytes: o.pieceBytes, pieces: [...o.pieces] }
        : null;
    case 'want':
      return isHash(o.hash) && isIndex(o.piece) ? { type: 'want', round: o.round, hash: o.hash, piece: o.piece } : null;
    case 'refuse':
      if (!isHash(o.hash) || !REFUSE_REASONS.includes(o.reason) || !(o.piece === undefined || isIndex(o.piece))) return null;
      return { type: 'refuse', round: o.round, hash: o.hash, ...(o.piece === undefined ? {} : { piece: o.piece }), reason: o.reason as RefuseReason };
    default:
      return null;
  }
}
