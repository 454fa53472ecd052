// The disk backend of ObjectStore (the S3 one runs against a real radosgw in
// test/e2e/s3-store.test.ts): the same operations, keys that cannot leave the folder, and no
// presigned URLs (everything then goes through the coordinator).
import { afterAll, describe, expect, it } from 'vitest';
import { DiskObjectStore, ObjectStoreError } from '../../src/coordinator/object-store.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

afterAll(removeTempDirs);

describe('DiskObjectStore', () => {
  it('puts, reads, copies only an unchanged object, deletes', async () => {
    const store = new DiskObjectStore(tempDir());
    const bytes = new Uint8Array([1, 2, 3, 4]);
    await store.put('updates/run/0/a.bin', bytes);
    const head = await store.head('updates/run/0/a.bin');
    expect(head?.bytes).toBe(4);
    expect(await store.get('updates/run/0/a.bin', 4)).toEqual(bytes);
    expect(await store.get('updates/run/0/none.bin', 4)).toBeNull();
    await expect(store.get('updates/run/0/a.bin', 3)).rejects.toMatchObject({ reason: 'too-large' });
    await store.copy('updates/run/0/a.bin', 'final/a.bin', head!.etag);
    expect(await store.get('final/a.bin', 10)).toEqual(bytes);
    await store.put('updates/run/0/a.bin', new Uint8Array([9, 9]));
    await expect(store.copy('updates/run/0/a.bin', 'final/b.bin', head!.etag)).rejects.toMatchObject({ reason: 'changed' });
    await store.delete(['final/a.bin', 'final/none.bin']);
    expect(await store.head('final/a.bin')).toBeNull();
    expect(await store.presignPut()).toBeNull();
    expect(await store.presignGet()).toBeNull();
  });

  it('refuses keys that are not plain relative paths', async () => {
    const store = new DiskObjectStore(tempDir());
    for (const key of ['../x', 'a/../../x', '/abs', 'a//b', 'a/.hidden/../..', 'sp ace', '']) {
      await expect(store.put(key, new Uint8Array(1)), key).rejects.toBeInstanceOf(ObjectStoreError);
    }
  });
});
