// How a member's update is opened before the round clock (round-clock.ts) judges it: the whole
// envelope sent over the WebSocket, or a bucket's update by the two ends of its envelope and
// its author's signed piece root (bucket-updates.ts, src/net/signed-root.ts). Either way the
// sender is the connection's hotkey and the kind is 'update'; what is left is the round's
// business (its round, membership, stage, a duplicate).
//
// The piece root committed with the update: over the WebSocket the coordinator holds the
// envelope and computes it (envelopeRoot: one blake2b pass, ~27 ms at 1b, as much as
// openEnvelope's own payload hash — so the author's word is not needed there); from a bucket
// it is the author's, checked by one sr25519 verification of a ~200-byte statement against
// the header just verified — no body read. A root whose signature does not check is the
// member's invalid update (`envelope-root-signature`, counted, its turn ends), as a bad
// envelope signature is; an upload announced without a root is taken in without one
// (replicas then read it whole from the bucket).
//
// The root is the author's word, unchecked against the body here. What binds it: the bucket's
// ETag of the object, the MD5 of its body computed by the storage server (an S3 PUT of one
// part), committed beside it (`bodyMd5`). A replica that assembles the update from
// neighbours' pieces compares their MD5 with it: the same bytes as the bucket's, or it reads
// the bucket's (gather.ts). So every replica applies the bucket's envelope, whichever path it
// took, and an author cannot serve one copy to neighbours and leave another in the bucket. A
// store whose ETags are not MD5s (multipart, some encryption) gets no root committed: the old
// path, whole from the bucket.
import { EnvelopeError, openEnvelope, openEnvelopeHeader, type EnvelopeHeader } from '../net/envelope.ts';
import { envelopeRoot } from '../net/pieces.ts';
import { verifyPieceRoot } from '../net/signed-root.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { SignedEnds } from './bucket-updates.ts';

/** An update refused: the reason's key (counted) and a sentence for the sender. */
export interface Refusal {
  what: string;
  reason: string;
}

type Limits = Pick<RunConfig, 'run' | 'maxMessageBytes'>;
type Refused = { ok: false } & Refusal;

/** Kind and signer: an update, signed by the connection's own hotkey. */
function checkKindAndSigner(sender: string, header: EnvelopeHeader): Refused | null {
  if (header.kind !== 'update') return { ok: false, what: 'unexpected-kind', reason: `'${header.kind}' is not sent to the coordinator` };
  if (header.sender !== sender) return { ok: false, what: 'wrong-sender', reason: `signed by ${header.sender}, not by this connection's hotkey` };
  return null;
}

/** A member's whole update envelope (signature, run, size, kind, signer), with the root of its pieces. */
export function openUpdateEnvelope(config: Limits, sender: string, envelope: Uint8Array): { ok: true; header: EnvelopeHeader; payload: Uint8Array; pieces: () => string } | Refused {
  let opened: { header: EnvelopeHeader; payload: Uint8Array };
  try {
    opened = openEnvelope(envelope, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
  } catch (e) {
    if (e instanceof EnvelopeError) return { ok: false, what: `envelope-${e.reason}`, reason: e.message };
    throw e;
  }
  // The root is computed only for an update the round admits (a caller's choice: pieces()).
  return checkKindAndSigner(sender, opened.header) ?? { ok: true, ...opened, pieces: () => envelopeRoot(envelope) };
}

/** A bucket's update by its signed header (structure, length, run, signature), kind and signer, then its author's signed root when given. */
export function openSignedEnds(config: Limits, sender: string, ends: SignedEnds): { ok: true; header: EnvelopeHeader; pieces: string | undefined; bodyMd5: string | undefined } | Refused {
  let header: EnvelopeHeader;
  try {
    header = openEnvelopeHeader(ends.head, ends.signature, ends.bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
  } catch (e) {
    if (e instanceof EnvelopeError) return { ok: false, what: `envelope-${e.reason}`, reason: `${e.message}; send the update over the WebSocket instead` };
    throw e;
  }
  const refused = checkKindAndSigner(sender, header);
  if (refused) return refused;
  if (ends.root && !verifyPieceRoot(header, ends.bytes, ends.root)) {
    return { ok: false, what: 'envelope-root-signature', reason: `the piece root sent with the update is not signed by ${header.sender} for this envelope (run, round, stage, payload hash, ${ends.bytes} bytes)` };
  }
  // Committed only with the bucket's MD5 of the body: without it a replica could not tell the
  // author's neighbours' copy from the bucket's, and they might apply different things.
  if (!ends.root || !ends.md5) return { ok: true, header, pieces: undefined, bodyMd5: undefined };
  return { ok: true, header, pieces: ends.root.pieces, bodyMd5: ends.md5 };
}
