// A run's store switched from the coordinator's disk to a bucket (a coordinator restarted with
// the bucket settings on an existing state folder): the accepted checkpoint's pieces are still
// in <state>/checkpoint-pieces/, and a late joiner told to fetch them from the bucket would
// find nothing there. At start, each piece an accepted manifest names that the bucket lacks
// (HEAD: absent or of another length) is copied there from the disk, and verified:
//   - the disk file must hash to its name (SHA-256) before it is sent — a corrupt copy is
//     never moved;
//   - the bucket's answer must be that object: its ETag is the MD5 of the bytes sent (a
//     single-part PUT's, on S3, R2 and radosgw), or, where a server's ETag is not one, the
//     object read back hashes to its name.
// A piece neither place holds is lost: the stage's checkpoint is then not served (a late joiner
// syncs from peers, or from the seed while the commits since round 0 are kept), and the log
// says so and what to do. The disk copies stay where they are (the operator may delete them).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pieceLength, type SignedManifest } from '../protocol/checkpoint-manifest.ts';
import type { ObjectStore } from './object-store.ts';

export interface MoveResult {
  /** Pieces the bucket already held, pieces copied to it and checked, pieces found nowhere. */
  present: number;
  moved: number;
  lost: string[];
  movedBytes: number;
}

export interface MoveTarget {
  store: ObjectStore;
  /** The bucket key of a piece. */
  key(hash: string): string;
  log(line: string): void;
}

/** Copies every piece of `manifests` the bucket lacks from `diskDir` (checkpoint-pieces/), one at a time (≤ 64 MiB in memory). */
export async function moveDiskPieces(t: MoveTarget, manifests: readonly SignedManifest[], diskDir: string): Promise<MoveResult> {
  const pieces = new Map<string, number>();
  for (const { manifest: m } of manifests) m.pieces.forEach((h, i) => pieces.set(h, pieceLength(m, i)));
  const result: MoveResult = { present: 0, moved: 0, lost: [], movedBytes: 0 };
  for (const [hash, length] of pieces) {
    const there = await t.store.head(t.key(hash));
    if (there?.bytes === length) {
      result.present++;
      continue;
    }
    const file = join(diskDir, `${hash}.bin`);
    const bytes = existsSync(file) ? new Uint8Array(readFileSync(file)) : null;
    if (!bytes || bytes.length !== length || createHash('sha256').update(bytes).digest('hex') !== hash) {
      t.log(`checkpoint piece ${hash.slice(0, 12)}… is not in the bucket and ${bytes ? 'its copy on disk is corrupt' : `not on disk (${file})`}`);
      result.lost.push(hash);
      continue;
    }
    await t.store.put(t.key(hash), bytes);
    const md5 = createHash('md5').update(bytes).digest('hex');
    const etag = (await t.store.head(t.key(hash)))?.etag.replace(/"/g, '') ?? '';
    const sent = /^[0-9a-f]{32}$/.test(etag)
      ? etag === md5
      : createHash('sha256').update((await t.store.get(t.key(hash), length)) ?? new Uint8Array(0)).digest('hex') === hash;
    if (!sent) {
      await t.store.delete([t.key(hash)]);
      t.log(`checkpoint piece ${hash.slice(0, 12)}… did not arrive in the bucket as sent (its ETag is not the bytes' MD5): removed`);
      result.lost.push(hash);
      continue;
    }
    result.moved++;
    result.movedBytes += length;
  }
  return result;
}
