// Checks an uploaded checkpoint before it replaces anything, reading its pieces from the
// store one at a time (never the whole file in memory): the TCKP header (checksum, this
// run's model and the stage's layers, the round the manifest names, exactly the stage's
// parameters in layout order), the data checksum, and the weights fingerprint of the
// parameters — which must be the manifest's and the commit's. A piece the store has not
// hashed yet (a bucket's, copied in unread: checkpoint-bucket-pieces.ts) is hashed in the same
// pass, so the coordinator reads a checkpoint's bytes once.
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from '../base/crc32.ts';
import { parameterLayout } from '../model/config.ts';
import { configHash } from '../model/identity.ts';
import { pieceLength, type CheckpointManifest } from '../protocol/checkpoint-manifest.ts';
import { runModel, stageBounds, type RunConfig } from '../protocol/run-config.ts';
import { fingerprintOfDigests } from '../train/weights-fingerprint.ts';
import type { CheckpointPieces } from './checkpoint-pieces.ts';

const PREFIX = 16;
const ALIGN = 64;
/** A checkpoint header longer than this is refused (the largest model's is a few KB). */
const MAX_HEADER_BYTES = 1024 * 1024;

interface Region {
  name: string;
  start: number;
  end: number;
  sha: Hash;
}

export type VerifyResult = { ok: true; fingerprint: string } | { ok: false; reason: string; what?: string };

/** Reads the pieces of `m` in order and checks what they hold (see above). */
export async function verifyCheckpointPieces(pieces: CheckpointPieces, m: CheckpointManifest, config: RunConfig): Promise<VerifyResult> {
  let head: Uint8Array = new Uint8Array(0);
  let regions: Region[] | null = null;
  let dataStart = 0;
  let dataEnd = 0;
  let crc = 0;
  let storedCrc: Uint8Array = new Uint8Array(0);
  let at = 0;
  for (const [i, hash] of m.pieces.entries()) {
    if (pieces.size(hash) !== pieceLength(m, i)) return { ok: false, reason: `piece ${i} is missing or of the wrong size` };
    let chunks: AsyncIterable<Uint8Array> | Uint8Array[] = pieces.read(hash);
    if (pieces.unchecked(hash)) {
      // Hashed before anything in it is believed (≤ one piece in memory).
      const whole: Uint8Array[] = [];
      const sha = createHash('sha256');
      for await (const bytes of chunks) sha.update(whole[whole.push(bytes) - 1]);
      const got = sha.digest('hex');
      if (got !== hash) return { ok: false, reason: `piece ${i} hashes to ${got.slice(0, 12)}…, not ${hash.slice(0, 12)}… (the bytes at its upload URL were not the piece its manifest names)`, what: 'checkpoint-piece-hash' };
      chunks = whole;
    }
    for await (const bytes of chunks) {
      if (!regions) {
        head = concat(head, bytes);
        const parsed = parseHead(head, m, config);
        if (typeof parsed === 'string') return { ok: false, reason: parsed };
        if (parsed === null) {
          if (head.length > MAX_HEADER_BYTES) return { ok: false, reason: 'the checkpoint header is too long' };
          at += bytes.length;
          continue;
        }
        ({ regions, dataStart, dataEnd } = parsed);
        at += bytes.length;
        feed(head, 0);
        head = new Uint8Array(0);
        continue;
      }
      feed(bytes, at);
      at += bytes.length;
    }
  }
  if (!regions) return { ok: false, reason: 'the checkpoint ends inside its header' };
  if (at !== dataEnd + 4) return { ok: false, reason: `the checkpoint is ${at} bytes, its header gives ${dataEnd + 4}` };
  const stored = new DataView(storedCrc.buffer, storedCrc.byteOffset, 4).getUint32(0, true);
  if (stored !== crc >>> 0) return { ok: false, reason: 'data checksum mismatch' };
  return { ok: true, fingerprint: fingerprintOfDigests(regions.map((r) => [r.name, new Uint8Array(r.sha.digest())] as const)) };

  // Feeds bytes at file offset `off` to the data checksum, the tensors' hashes and the trailer.
  function feed(bytes: Uint8Array, off: number): void {
    const from = Math.max(off, dataStart);
    const to = Math.min(off + bytes.length, dataEnd);
    if (to > from) crc = crc32(bytes.subarray(from - off, to - off), crc);
    for (const r of regions!) {
      const s = Math.max(off, r.start);
      const e = Math.min(off + bytes.length, r.end);
      if (e > s) r.sha.update(bytes.subarray(s - off, e - off));
    }
    const ts = Math.max(off, dataEnd);
    const te = Math.min(off + bytes.length, dataEnd + 4);
    if (te > ts) storedCrc = concat(storedCrc, bytes.subarray(ts - off, te - off));
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The tensor regions once the whole header is in `head`; null: read more; a string: why it is refused. */
function parseHead(head: Uint8Array, m: CheckpointManifest, config: RunConfig): { regions: Region[]; dataStart: number; dataEnd: number } | null | string {
  if (head.length < PREFIX) return null;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (new TextDecoder().decode(head.subarray(0, 4)) !== 'TCKP' || dv.getUint32(4, true) !== 1) return 'not a format-1 Tessera checkpoint';
  const J = dv.getUint32(8, true);
  if (J > MAX_HEADER_BYTES) return 'the checkpoint header is too long';
  const D = Math.ceil((PREFIX + J) / ALIGN) * ALIGN;
  if (head.length < D) return null;
  if (crc32(head.subarray(PREFIX, D)) !== dv.getUint32(12, true)) return 'header checksum mismatch';
  let h: { model?: unknown; from?: unknown; to?: unknown; dataPosition?: { round?: unknown } | null; dataBytes?: unknown; tensors?: { name: string; offset: number; length: number }[] };
  try {
    h = JSON.parse(new TextDecoder().decode(head.subarray(PREFIX, PREFIX + J)));
  } catch {
    return 'the checkpoint header is not JSON';
  }
  const model = runModel(config);
  const range = stageBounds(config)[m.stage];
  if (!h || typeof h !== 'object' || !h.model || configHash(h.model as typeof model) !== configHash(model)) return "weights of another model than the run's";
  if (h.from !== range.from || h.to !== range.to) return `weights of layers [${String(h.from)}, ${String(h.to)}), not stage ${m.stage}'s [${range.from}, ${range.to})`;
  if (h.dataPosition?.round !== m.round) return `the checkpoint holds round ${String(h.dataPosition?.round)}, its manifest says ${m.round}`;
  const layout = parameterLayout(model, range.from, range.to);
  const tensors = Array.isArray(h.tensors) ? h.tensors : [];
  if (tensors.length !== layout.length) return `${tensors.length} tensors, the stage has ${layout.length} parameters (a checkpoint holds the parameters only)`;
  const regions: Region[] = [];
  let end = 0;
  for (const [i, s] of layout.entries()) {
    const t = tensors[i];
    if (t?.name !== `param/${s.name}` || t.length !== s.size || !Number.isSafeInteger(t.offset) || t.offset < end || t.offset % ALIGN !== 0) return `tensor ${i} must be param/${s.name} of ${s.size} values, aligned, in layout order`;
    end = t.offset + 4 * t.length;
    regions.push({ name: s.name, start: D + t.offset, end: D + end, sha: createHash('sha256') });
  }
  if (h.dataBytes !== end || D + end + 4 !== m.totalBytes) return `the checkpoint's length (${m.totalBytes}) does not match its header`;
  return { regions, dataStart: D, dataEnd: D + end };
}
