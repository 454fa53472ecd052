// Durable file writes (Node only): a write that a crash or power cut leaves either old or new,
// never half. Used for token shards, the coordinator's state, checkpoints and wallet files.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Bytes per writeSync call: one call takes at most 2 GiB, and 64 MiB keeps each short. */
const WRITE_CHUNK_BYTES = 1 << 26;

/**
 * Writes a file atomically: a temporary file in the same folder, fsync, rename over the
 * target, fsync the folder. A crash leaves either the old file or the new one, never half.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const fd = openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, WRITE_CHUNK_BYTES));
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** fsync a folder so a rename in it survives a power cut (not possible on every platform). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows cannot open folders; renames there are made durable by the OS.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * writeFileAtomic without holding the event loop (a large file on a busy server): the same
 * temporary file, fsync, rename and folder fsync, through the thread pool.
 */
export async function writeFileAtomicAsync(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}
