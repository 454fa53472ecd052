// Fetching the run's checkpoint from the coordinator's store, trusting nothing it is handed:
// the manifest must be signed by the uploader the commit asked and name the consensus
// weights fingerprint that commit records (GET /commit/<round − 1>: checkpointBy,
// weightsAfter); every piece is checked against its hash as it arrives, fetched in ranges so
// a cut-off transfer resumes where it stopped; the caller checks the decoded weights'
// fingerprint before loading them (sync.ts). With `peers` (checkpoint-peers.ts) the pieces come
// from the neighbours that hold them and only the rest from the store, each hashed alike.
// Environment-free.
import { manifestProblem, pieceHash, pieceLength, type CheckpointManifest, type SignedManifest } from '../protocol/checkpoint-manifest.ts';
import type { CheckpointSources } from './checkpoint-scheduler.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { weightsNamed } from '../protocol/messages.ts';

/** Bytes per range request: a dropped connection costs at most this much again. */
export const RANGE_BYTES = 4 * 1024 * 1024;
/** Attempts per range (and per piece when its hash is wrong) before giving up. */
const TRIES = 4;

/** The checkpoint cannot be trusted or fetched; the message says which check failed. */
export class CheckpointFetchError extends Error {
  override name = 'CheckpointFetchError';
}

export interface CheckpointFetch {
  http: HttpClient;
  httpBase: string;
  config: RunConfig;
  stage: number;
  onProgress?(done: number, total: number): void;
  /** Neighbours to fetch pieces from before the store (checkpoint-peers.ts), if any. */
  peers?: { fetch(m: CheckpointManifest, fromStore: (hash: string, length: number) => Promise<Uint8Array>, onProgress?: (done: number, total: number) => void): Promise<{ bytes: Uint8Array; sources: CheckpointSources }> };
}

/** The fetched checkpoint and where its pieces came from. */
export interface FetchedCheckpoint {
  round: number;
  bytes: Uint8Array;
  weights: string;
  sources: CheckpointSources;
}

/** The commit fields a checkpoint is checked against. */
export interface CommitTrust {
  checkpointBy?: Record<string, string>;
  weightsAfter?: string;
  stageWeightsAfter?: Record<string, string>;
}

/** The stage's checkpoint file, verified, with the fingerprint its weights must have; null when the coordinator has none. */
export async function fetchCheckpoint(f: CheckpointFetch): Promise<FetchedCheckpoint | null> {
  const raw = await f.http.get(`${f.httpBase}/checkpoint/manifest${f.config.stages > 1 ? `?stage=${f.stage}` : ''}`);
  if (!raw) return null;
  let signed: SignedManifest;
  try {
    signed = JSON.parse(new TextDecoder().decode(raw)) as SignedManifest;
  } catch {
    throw new CheckpointFetchError('the coordinator’s checkpoint manifest is not JSON');
  }
  const problem = manifestProblem(signed, f.config);
  if (problem) throw new CheckpointFetchError(`the coordinator’s checkpoint manifest is refused: ${problem}`);
  const m = signed.manifest;
  if (m.stage !== f.stage) throw new CheckpointFetchError(`the coordinator sent stage ${m.stage}'s checkpoint, not stage ${f.stage}'s`);
  const commitBytes = await f.http.get(`${f.httpBase}/commit/${m.round - 1}`);
  if (!commitBytes) throw new CheckpointFetchError(`the commit of round ${m.round - 1}, which names the checkpoint's uploader and weights, is not served`);
  const commit = JSON.parse(new TextDecoder().decode(commitBytes)) as CommitTrust;
  if (commit.checkpointBy?.[f.stage] !== m.uploader) throw new CheckpointFetchError(`the checkpoint of round ${m.round} comes from ${m.uploader}, who was not the uploader the coordinator asked`);
  const named = weightsNamed(commit, f.stage, f.config.stages);
  if (named !== m.weights) throw new CheckpointFetchError(`the checkpoint of round ${m.round} names weights ${m.weights.slice(0, 12)}…, the commit names ${String(named).slice(0, 12)}…`);
  if (f.peers) {
    const got = await f.peers.fetch(m, (hash, length) => fetchPiece(f, hash, length, () => {}), f.onProgress);
    return { round: m.round, bytes: got.bytes, weights: m.weights, sources: got.sources };
  }
  const bytes = new Uint8Array(m.totalBytes);
  for (const [i, hash] of m.pieces.entries()) {
    const at = i * m.pieceBytes;
    bytes.set(await fetchPiece(f, hash, pieceLength(m, i), (done) => f.onProgress?.(at + done, m.totalBytes)), at);
  }
  return { round: m.round, bytes, weights: m.weights, sources: { piecesFromPeers: 0, piecesFromStore: m.pieces.length, bytesFromPeers: 0, bytesFromStore: m.totalBytes, byPeer: {} } };
}

/** One piece from the store, in ranges with resume when the client can, checked against its hash. */
export async function fetchPiece(f: Pick<CheckpointFetch, 'http' | 'httpBase'>, hash: string, length: number, progress: (done: number) => void): Promise<Uint8Array> {
  const url = `${f.httpBase}/checkpoint/piece/${hash}`;
  for (let attempt = 0; attempt < TRIES; attempt++) {
    let piece: Uint8Array;
    if (f.http.getRange) {
      piece = new Uint8Array(length);
      let done = 0;
      let failures = 0;
      while (done < length) {
        const end = Math.min(length, done + RANGE_BYTES);
        let part: Uint8Array | null;
        try {
          part = await f.http.getRange(url, done, end);
        } catch (e) {
          if (++failures >= TRIES) throw new CheckpointFetchError(`piece ${hash.slice(0, 12)}…: ${(e as Error).message}`);
          continue; // resume at `done`: what arrived is kept
        }
        if (!part) throw new CheckpointFetchError(`piece ${hash.slice(0, 12)}… is not served`);
        if (part.length !== end - done) throw new CheckpointFetchError(`piece ${hash.slice(0, 12)}…: asked for ${end - done} bytes, got ${part.length}`);
        piece.set(part, done);
        done = end;
        progress(done);
      }
    } else {
      const whole = await f.http.get(url);
      if (!whole) throw new CheckpointFetchError(`piece ${hash.slice(0, 12)}… is not served`);
      piece = whole;
      progress(piece.length);
    }
    if (piece.length === length && (await pieceHash(piece)) === hash) return piece;
  }
  throw new CheckpointFetchError(`piece ${hash.slice(0, 12)}… does not match its hash after ${TRIES} tries`);
}
