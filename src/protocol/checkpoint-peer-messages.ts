// The run's checkpoint between neighbours: a late joiner that holds the checkpoint's manifest
// (from the coordinator, checked against the commit: src/contributor/checkpoint-fetch.ts) asks
// its neighbours which of the manifest's pieces they hold and fetches those from them, in
// byte ranges, checking each whole piece against the manifest's SHA-256 before keeping it.
// Small JSON messages in signed 'checkpoint' envelopes:
//
//   which   {round, stage}                 "which pieces of your checkpoint of θ_start(round) do you hold"
//   holds   {round, stage, pieces}         the SHA-256s (hex) held; [] when none
//   want    {round, stage, hash, start, end}  "send me bytes [start, end) of piece `hash`"
//                                          (end − start ≤ MAX_CHECKPOINT_RANGE_BYTES): answered
//                                          with a 'checkpoint-range' envelope (encodeRange), or
//   refuse  {round, stage, hash, start, reason}  at once: 'busy' (sending its most at once: ask
//                                          again shortly), 'spent' (its serving budget for this
//                                          checkpoint is used up: do not ask again), 'missing'
//
// parseCheckpointPeerMessage returns null for anything malformed (the caller counts it).
// Environment-free.
import { exactUtf8 } from '../base/format.ts';
import { HASHED_CHUNK_HEADER_BYTES, decodeHashedChunk, encodeHashedChunk } from './hashed-chunk.ts';
import { REFUSE_REASONS, isHash, type RefuseReason } from './peer-messages.ts';
import { MAX_CHECKPOINT_PIECE_BYTES } from './run-config.ts';

/** Largest range asked at once: a vanished neighbour costs at most this much again of a piece. */
export const MAX_CHECKPOINT_RANGE_BYTES = 4 * 1024 * 1024;
/** Most pieces a holds may list (a 4 GB checkpoint in 4 MiB pieces is ~1,000). */
export const MAX_HOLDS_PIECES = 4096;
/** Largest checkpoint message: a holds of MAX_HOLDS_PIECES hashes (67 bytes each as JSON) and its fields. */
export const MAX_CHECKPOINT_MESSAGE_BYTES = MAX_HOLDS_PIECES * 67 + 1024;
/** Bytes before the data in a 'checkpoint-range' payload: the piece's SHA-256, the u32 start. */
export const RANGE_HEADER_BYTES = HASHED_CHUNK_HEADER_BYTES;

export type CheckpointPeerMessage =
  | { type: 'which'; round: number; stage: number }
  | { type: 'holds'; round: number; stage: number; pieces: string[] }
  | { type: 'want'; round: number; stage: number; hash: string; start: number; end: number }
  | { type: 'refuse'; round: number; stage: number; hash: string; start: number; reason: RefuseReason };

export function encodeCheckpointPeerMessage(m: CheckpointPeerMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m));
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
const isStage = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 256;

/** A neighbour's checkpoint message, or null when malformed. */
export function parseCheckpointPeerMessage(bytes: Uint8Array): CheckpointPeerMessage | null {
  if (bytes.length > MAX_CHECKPOINT_MESSAGE_BYTES) return null;
  const text = exactUtf8(bytes);
  if (text === null) return null;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o) || !isU32(o.round) || !isStage(o.stage)) return null;
  const { round, stage } = o;
  switch (o.type) {
    case 'which':
      return { type: 'which', round, stage };
    case 'holds':
      return Array.isArray(o.pieces) && o.pieces.length <= MAX_HOLDS_PIECES && o.pieces.every(isHash) ? { type: 'holds', round, stage, pieces: [...o.pieces] } : null;
    case 'want':
      return isHash(o.hash) && isU32(o.start) && isU32(o.end) && o.end > o.start && o.end - o.start <= MAX_CHECKPOINT_RANGE_BYTES && o.end <= MAX_CHECKPOINT_PIECE_BYTES
        ? { type: 'want', round, stage, hash: o.hash, start: o.start, end: o.end }
        : null;
    case 'refuse':
      return isHash(o.hash) && isU32(o.start) && REFUSE_REASONS.includes(o.reason) ? { type: 'refuse', round, stage, hash: o.hash, start: o.start, reason: o.reason as RefuseReason } : null;
    default:
      return null;
  }
}

/** A 'checkpoint-range' payload: which piece (its SHA-256), where in it, the bytes. */
export function encodeRange(hash: string, start: number, data: Uint8Array): Uint8Array {
  return encodeHashedChunk(hash, start, data);
}

/** A 'checkpoint-range' payload read back (`data` a view), or null when it is too short. */
export function decodeRange(payload: Uint8Array): { hash: string; start: number; data: Uint8Array } | null {
  const c = decodeHashedChunk(payload);
  return c && { hash: c.hash, start: c.at, data: c.data };
}
