// Checkpoints as files in a folder (Node): `<name>.ckpt`, and `<name>.ckpt.prev`, the one
// it replaced.
//
// save() never leaves a half-written checkpoint under a checkpoint's name:
//   1. write `.<name>.ckpt.tmp-<pid>-<rand>` in the same folder and fsync it;
//   2. if `<name>.ckpt` exists, hard-link it to a temporary name and rename that over
//      `<name>.ckpt.prev` (an atomic replace; a copy where links are not supported);
//   3. rename the new file over `<name>.ckpt` (atomic), then fsync the folder.
// At every instant `<name>.ckpt` is the old or the new complete file, and `.prev` the one
// before. A crash leaves at most a stray temporary file, which load() and list() ignore and
// a later save() removes when the process that wrote it is gone.
//
// load() rejects a corrupt file (CheckpointError naming the file and the check that
// failed); loadLatestValid() falls back to `.prev`, or to the newest valid checkpoint.
import { closeSync, copyFileSync, existsSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, decodeCheckpoint, encodeCheckpointParts, validateCheckpointName, type Checkpoint, type CheckpointStore } from '../train/checkpoint.ts';
import { fsyncDir } from './files.ts';

const EXT = '.ckpt';
const PREV = '.prev';

export interface LoadedCheckpoint {
  checkpoint: Checkpoint;
  /** Checkpoint name. */
  name: string;
  /** The file it came from. */
  file: string;
  /** True when it is a `.prev` file, i.e. the newer one was missing or corrupt. */
  fallback: boolean;
  /** Files tried before it and why they were rejected. */
  rejected: { file: string; error: string }[];
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads a whole file into one Uint8Array (not limited to readFile's 2 GiB). */
function readWhole(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const out = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, out, off, Math.min(size - off, 1 << 28), off);
      if (n === 0) break;
      off += n;
    }
    return off === size ? out : out.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

export class FileCheckpointStore implements CheckpointStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The file of a checkpoint (its `.prev` is this path + '.prev'). */
  path(name: string): string {
    validateCheckpointName(name);
    return join(this.dir, name + EXT);
  }

  async save(name: string, c: Checkpoint): Promise<void> {
    const target = this.path(name);
    const parts = encodeCheckpointParts(c); // validates before touching the disk
    mkdirSync(this.dir, { recursive: true });
    this.removeStaleTemps(name);
    const tmp = join(this.dir, `.${name}${EXT}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    try {
      const fd = openSync(tmp, 'w');
      try {
        for (const p of parts) {
          let off = 0;
          while (off < p.length) off += writeSync(fd, p, off, Math.min(p.length - off, 1 << 26));
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (existsSync(target)) this.keepAsPrev(name, target);
      renameSync(tmp, target);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    fsyncDir(this.dir);
  }

  /** Atomically replaces `<name>.ckpt.prev` with the current `<name>.ckpt`. */
  private keepAsPrev(name: string, target: string): void {
    const prevTmp = join(this.dir, `.${name}${EXT}${PREV}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    try {
      try {
        linkSync(target, prevTmp);
      } catch {
        copyFileSync(target, prevTmp);
      }
      renameSync(prevTmp, target + PREV);
    } catch (e) {
      rmSync(prevTmp, { force: true });
      throw e;
    }
  }

  /** Temporary files of crashed saves of this name (their process is gone). */
  private removeStaleTemps(name: string): void {
    const prefix = `.${name}${EXT}`;
    for (const f of readdirSync(this.dir)) {
      if (!f.startsWith(prefix)) continue;
      const m = /\.tmp-(\d+)-[a-z0-9]*$/.exec(f.slice(prefix.length));
      if (m && !processAlive(Number(m[1]))) rmSync(join(this.dir, f), { force: true });
    }
  }

  async load(name: string): Promise<Checkpoint | null> {
    const file = this.path(name);
    if (!existsSync(file)) return null;
    return decodeCheckpoint(readWhole(file), file);
  }

  async list(): Promise<string[]> {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(EXT) && !f.startsWith('.'))
      .map((f) => f.slice(0, -EXT.length))
      .filter((n) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(n))
      .sort();
  }

  async remove(name: string): Promise<void> {
    const file = this.path(name);
    rmSync(file, { force: true });
    rmSync(file + PREV, { force: true });
    fsyncDir(this.dir);
  }

  /**
   * With a name: `<name>.ckpt` if it is valid, else `<name>.ckpt.prev`. Without: among every
   * checkpoint and `.prev` in the folder, the valid one with the most steps (the newest
   * file on a tie). null when none is valid; `rejected` lists what was skipped and why.
   */
  async loadLatestValid(name?: string): Promise<LoadedCheckpoint | null> {
    const rejected: { file: string; error: string }[] = [];
    const candidates: { name: string; file: string; fallback: boolean }[] = [];
    if (name !== undefined) {
      const file = this.path(name);
      candidates.push({ name, file, fallback: false }, { name, file: file + PREV, fallback: true });
    } else if (existsSync(this.dir)) {
      for (const f of readdirSync(this.dir)) {
        if (f.startsWith('.')) continue;
        if (f.endsWith(EXT)) candidates.push({ name: f.slice(0, -EXT.length), file: join(this.dir, f), fallback: false });
        else if (f.endsWith(EXT + PREV)) candidates.push({ name: f.slice(0, -(EXT + PREV).length), file: join(this.dir, f), fallback: true });
      }
    }
    let best: (LoadedCheckpoint & { mtime: number }) | null = null;
    for (const c of candidates) {
      if (!existsSync(c.file)) continue;
      let checkpoint: Checkpoint;
      try {
        checkpoint = decodeCheckpoint(readWhole(c.file), c.file);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        rejected.push({ file: c.file, error: e.message });
        continue;
      }
      const mtime = statSync(c.file).mtimeMs;
      if (name !== undefined) return { checkpoint, name: c.name, file: c.file, fallback: c.fallback, rejected };
      if (!best || checkpoint.step > best.checkpoint.step || (checkpoint.step === best.checkpoint.step && mtime > best.mtime)) {
        best = { checkpoint, name: c.name, file: c.file, fallback: c.fallback, rejected, mtime };
      }
    }
    if (!best) return null;
    const { mtime: _m, ...out } = best;
    return { ...out, rejected };
  }
}
