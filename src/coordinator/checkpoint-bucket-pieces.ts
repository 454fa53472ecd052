// Checkpoint pieces in the run's S3-compatible bucket (object-store.ts), so that neither the
// uploader's pieces nor a late joiner's fetches pass through the coordinator:
//
//   accepted manifest, piece p missing → uploadUrl(p): a presigned PUT on a key unique to this
//                                        upload (checkpoint-uploads/<run>/<p>-<nonce>.bin)
//   the uploader PUTs p there, then PUT /checkpoint/uploaded/<p> (signed, empty) → takeIn(p):
//     HEAD (missing, wrong size → refused), then a server-side copy of exactly that version
//     (checked by its ETag) to checkpoints/<run>/pieces/<p>.bin, which only the coordinator
//     writes. Not read here: the piece is *unchecked* until the checkpoint's one read-back
//     (checkpoint-verify.ts) hashes it with everything else; an unchecked piece is never
//     served (only an accepted checkpoint's are), is asked for again by a later manifest, and
//     a piece that fails its hash fails the checkpoint, which removes it.
//   GET /checkpoint/piece/<p>            → 307 to a presigned GET of that key (Range requests
//                                          pass through: the bucket answers 206)
//   an accepted manifest                 → also checkpoints/<run>/manifest-<stage>.json, and
//                                          GET /checkpoint/manifest redirects there
//
// So the coordinator reads each checkpoint's bytes from the bucket once, and sends none. An
// uploader whose PUT the bucket refuses sends the piece to the coordinator as with the disk
// store (put: hashed as it arrives, then written to the bucket). Which pieces the bucket holds
// is known from the pieces taken in and the accepted manifests in the saved state (all checked
// when accepted), so `has` needs no request. A run that had its checkpoint on the disk and now
// has a bucket (a coordinator restarted with the bucket settings on its state folder) has it
// moved at start (adoptDiskPieces, checkpoint-move.ts).
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { SignedManifest } from '../protocol/checkpoint-manifest.ts';
import { pieceLength } from '../protocol/checkpoint-manifest.ts';
import type { CheckpointPieces, PutResult } from './checkpoint-pieces.ts';
import { ObjectStoreError, type ObjectStore } from './object-store.ts';
import { moveDiskPieces } from './checkpoint-move.ts';

/** An upload URL's life: long enough for a 64 MiB piece over a slow home uplink. */
export const PIECE_UPLOAD_EXPIRES_S = 3600;
/** A download URL's life: one piece fetched in ranges, with retries. */
export const PIECE_DOWNLOAD_EXPIRES_S = 600;

const HASH_HEX = /^[0-9a-f]{64}$/;

export class BucketPieceStore implements CheckpointPieces {
  readonly kind = 's3';
  /** Pieces at their final key, with their length. */
  private readonly held = new Map<string, number>();
  /** Upload keys handed out and not yet taken in, by piece hash. */
  private readonly uploads = new Map<string, string>();
  /** The round of each stage's manifest copy in the bucket. */
  private readonly manifests = new Map<number, number>();
  /** Pieces copied in from an upload key and not yet hashed (the checkpoint's read-back does). */
  private readonly uncheckedPieces = new Set<string>();

  /** Resolves once the pieces a run without a bucket left on the disk are in the bucket (the GETs wait for it). */
  readonly ready: Promise<void>;

  constructor(
    private readonly store: ObjectStore,
    private readonly run: string,
    accepted: readonly SignedManifest[],
    private readonly log: (line: string) => void,
    /** The state folder: a checkpoint accepted before the run had a bucket is moved from there. */
    stateDir?: string,
  ) {
    for (const { manifest: m } of accepted) m.pieces.forEach((h, i) => this.held.set(h, pieceLength(m, i)));
    this.ready = stateDir && accepted.length > 0 ? this.adoptDisk(accepted, join(stateDir, 'checkpoint-pieces')) : Promise.resolve();
  }

  /** Moves the accepted checkpoints' pieces the bucket lacks from the disk (checkpoint-move.ts); a piece found nowhere is not held, so its checkpoint is not served. */
  private async adoptDisk(accepted: readonly SignedManifest[], diskDir: string): Promise<void> {
    try {
      const r = await moveDiskPieces({ store: this.store, key: (h) => this.key(h), log: this.log }, accepted, diskDir);
      for (const h of r.lost) this.held.delete(h);
      if (r.moved > 0) this.log(`moved ${r.moved} checkpoint piece(s), ${r.movedBytes} bytes, from ${diskDir} to the bucket (each hashed, and checked by its ETag); the disk copies may be deleted`);
      for (const s of accepted) {
        if (s.manifest.pieces.every((h) => this.held.has(h))) await this.keepManifest(s.manifest.stage, s);
        else this.log(`the checkpoint of round ${s.manifest.round} (stage ${s.manifest.stage}) lost pieces in the move to the bucket: it is not served (late joiners sync from peers, or wait for the next checkpoint)`);
      }
    } catch (e) {
      this.log(`could not move the checkpoint from ${diskDir} to the bucket: ${(e as Error).message}; restart the coordinator once the bucket answers`);
    }
  }

  private key(hash: string): string {
    if (!HASH_HEX.test(hash)) throw new RangeError(`not a piece hash: '${hash}'`);
    return `checkpoints/${this.run}/pieces/${hash}.bin`;
  }

  has(hash: string): boolean {
    return this.held.has(hash);
  }

  unchecked(hash: string): boolean {
    return this.uncheckedPieces.has(hash);
  }

  markChecked(hashes: readonly string[]): void {
    for (const h of hashes) this.uncheckedPieces.delete(h);
  }

  size(hash: string): number | null {
    return this.held.get(hash) ?? null;
  }

  /** A piece sent to the coordinator (the bucket refused the uploader's PUT): held in memory (≤ one piece), hashed, written to the bucket. */
  async put(hash: string, length: number, body: AsyncIterable<Uint8Array>): Promise<PutResult> {
    const bytes = new Uint8Array(length);
    let n = 0;
    for await (const chunk of body) {
      if (n + chunk.length > length) return { ok: false, status: 413, reason: `piece ${hash.slice(0, 12)}… is longer than the ${length} bytes its manifest gives`, what: 'checkpoint-piece-size' };
      bytes.set(chunk, n);
      n += chunk.length;
    }
    const checked = check(hash, length, bytes.subarray(0, n));
    if (!checked.ok) return checked;
    return this.bucketCall(async () => {
      await this.store.put(this.key(hash), bytes);
      this.held.set(hash, length);
      this.uncheckedPieces.delete(hash);
      return { ok: true };
    });
  }

  /** One GET of the whole piece (≤ 64 MiB); a range of it is cut from that (only the coordinator's own reads come here). */
  async *read(hash: string, start = 0, end?: number): AsyncIterable<Uint8Array> {
    await this.ready;
    const length = this.held.get(hash);
    const bytes = length === undefined ? null : await this.store.get(this.key(hash), length);
    if (!bytes) throw new ObjectStoreError('refused', `checkpoint piece ${hash.slice(0, 12)}… is not in the bucket`);
    yield bytes.subarray(start, end === undefined ? undefined : end + 1);
  }

  list(): string[] {
    return [...this.held.keys()];
  }

  remove(hash: string): void {
    const keys = [...(this.held.delete(hash) ? [this.key(hash)] : []), ...(this.uploads.has(hash) ? [this.uploads.get(hash)!] : [])];
    this.uploads.delete(hash);
    this.uncheckedPieces.delete(hash);
    if (keys.length) this.store.delete(keys).catch((e: unknown) => this.log(`could not delete checkpoint piece ${hash.slice(0, 12)}… from the bucket: ${(e as Error).message}`));
  }

  async uploadUrl(hash: string): Promise<string | null> {
    if (!HASH_HEX.test(hash)) return null;
    const old = this.uploads.get(hash);
    if (old) void this.store.delete([old]).catch(() => {}); // an earlier, unfinished upload of the same piece
    const key = `checkpoint-uploads/${this.run}/${hash}-${randomBytes(8).toString('hex')}.bin`;
    this.uploads.set(hash, key);
    return this.store.presignPut(key, PIECE_UPLOAD_EXPIRES_S);
  }

  /** HEAD (is it there, of the manifest's length), then a copy of that version to the piece's key: unchecked until the read-back. */
  async takeIn(hash: string, length: number): Promise<PutResult> {
    const key = this.uploads.get(hash);
    if (!key) return { ok: false, status: 409, reason: `no upload URL was given for piece ${hash.slice(0, 12)}…: PUT the manifest first`, what: 'checkpoint-bucket-no-slot' };
    return this.bucketCall(async () => {
      const found = await this.store.head(key);
      if (!found) return { ok: false, status: 409, reason: `nothing at the upload URL of piece ${hash.slice(0, 12)}… (the PUT failed or the URL expired): PUT it to /checkpoint/piece/${hash} instead`, what: 'checkpoint-bucket-missing' };
      if (found.bytes !== length) {
        this.remove(hash);
        return { ok: false, status: 400, reason: `piece ${hash.slice(0, 12)}… is ${found.bytes} bytes in the bucket, its manifest gives ${length}`, what: 'checkpoint-piece-size' };
      }
      try {
        await this.store.copy(key, this.key(hash), found.etag);
      } catch (e) {
        // Overwritten between the HEAD and the copy (the URL is still valid): nothing is kept.
        if (!(e instanceof ObjectStoreError && e.reason === 'changed')) throw e;
        return { ok: false, status: 409, reason: `piece ${hash.slice(0, 12)}… changed at its upload URL while it was taken in: PUT it to /checkpoint/piece/${hash} instead`, what: 'checkpoint-bucket-changed' };
      }
      this.held.set(hash, length);
      this.uncheckedPieces.add(hash);
      this.uploads.delete(hash);
      await this.store.delete([key]);
      return { ok: true };
    });
  }

  async downloadUrl(hash: string): Promise<string | null> {
    return this.held.has(hash) ? this.store.presignGet(this.key(hash), PIECE_DOWNLOAD_EXPIRES_S) : null;
  }

  /** Copies a stage's accepted manifest to the bucket (the bucket then holds the whole checkpoint); a failure is logged, and the coordinator serves it. */
  async keepManifest(stage: number, s: SignedManifest): Promise<void> {
    this.manifests.delete(stage);
    try {
      await this.store.put(`checkpoints/${this.run}/manifest-${stage}.json`, new TextEncoder().encode(JSON.stringify(s)));
      this.manifests.set(stage, s.manifest.round);
    } catch (e) {
      this.log(`could not copy the checkpoint manifest of stage ${stage} to the bucket: ${(e as Error).message}`);
    }
  }

  /** A presigned GET of stage's manifest when the bucket holds the one of `round`, else null. */
  async manifestUrl(stage: number, round: number): Promise<string | null> {
    return this.manifests.get(stage) === round ? this.store.presignGet(`checkpoints/${this.run}/manifest-${stage}.json`, PIECE_DOWNLOAD_EXPIRES_S) : null;
  }

  /** A bucket that refuses becomes a 502 naming what it said; the uploader then sends the piece to the coordinator. */
  private async bucketCall(f: () => Promise<PutResult>): Promise<PutResult> {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof ObjectStoreError)) throw e;
      return { ok: false, status: 502, reason: e.message, what: `checkpoint-bucket-${e.reason}` };
    }
  }
}

/** `bytes` is piece `hash` of `length` bytes, or why not. */
function check(hash: string, length: number, bytes: Uint8Array): PutResult {
  if (bytes.length !== length) return { ok: false, status: 400, reason: `piece ${hash.slice(0, 12)}… is ${bytes.length} bytes, its manifest gives ${length}`, what: 'checkpoint-piece-size' };
  const got = createHash('sha256').update(bytes).digest('hex');
  if (got !== hash) return { ok: false, status: 400, reason: `piece bytes hash to ${got.slice(0, 12)}…, not ${hash.slice(0, 12)}…`, what: 'checkpoint-piece-hash' };
  return { ok: true };
}
