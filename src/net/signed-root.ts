// An author's signed word for its update envelope's piece root (pieces.ts), sent with its
// bucket upload announcement (`uploaded {…, pieces, piecesSignature}`, messages.ts).
//
// A bucket's intake reads only the envelope's signed header (bucket-updates.ts), never its
// body, so the coordinator cannot compute the root itself; the author, who holds the bytes,
// can. It signs, with the hotkey that signed the envelope, a short statement binding the root
// to that envelope (run, round, stage, payload hash, length):
//   'tessera-piece-root:1:<run>:<round>:<stage>:<payload hash hex>:<bytes>:<root hex>'
// The coordinator verifies it (one sr25519 verification of ~200 bytes, against the header it
// already read) and writes the root into the commit entry, so replicas take the update's
// pieces from neighbours, each checked against a list that hashes to this root, and the store
// becomes the fallback. The signature makes the root the author's claim: a root that does not
// match the body in the bucket is the author's fault (the validator scores it 0:
// validator-reads.ts), never the coordinator's. The commit also names the bucket's ETag, the
// MD5 of the body in the bucket (update-intake.ts), so a replica that assembled another copy
// from neighbours takes the bucket's instead (gather.ts): every replica applies the same.
// Environment-free.
import { fromHex, toHex } from '../base/hex.ts';
import { SIGNATURE_BYTES, verifySignature, type Hotkey } from '../wallet/keys.ts';
import { peekEnvelope, type EnvelopeHeader } from './envelope.ts';
import { listPieces, pieceRoot, type PieceList } from './pieces.ts';

/** The statement's domain and version: a signature over it is never valid as anything else's. */
const DOMAIN = 'tessera-piece-root:1';

/** An envelope's piece root and its author's signature over the statement, both hex. */
export interface SignedRoot {
  pieces: string;
  piecesSignature: string;
}

/** What the author signs: the root bound to the envelope its header describes. */
export function pieceRootStatement(header: Pick<EnvelopeHeader, 'run' | 'round' | 'stage' | 'payloadHash'>, bytes: number, root: string): Uint8Array {
  return new TextEncoder().encode(`${DOMAIN}:${header.run}:${header.round}:${header.stage}:${toHex(header.payloadHash)}:${bytes}:${root}`);
}

/** The root of `envelope`'s pieces (its list, when already made: one blake2b pass over the envelope otherwise), signed by `key`, its author. */
export function signPieceRoot(key: Hotkey, envelope: Uint8Array, list: PieceList = listPieces(envelope)): SignedRoot {
  const header = peekEnvelope(envelope);
  if (header.sender !== key.address) throw new Error(`signPieceRoot: the envelope is signed by ${header.sender}, not by ${key.address}`);
  if (list.bytes !== envelope.length) throw new Error(`signPieceRoot: a piece list of ${list.bytes} bytes for an envelope of ${envelope.length}`);
  const pieces = pieceRoot(list);
  return { pieces, piecesSignature: toHex(key.sign(pieceRootStatement(header, envelope.length, pieces))) };
}

/**
 * Whether `root` is signed by the envelope's sender for the envelope this (already verified)
 * header describes, `bytes` long. Says nothing of the body: only reading it can.
 */
export function verifyPieceRoot(header: EnvelopeHeader, bytes: number, root: SignedRoot): boolean {
  const signature = fromHex(root.piecesSignature);
  if (!signature || signature.length !== SIGNATURE_BYTES) return false;
  return verifySignature(pieceRootStatement(header, bytes, root.pieces), signature, header.sender);
}
