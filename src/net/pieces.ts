// An update envelope in pieces: the gather exchange's unit of transfer between neighbours,
// and the hashes that let a receiver check each piece the moment it arrives.
//
// Where the trust comes from: the coordinator cuts every update envelope it stores into
// pieces (pieceBytesFor its length) and writes the root of their hashes into the commit
// entry (`CommitEntry.pieces`):
//   root = blake2b-256('tessera-pieces' ‖ u32 pieceBytes ‖ u64 envelope bytes ‖ h(piece 0) ‖ h(piece 1) ‖ …)
// with h = blake2b-256. A receiver asks any neighbour holding the update for its piece list
// (bytes, pieceBytes, the hashes) and believes the list only when it hashes to the commit's
// root; from then on each piece, from whichever neighbour or the store, is checked against
// its hash from the list before it is kept, and the assembled envelope is opened once more as
// a whole (author's signature, payload hash = the commit's `hash`). So a neighbour's word is
// never trusted: a bad list or a bad piece is dropped and blamed on the neighbour that sent
// it, and only that piece is asked for again. Any holder can produce the list (it is a pure
// function of the envelope), including one that fetched the update from the store.
//
// A piece travels as the payload of a 'piece' envelope signed by the neighbour that sends it
// (encodePiece below): 32 bytes of the update's payload hash, u32 piece index, the bytes.
// Environment-free.
import { blake2AsU8a } from '@polkadot/util-crypto';
import { fromHex, toHex } from '../base/hex.ts';
import { MAX_PIECES } from '../protocol/peer-messages.ts';
import { HASHED_CHUNK_HEADER_BYTES, decodeHashedChunk, encodeHashedChunk } from '../protocol/hashed-chunk.ts';

export { MAX_PIECES };

/**
 * Bytes of one piece: 1 MiB. Small enough that a piece lost with a vanished neighbour costs
 * ~0.4 s of a 20 Mbit/s uplink and that several neighbours share one update; large enough
 * that a 1b update (18.65 MB) is 18 pieces and its list ~1.2 KB. The mesh cuts every message
 * into 16 KiB frames anyway (framing.ts), so the piece size is about scheduling, not SCTP.
 */
export const PIECE_BYTES = 1 << 20;
/** Smallest piece size a list may declare (a list of tiny pieces would be mostly hashes). */
export const MIN_PIECE_BYTES = 1024;
/** Bytes before a piece's data in a 'piece' envelope's payload: the update's hash, the index. */
export const PIECE_HEADER_BYTES = HASHED_CHUNK_HEADER_BYTES;

const DOMAIN = new TextEncoder().encode('tessera-pieces');

/** An update envelope's piece list, as a neighbour sends it (hashes in hex). */
export interface PieceList {
  /** Length of the whole envelope. */
  bytes: number;
  pieceBytes: number;
  /** blake2b-256 of each piece, hex, in order. */
  hashes: string[];
}

/** The piece size for an envelope of `bytes`: PIECE_BYTES, or larger so that there are at most MAX_PIECES. */
export function pieceBytesFor(bytes: number): number {
  return Math.max(PIECE_BYTES, Math.ceil(bytes / MAX_PIECES));
}

/** Pieces of an envelope of `bytes` (an empty one is one empty piece). */
export function pieceCount(bytes: number, pieceBytes: number): number {
  return Math.max(1, Math.ceil(bytes / pieceBytes));
}

/** Byte range [start, end) of piece `index`. */
export function pieceRange(list: Pick<PieceList, 'bytes' | 'pieceBytes'>, index: number): { start: number; end: number } {
  const start = index * list.pieceBytes;
  return { start, end: Math.min(list.bytes, start + list.pieceBytes) };
}

/** The piece list of an envelope (pieceBytes: the protocol's choice for its length; tests may pass another). */
export function listPieces(envelope: Uint8Array, pieceBytes = pieceBytesFor(envelope.length)): PieceList {
  const hashes: string[] = [];
  const n = pieceCount(envelope.length, pieceBytes);
  for (let i = 0; i < n; i++) hashes.push(toHex(blake2AsU8a(envelope.subarray(i * pieceBytes, (i + 1) * pieceBytes), 256)));
  return { bytes: envelope.length, pieceBytes, hashes };
}

/** The root a commit names for a piece list (hex blake2b-256). */
export function pieceRoot(list: PieceList): string {
  const head = new Uint8Array(DOMAIN.length + 4 + 8);
  head.set(DOMAIN);
  const dv = new DataView(head.buffer);
  dv.setUint32(DOMAIN.length, list.pieceBytes, true);
  dv.setBigUint64(DOMAIN.length + 4, BigInt(list.bytes), true);
  const all = new Uint8Array(head.length + 32 * list.hashes.length);
  all.set(head);
  list.hashes.forEach((h, i) => all.set(fromHex(h)!, head.length + 32 * i));
  return toHex(blake2AsU8a(all, 256));
}

/** The root of an envelope's pieces, as the coordinator writes it into the commit. */
export function envelopeRoot(envelope: Uint8Array): string {
  return pieceRoot(listPieces(envelope));
}

/**
 * Why a neighbour's piece list cannot be believed, or null when it is the one the commit's
 * `root` names and fits an envelope of at most `maxBytes`.
 */
export function checkPieceList(list: PieceList, root: string, maxBytes: number): string | null {
  if (list.bytes > maxBytes) return `a piece list for ${list.bytes} bytes, above this run's ${maxBytes}-byte envelope limit`;
  if (list.pieceBytes < MIN_PIECE_BYTES || list.hashes.length !== pieceCount(list.bytes, list.pieceBytes)) return `a piece list of ${list.hashes.length} pieces of ${list.pieceBytes} bytes for ${list.bytes} bytes`;
  if (pieceRoot(list) !== root) return 'a piece list that does not hash to the root the commit names';
  return null;
}

/** Whether `data` is piece `index` of the list (its length and hash). */
export function pieceMatches(list: PieceList, index: number, data: Uint8Array): boolean {
  const { start, end } = pieceRange(list, index);
  return index >= 0 && index < list.hashes.length && data.length === end - start && toHex(blake2AsU8a(data, 256)) === list.hashes[index];
}

/** A 'piece' envelope's payload: which update (its payload hash, hex), which piece, the bytes. */
export function encodePiece(hash: string, index: number, data: Uint8Array): Uint8Array {
  return encodeHashedChunk(hash, index, data);
}

/** A 'piece' envelope's payload read back (`data` a view, not a copy), or null when it is too short. */
export function decodePiece(payload: Uint8Array): { hash: string; index: number; data: Uint8Array } | null {
  const c = decodeHashedChunk(payload);
  return c && { hash: c.hash, index: c.at, data: c.data };
}
