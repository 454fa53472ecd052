// Checkpoint encoding, the file store (atomic saves, crash and corruption recovery) and the
// IndexedDB store (on fake-indexeddb).
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// idb recognises IndexedDB objects with `instanceof` against the host's IDBRequest,
// IDBDatabase, … classes, which a page or worker has and Node lacks: install fake-indexeddb's,
// then remove the global `indexedDB` to show that the store only uses the factory it is given.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { wrap, type IDBPDatabase } from 'idb';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, encodeCheckpointParts, type Checkpoint } from '../../src/train/checkpoint.ts';
import { FileCheckpointStore } from '../../src/node/checkpoint-files.ts';
import { IdbCheckpointStore } from '../../src/train/checkpoint-idb.ts';
import { initParameters, parameterLayout, preset } from '../../src/model/config.ts';

delete (globalThis as { indexedDB?: unknown }).indexedDB;

const root = mkdtempSync(join(tmpdir(), 'tessera-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(root, `d${dirCount++}`);

function rand(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** A small checkpoint: a few odd-sized tensors (one empty), tiny model, slice [0, 2). */
function smallCheckpoint(step = 7, seed = 1): Checkpoint {
  const r = rand(seed);
  const t = (n: number) => Float32Array.from({ length: n }, r);
  return {
    format: 1,
    model: preset('tiny'),
    from: 0,
    to: 2,
    step,
    dataPosition: { round: 3, innerStep: step, key: { runSeed: 42, contributor: 'alice' } },
    tensors: new Map([['param/a', t(3)], ['empty', new Float32Array(0)], ['adam.m/a', t(17)], ['x', Float32Array.of(NaN, -0, Infinity)]]),
    meta: { loss: 3.25, note: 'ünïcode ✓' },
  };
}

/** The whole tiny model's parameters and AdamW state. */
function tinyModelCheckpoint(step: number): Checkpoint {
  const model = preset('tiny');
  const params = initParameters(model, parameterLayout(model), 1234 + step);
  const tensors = new Map<string, Float32Array>();
  for (const [name, p] of params) {
    tensors.set(`param/${name}`, p);
    tensors.set(`adam.m/${name}`, p.map((x) => x * 0.1));
    tensors.set(`adam.v/${name}`, p.map((x) => x * x));
  }
  return { format: 1, model, from: 0, to: model.layers, step, dataPosition: { round: step }, tensors, meta: {} };
}

function expectSame(a: Checkpoint, b: Checkpoint): void {
  expect(b.format).toBe(1);
  expect(b.model).toEqual(a.model);
  expect([b.from, b.to, b.step]).toEqual([a.from, a.to, a.step]);
  expect(b.dataPosition).toEqual(a.dataPosition);
  expect(b.meta).toEqual(a.meta);
  expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
  for (const [k, v] of a.tensors) {
    const w = b.tensors.get(k)!;
    expect(w).toBeInstanceOf(Float32Array);
    // Bit-exact, NaN and −0 included.
    expect(Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(Buffer.from(v.buffer, v.byteOffset, v.byteLength))).toBe(true);
  }
}

describe('checkpoint encoding', () => {
  it('round-trips bit-exactly, with aligned tensors', () => {
    const c = smallCheckpoint();
    const bytes = encodeCheckpoint(c);
    expectSame(c, decodeCheckpoint(bytes));
    expect(bytes.length % 4).toBe(0);
    const parts = encodeCheckpointParts(c);
    expect(parts[0].length % 64).toBe(0); // data section starts 64-aligned
    // Decoding from an unaligned copy gives the same.
    const odd = new Uint8Array(bytes.length + 3);
    odd.set(bytes, 3);
    expectSame(c, decodeCheckpoint(odd.subarray(3)));
    const big = tinyModelCheckpoint(5);
    expectSame(big, decodeCheckpoint(encodeCheckpoint(big)));
  });

  it('rejects every single-byte corruption and every truncation', () => {
    const good = encodeCheckpoint(smallCheckpoint());
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= i % 2 ? 0x01 : 0x80;
      expect(() => decodeCheckpoint(bad), `byte ${i}`).toThrow(CheckpointError);
    }
    for (let len = 0; len < good.length; len += 3) {
      expect(() => decodeCheckpoint(good.subarray(0, len)), `length ${len}`).toThrow(CheckpointError);
    }
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expect(() => decodeCheckpoint(longer)).toThrow(/unexpected bytes/);
  });

  it('names the problem', () => {
    const good = encodeCheckpoint(smallCheckpoint());
    const problem = (b: Uint8Array) => {
      try {
        decodeCheckpoint(b, 'ck.ckpt');
        return 'none';
      } catch (e) {
        expect((e as Error).message).toMatch(/^ck\.ckpt: /);
        return (e as CheckpointError).reason;
      }
    };
    const m = good.slice();
    m[1] = 0;
    expect(problem(m)).toBe('magic');
    const v = good.slice();
    v[4] = 9;
    expect(problem(v)).toBe('version');
    const h = good.slice();
    h[40] ^= 4;
    expect(problem(h)).toBe('header-crc');
    const d = good.slice();
    d[d.length - 8] ^= 4;
    expect(problem(d)).toBe('data-crc');
    expect(() => decodeCheckpoint(d)).toThrow(/data checksum mismatch.*\.prev/);
    expect(problem(good.subarray(0, good.length - 5))).toBe('truncated');
  });

  it('refuses to encode an invalid checkpoint', () => {
    const c = smallCheckpoint();
    expect(() => encodeCheckpoint({ ...c, step: -1 })).toThrow(/step/);
    expect(() => encodeCheckpoint({ ...c, to: 3 })).toThrow(CheckpointError);
    expect(() => encodeCheckpoint({ ...c, model: { ...c.model, heads: 5 } })).toThrow(/heads/);
    expect(() => encodeCheckpoint({ ...c, dataPosition: undefined })).toThrow(/dataPosition/);
    expect(() => encodeCheckpoint({ ...c, tensors: new Map([['a', [1, 2] as unknown as Float32Array]]) })).toThrow(/Float32Array/);
    expect(() => encodeCheckpoint({ ...c, format: 2 as 1 })).toThrow(/format/);
  });
});

describe('FileCheckpointStore', () => {
  it('saves, loads, lists and removes; a save keeps the previous one as .prev', async () => {
    const dir = freshDir();
    const store = new FileCheckpointStore(dir);
    expect(await store.list()).toEqual([]);
    expect(await store.load('run')).toBeNull();
    const a = tinyModelCheckpoint(10);
    const b = tinyModelCheckpoint(20);
    await store.save('run', a);
    await store.save('run', b);
    await store.save('other', smallCheckpoint(1));
    expectSame(b, (await store.load('run'))!);
    expect(await store.list()).toEqual(['other', 'run']);
    expect(decodeCheckpoint(readFileSync(join(dir, 'run.ckpt.prev'))).step).toBe(10);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    await store.remove('run');
    expect(await store.list()).toEqual(['other']);
    expect(existsSync(join(dir, 'run.ckpt.prev'))).toBe(false);
    await expect(store.save('../evil', a)).rejects.toThrow(/invalid checkpoint name/);
    await expect(store.load('.hidden')).rejects.toThrow(CheckpointError);
  });

  it('a crash mid-save (partial temp file) leaves the previous checkpoint loadable', async () => {
    const dir = freshDir();
    const store = new FileCheckpointStore(dir);
    const a = tinyModelCheckpoint(10);
    await store.save('run', a);
    // The process died while writing the next checkpoint: half a file under a temp name.
    const partial = encodeCheckpoint(tinyModelCheckpoint(20));
    const stale = join(dir, '.run.ckpt.tmp-99999999-dead');
    writeFileSync(stale, partial.subarray(0, partial.length >> 1));
    expectSame(a, (await store.load('run'))!);
    expect(await store.list()).toEqual(['run']);
    const latest = await store.loadLatestValid();
    expect(latest!.checkpoint.step).toBe(10);
    // The next save cleans the dead process's temp file up.
    await store.save('run', tinyModelCheckpoint(30));
    expect(existsSync(stale)).toBe(false);
    expect((await store.load('run'))!.step).toBe(30);
  });

  it('a corrupt checkpoint is rejected with a clear error; loadLatestValid falls back to .prev', async () => {
    const dir = freshDir();
    const store = new FileCheckpointStore(dir);
    const a = tinyModelCheckpoint(10);
    await store.save('run', a);
    await store.save('run', tinyModelCheckpoint(20));
    const file = join(dir, 'run.ckpt');
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] ^= 0x10; // a flipped bit in the tensor data
    writeFileSync(file, bytes);
    await expect(store.load('run')).rejects.toThrow(/run\.ckpt: data checksum mismatch/);
    const got = await store.loadLatestValid('run');
    expect(got!.fallback).toBe(true);
    expect(got!.file).toBe(file + '.prev');
    expect(got!.rejected[0].file).toBe(file);
    expect(got!.rejected[0].error).toMatch(/checksum/);
    expectSame(a, got!.checkpoint);

    // A truncated file (e.g. written without this store's rename) is rejected the same way.
    writeFileSync(file, bytes.subarray(0, 1000));
    await expect(store.load('run')).rejects.toThrow(/truncated/);
    expect((await store.loadLatestValid('run'))!.checkpoint.step).toBe(10);
    // Only .prev left: it is still found.
    rmSync(file);
    expect(await store.load('run')).toBeNull();
    expect((await store.loadLatestValid('run'))!.checkpoint.step).toBe(10);
    // Both bad: null, with both reasons.
    writeFileSync(file + '.prev', 'garbage');
    expect(await store.loadLatestValid('run')).toBeNull();
  });

  it('loadLatestValid() without a name picks the valid checkpoint with the most steps', async () => {
    const dir = freshDir();
    const store = new FileCheckpointStore(dir);
    await store.save('a', smallCheckpoint(5));
    await store.save('b', smallCheckpoint(50));
    await store.save('c', smallCheckpoint(9));
    expect((await store.loadLatestValid())!.name).toBe('b');
    writeFileSync(join(dir, 'b.ckpt'), 'TCKP broken');
    const got = (await store.loadLatestValid())!;
    expect(got.name).toBe('c');
    expect(got.rejected.map((r) => r.file)).toEqual([join(dir, 'b.ckpt')]);
    expect(await new FileCheckpointStore(join(dir, 'none')).loadLatestValid()).toBeNull();
  });
});

describe('IdbCheckpointStore (fake-indexeddb)', () => {
  it('saves, loads, lists, removes, and persists across connections', async () => {
    const factory = new IDBFactory();
    const store = new IdbCheckpointStore(factory);
    expect(await store.list()).toEqual([]);
    expect(await store.load('run')).toBeNull();
    const a = tinyModelCheckpoint(10);
    await store.save('run', a);
    await store.save('z', smallCheckpoint(3));
    await store.save('run', tinyModelCheckpoint(20));
    expect(await store.list()).toEqual(['run', 'z']);
    await store.close();
    const again = new IdbCheckpointStore(factory);
    expectSame(tinyModelCheckpoint(20), (await again.load('run'))!);
    await again.remove('z');
    expect(await again.list()).toEqual(['run']);
    await again.close();
  });

  it('a failed save leaves the previous checkpoint; a damaged record is rejected', async () => {
    const factory = new IDBFactory();
    const store = new IdbCheckpointStore(factory, 'db-test');
    const a = smallCheckpoint(4);
    await store.save('run', a);
    await expect(store.save('run', { ...a, step: 1.5 })).rejects.toThrow(CheckpointError);
    expectSame(a, (await store.load('run'))!);
    await expect(store.save('bad name', a)).rejects.toThrow(/invalid checkpoint name/);
    await store.close();

    // Damage the stored bytes behind the store's back.
    const db = (await wrap(factory.open('db-test', 1) as never)) as unknown as IDBPDatabase;
    const rec = (await db.get('checkpoints', 'run')) as { bytes: Uint8Array };
    rec.bytes[rec.bytes.length - 6] ^= 1;
    await db.put('checkpoints', rec, 'run');
    db.close();
    const reopened = new IdbCheckpointStore(factory, 'db-test');
    await expect(reopened.load('run')).rejects.toThrow(/IndexedDB db-test\/run: data checksum mismatch/);
    await reopened.close();
  });

  it('needs a factory', () => {
    expect(() => new IdbCheckpointStore(undefined as never)).toThrow(/IDBFactory/);
  });
});
