// The gather exchange's fallback: what the run's update store has of a committed update
// (GET /update/<round>/<sender>). With a checked piece list (from a neighbour) only the
// missing pieces are read, one ranged read per run of consecutive pieces, and each is checked
// against its hash like a neighbour's; without one, or when the store's pieces do not match
// the list, the whole envelope is read and checked against the commit (author, round, payload
// hash). The store's copy that names another author, round or payload is a SyncError (the
// coordinator's copy is broken, no neighbour is to blame). Two things are the author's doing
// with a bucket (its intake reads only the signed header, and the root is the author's word):
// - a body that does not match its signed payload hash: handed on, and the gather applies it
//   as nothing (FORGED_PAYLOAD), as every replica reading the store does;
// - a body whose piece root is not the commit's (the author signed another copy's root): the
//   bucket's envelope is what every replica applies (a copy from neighbours with another MD5
//   than the bucket's gives way to it: gather.ts), so its payload is applied, reported
//   (badRoot: counted) and not served to neighbours (its list would not match the commit's
//   root). The validator scores its author 0.
// Environment-free.
import { EnvelopeError, openEnvelope, peekEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import { listPieces, pieceRange, pieceRoot } from '../net/pieces.ts';
import { toHex } from '../base/hex.ts';
import type { CommitEntry } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { PieceScheduler } from './piece-scheduler.ts';
import { SyncError } from './sync.ts';
import type { Traffic } from './traffic.ts';

export interface StoreHost {
  http: HttpClient;
  httpBase: string;
  config(): RunConfig;
  traffic: Traffic;
}

/**
 * Reads `pieces` of entry `e` of round r (null: the whole envelope) into the scheduler's
 * transfer; `badRoot` is called when the store's whole envelope is not the one the commit's
 * piece root names (before the transfer completes).
 */
export async function readFromStore(h: StoreHost, r: number, sched: PieceScheduler, e: CommitEntry, pieces: number[] | null, badRoot: () => void): Promise<void> {
  const url = `${h.httpBase}/update/${r}/${e.sender}`;
  const list = pieces ? sched.list(e.hash) : null;
  if (list && pieces) {
    for (const [first, last] of runs(pieces)) {
      const start = pieceRange(list, first).start;
      const end = pieceRange(list, last).end;
      const bytes = h.http.getRange ? await h.http.getRange(url, start, end) : (await h.http.get(url))?.subarray(start, end);
      if (!bytes) throw new SyncError(`the coordinator no longer has ${e.sender}'s update of round ${r}`);
      h.traffic.received(bytes.length);
      for (let i = first; i <= last; i++) {
        const at = pieceRange(list, i);
        if (sched.storePiece(e.hash, i, bytes.subarray(at.start - start, at.end - start))) continue;
        // Not the envelope the root names: the store's envelope, whole, decides (as on every replica reading it).
        sched.toStoreWhole(e.hash);
        return readFromStore(h, r, sched, e, null, badRoot);
      }
    }
    return;
  }
  const bytes = await h.http.get(url);
  if (!bytes) throw new SyncError(`the coordinator no longer has ${e.sender}'s update of round ${r}`);
  h.traffic.received(bytes.length);
  const config = h.config();
  let header: EnvelopeHeader;
  try {
    ({ header } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes }));
  } catch (err) {
    // Signed by its author but a body that does not match the signed hash: the author's
    // forgery (a bucket's intake reads only the header), not a broken store. The gather skips
    // it alike on every replica (gather.ts keepAssembled); anything else is the store's fault.
    if (!(err instanceof EnvelopeError && err.reason === 'hash')) throw err;
    header = peekEnvelope(bytes);
  }
  if (header.sender !== e.sender || header.round !== r || toHex(header.payloadHash) !== e.hash) {
    throw new SyncError(`the coordinator's copy of ${e.sender}'s round-${r} update does not match its commit`);
  }
  const whole = listPieces(bytes);
  if (e.pieces !== undefined && pieceRoot(whole) !== e.pieces) badRoot();
  sched.storeWhole(e.hash, bytes, whole);
}

/** Sorted indices as [first, last] runs of consecutive ones. */
function runs(indices: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const i of [...indices].sort((a, b) => a - b)) {
    const last = out.at(-1);
    if (last && last[1] === i - 1) last[1] = i;
    else out.push([i, i]);
  }
  return out;
}
