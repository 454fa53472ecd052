// A sharded checkpoint: the checkpoint file (train/checkpoint.ts) cut into pieces of the run's
// `checkpointPieceBytes`, each named by its SHA-256 (content-addressed: stored, fetched and
// verified piece by piece, resumable with HTTP ranges), and a manifest listing them, signed by
// the uploader the coordinator asked. The manifest names the weights fingerprint of what the
// pieces hold (train/weights-fingerprint.ts), which must equal the consensus fingerprint the
// run's commit names before anyone trusts it.
//
// Uploads are signed requests: before the coordinator reads any body it checks the headers
// (who, and their signature over the run, the method, the path and the body's length).
// Environment-free.
import { sha256 } from '../wallet/sha256.ts';
import { fromHex, toHex } from '../base/hex.ts';
import { layoutElements, parameterLayout } from '../model/config.ts';
import { FINGERPRINT_HEX } from '../train/weights-fingerprint.ts';
import { isValidAddress, verifySignature, type Hotkey } from '../wallet/keys.ts';
import { runModel, stageBounds, type RunConfig } from './run-config.ts';

export { CHECKPOINT_PIECE_BYTES } from './run-config.ts';

/** Largest signed manifest body (a 4 GB checkpoint in 4 KiB pieces would not fit; in 32 MiB pieces it is ~9 KB). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Headers of a signed upload request. */
export const AUTH_ADDRESS_HEADER = 'x-tessera-address';
export const AUTH_SIGNATURE_HEADER = 'x-tessera-signature';

export interface CheckpointManifest {
  run: string;
  /** θ_start of this round. */
  round: number;
  stage: number;
  uploader: string;
  /** The weights fingerprint of the parameters the pieces hold. */
  weights: string;
  totalBytes: number;
  pieceBytes: number;
  /** Hex SHA-256 of each piece, in order. */
  pieces: string[];
}

export interface SignedManifest {
  manifest: CheckpointManifest;
  /** Hex sr25519 signature by `manifest.uploader` over manifestMessage(manifest). */
  signature: string;
}

const HASH_HEX = /^[0-9a-f]{64}$/;

/** The bytes a manifest's signature covers: its fields in a fixed order. */
export function manifestMessage(m: CheckpointManifest): Uint8Array {
  const fields = [m.run, m.round, m.stage, m.uploader, m.weights, m.totalBytes, m.pieceBytes, m.pieces.join(',')];
  return new TextEncoder().encode(`tessera-checkpoint-manifest:v1:${JSON.stringify(fields)}`);
}

/**
 * Cuts a checkpoint file into pieces and names them. The file may be given as its parts
 * (encodeCheckpointParts): a piece is then copied out of them, so a multi-GB checkpoint
 * never needs a second whole copy.
 */
export async function splitPieces(file: Uint8Array | readonly Uint8Array[], pieceBytes: number): Promise<{ hash: string; bytes: Uint8Array }[]> {
  const parts = file instanceof Uint8Array ? [file] : file;
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out: { hash: string; bytes: Uint8Array }[] = [];
  let part = 0;
  let inPart = 0;
  for (let at = 0; at < total; at += pieceBytes) {
    const length = Math.min(pieceBytes, total - at);
    let bytes: Uint8Array;
    if (parts[part].length - inPart >= length) {
      bytes = parts[part].subarray(inPart, inPart + length);
      inPart += length;
    } else {
      bytes = new Uint8Array(length);
      for (let filled = 0; filled < length; ) {
        if (inPart === parts[part].length) [part, inPart] = [part + 1, 0];
        const n = Math.min(length - filled, parts[part].length - inPart);
        bytes.set(parts[part].subarray(inPart, inPart + n), filled);
        filled += n;
        inPart += n;
      }
    }
    if (inPart === parts[part]?.length && part < parts.length - 1) [part, inPart] = [part + 1, 0];
    out.push({ hash: await pieceHash(bytes), bytes });
  }
  return out;
}

export async function pieceHash(bytes: Uint8Array): Promise<string> {
  return toHex(await sha256(bytes));
}

/** The length of piece `i` of a manifest. */
export function pieceLength(m: Pick<CheckpointManifest, 'totalBytes' | 'pieceBytes'>, i: number): number {
  return Math.min(m.pieceBytes, m.totalBytes - i * m.pieceBytes);
}

export function signManifest(key: Hotkey, m: CheckpointManifest): SignedManifest {
  return { manifest: m, signature: toHex(key.sign(manifestMessage(m))) };
}

/**
 * The largest checkpoint file of a stage: its parameters as float32, 64-byte alignment per
 * tensor, and a generous allowance for the JSON header. Uploads are refused above it.
 */
export function maxCheckpointBytes(config: RunConfig, stage: number): number {
  const r = stageBounds(config)[stage];
  if (!r) return 0;
  const layout = parameterLayout(runModel(config), r.from, r.to);
  const params = layoutElements(layout);
  return 4 * params + 64 * layout.length + 256 * layout.length + 64 * 1024;
}

/** Why a signed manifest cannot be this run's checkpoint of `stage` (structure, size, signature), or null. */
export function manifestProblem(s: unknown, config: RunConfig): string | null {
  const sm = s as SignedManifest | null;
  const m = sm?.manifest;
  if (!sm || typeof sm !== 'object' || !m || typeof m !== 'object') return 'not a signed manifest: { manifest, signature }';
  if (m.run !== config.run) return `a manifest of run '${String(m.run)}', not '${config.run}'`;
  if (!Number.isInteger(m.round) || m.round < 0 || m.round >= 2 ** 32) return 'round must be a u32';
  if (!Number.isInteger(m.stage) || m.stage < 0 || m.stage >= config.stages) return `stage must be 0…${config.stages - 1}`;
  if (typeof m.uploader !== 'string' || !isValidAddress(m.uploader)) return 'uploader must be an ss58 address';
  if (typeof m.weights !== 'string' || !FINGERPRINT_HEX.test(m.weights)) return 'weights must be a 64-hex-digit fingerprint';
  if (m.pieceBytes !== config.checkpointPieceBytes) return `pieceBytes must be the run's checkpointPieceBytes (${config.checkpointPieceBytes})`;
  const limit = maxCheckpointBytes(config, m.stage);
  if (!Number.isInteger(m.totalBytes) || m.totalBytes < 1 || m.totalBytes > limit) return `totalBytes must be 1…${limit} (this model's largest checkpoint of stage ${m.stage})`;
  if (!Array.isArray(m.pieces) || m.pieces.length !== Math.ceil(m.totalBytes / m.pieceBytes) || !m.pieces.every((h) => typeof h === 'string' && HASH_HEX.test(h))) {
    return `pieces must list ${Math.ceil(m.totalBytes / m.pieceBytes)} hex SHA-256 hashes`;
  }
  const signature = typeof sm.signature === 'string' ? fromHex(sm.signature) : null;
  if (!signature || !verifySignature(manifestMessage(m), signature, m.uploader)) return `the signature is not ${m.uploader}'s`;
  return null;
}

/** What a signed upload request's signature covers (the body is checked by its hash once read). */
export function requestMessage(run: string, method: string, path: string, length: number): Uint8Array {
  return new TextEncoder().encode(`tessera-request:v1:${run}:${method} ${path}:${length}`);
}

/** Headers that sign an upload request as `key`. */
export function signRequest(key: Hotkey, run: string, method: string, path: string, length: number): Record<string, string> {
  return { [AUTH_ADDRESS_HEADER]: key.address, [AUTH_SIGNATURE_HEADER]: toHex(key.sign(requestMessage(run, method, path, length))) };
}

/** The signer of a request whose headers are valid, or null. */
export function requestSigner(run: string, method: string, path: string, length: number, address: unknown, signature: unknown): string | null {
  if (typeof address !== 'string' || !isValidAddress(address) || typeof signature !== 'string') return null;
  const sig = fromHex(signature);
  return sig && verifySignature(requestMessage(run, method, path, length), sig, address) ? address : null;
}
