// Where the run keeps checkpoint pieces, content-addressed by their SHA-256 (the same piece in
// two checkpoints is stored once). Every storage call of the checkpoint path goes through the
// CheckpointPieces interface — put (hashed as it arrives), read, has, remove, list, and the
// bucket's presigned URLs — with two backends: this file's PieceStore, one file per piece
// under <state>/checkpoint-pieces/ (the default), and BucketPieceStore
// (checkpoint-bucket-pieces.ts), pieces in the run's S3-compatible bucket.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, rmSync, statSync, renameSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { once } from 'node:events';
import type { SignedManifest } from '../protocol/checkpoint-manifest.ts';

const HASH_HEX = /^[0-9a-f]{64}$/;

export type PutResult = { ok: true } | { ok: false; status: number; reason: string; what: string };

export interface CheckpointPieces {
  /** 'disk' or 's3' (the bucket's pieces are uploaded and fetched with presigned URLs). */
  readonly kind: 'disk' | 's3';
  /** Resolves once the store can serve its pieces (a bucket: after moving a disk checkpoint in, checkpoint-move.ts). */
  readonly ready: Promise<void>;
  has(hash: string): boolean;
  /** Stored but not yet hashed (a bucket's piece copied in from its upload key): the checkpoint's read-back hashes it. */
  unchecked(hash: string): boolean;
  /** The read-back hashed these: they are the bytes their names hash to. */
  markChecked(hashes: readonly string[]): void;
  /** Bytes of a stored piece, or null. */
  size(hash: string): number | null;
  /** Stores `body` as `hash` only if it is exactly `length` bytes with that SHA-256. */
  put(hash: string, length: number, body: AsyncIterable<Uint8Array>): Promise<PutResult>;
  /** A stored piece's bytes [start, end] (inclusive, as HTTP ranges are; default: all), in order. */
  read(hash: string, start?: number, end?: number): AsyncIterable<Uint8Array>;
  list(): string[];
  remove(hash: string): void;
  /** A presigned PUT the uploader may put piece `hash` to (then takeIn), or null: upload it to the coordinator. */
  uploadUrl(hash: string): Promise<string | null>;
  /** Takes in piece `hash` (`length` bytes) from where uploadUrl let the uploader put it: checked like put. */
  takeIn(hash: string, length: number): Promise<PutResult>;
  /** A presigned GET of a stored piece, or null: the coordinator serves it. */
  downloadUrl(hash: string): Promise<string | null>;
  /** A stage's manifest was accepted: the bucket keeps a copy (the disk store: the saved state has it). */
  keepManifest(stage: number, s: SignedManifest): Promise<void>;
  /** A presigned GET of the stage's manifest of `round`, or null: the coordinator serves it. */
  manifestUrl(stage: number, round: number): Promise<string | null>;
}

export class PieceStore implements CheckpointPieces {
  readonly kind = 'disk';
  readonly ready = Promise.resolve();
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'checkpoint-pieces');
    mkdirSync(this.dir, { recursive: true });
    // Temporary files of an upload cut off by a crash: never a piece.
    for (const f of readdirSync(this.dir)) if (f.includes('.tmp-')) rmSync(join(this.dir, f), { force: true });
  }

  private file(hash: string): string {
    if (!HASH_HEX.test(hash)) throw new RangeError(`not a piece hash: '${hash}'`);
    return join(this.dir, `${hash}.bin`);
  }

  has(hash: string): boolean {
    return HASH_HEX.test(hash) && existsSync(this.file(hash));
  }

  /** Bytes of a stored piece, or null. */
  size(hash: string): number | null {
    return this.has(hash) ? statSync(this.file(hash)).size : null;
  }

  /** Never: put() hashes every piece as it arrives. */
  unchecked(): boolean {
    return false;
  }

  markChecked(): void {}

  /**
   * Streams `body` to disk, hashing as it goes; kept under `hash` only if it is exactly
   * `length` bytes with that SHA-256. Reads at most `length` + one chunk, whatever it is sent.
   */
  async put(hash: string, length: number, body: AsyncIterable<Uint8Array>): Promise<PutResult> {
    const target = this.file(hash);
    const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const sha = createHash('sha256');
    const out = createWriteStream(tmp);
    let n = 0;
    try {
      for await (const chunk of body) {
        n += chunk.length;
        if (n > length) return { ok: false, status: 413, reason: `piece ${hash.slice(0, 12)}… is longer than the ${length} bytes its manifest gives`, what: 'checkpoint-piece-size' };
        sha.update(chunk);
        if (!out.write(chunk)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
      if (n !== length) return { ok: false, status: 400, reason: `piece ${hash.slice(0, 12)}… is ${n} bytes, its manifest gives ${length}`, what: 'checkpoint-piece-size' };
      const got = sha.digest('hex');
      if (got !== hash) return { ok: false, status: 400, reason: `piece bytes hash to ${got.slice(0, 12)}…, not ${hash.slice(0, 12)}…`, what: 'checkpoint-piece-hash' };
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, target);
      return { ok: true };
    } finally {
      if (!out.closed) out.destroy();
      rmSync(tmp, { force: true });
    }
  }

  /** A stored piece's bytes [start, end] (inclusive, as HTTP ranges are), streamed. */
  get(hash: string, start = 0, end?: number): Readable {
    return createReadStream(this.file(hash), { start, end });
  }

  read(hash: string, start = 0, end?: number): AsyncIterable<Uint8Array> {
    return this.get(hash, start, end) as AsyncIterable<Uint8Array>;
  }

  async uploadUrl(): Promise<null> {
    return null;
  }

  async takeIn(): Promise<PutResult> {
    return { ok: false, status: 409, reason: 'this coordinator keeps checkpoints on its own disk (no bucket): PUT the piece to /checkpoint/piece/<sha256>', what: 'checkpoint-bucket-none' };
  }

  async downloadUrl(): Promise<null> {
    return null;
  }

  async keepManifest(): Promise<void> {}

  async manifestUrl(): Promise<null> {
    return null;
  }

  /** Every stored piece's hash. */
  list(): string[] {
    return readdirSync(this.dir).filter((f) => /^[0-9a-f]{64}\.bin$/.test(f)).map((f) => f.slice(0, 64));
  }

  remove(hash: string): void {
    if (HASH_HEX.test(hash)) rmSync(this.file(hash), { force: true });
  }
}
