// Which bytes a replica keeps for a committed update once its pieces are all in (gather.ts):
// the envelope opened whole and checked against the commit entry, and — with a bucket — the
// check that the bytes are the bucket's own envelope.
//
// - From neighbours (or the store's pieces), every piece matched a list that hashes to the
//   commit's root. With a bucket that root is the author's word (src/net/signed-root.ts), so
//   the commit also names the bucket's ETag, the storage server's MD5 of the body
//   (`bodyMd5`): other bytes (the author signed the root of another copy) give way to the
//   bucket's envelope, read whole, so every replica applies the same one (isBucketCopy).
// - Read whole from the store: the envelope every replica reading the store gets. A body
//   that does not match its author's signed hash (a bucket's intake reads only headers) is
//   kept as FORGED_PAYLOAD — applied as nothing by every replica, counted 'update-forged' by
//   exchange.ts — not an error that would stop every replica's round (openAssembled).
// Environment-free.
import { EnvelopeError, openEnvelope, peekEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import { toHex } from '../base/hex.ts';
import { md5Hex } from '../base/md5.ts';
import { FORGED_PAYLOAD, type CommitEntry } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';

/** Whether assembled `bytes` are the bucket's envelope of entry `e` (always, without a bucket's MD5 in the commit). */
export function isBucketCopy(e: CommitEntry, bytes: Uint8Array): boolean {
  return e.bodyMd5 === undefined || md5Hex(bytes) === e.bodyMd5;
}

/**
 * Entry `e` of round r (our stage) from its assembled envelope: its sender and payload
 * (FORGED_PAYLOAD for a forged body read whole from the store), or null when it does not open
 * as committed.
 */
export function openAssembled(config: Pick<RunConfig, 'run' | 'maxMessageBytes'>, stage: number, r: number, e: CommitEntry, bytes: Uint8Array, fromStore: boolean): { sender: string; payload: Uint8Array } | null {
  const matches = (header: EnvelopeHeader) => header.kind === 'update' && header.round === r && toHex(header.payloadHash) === e.hash && header.stage === stage;
  try {
    const { header, payload } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
    return matches(header) ? { sender: header.sender, payload } : null;
  } catch (err) {
    if (!fromStore || !(err instanceof EnvelopeError && err.reason === 'hash')) return null;
    const header = peekEnvelope(bytes);
    return matches(header) && header.sender === e.sender ? { sender: header.sender, payload: FORGED_PAYLOAD } : null;
  }
}
