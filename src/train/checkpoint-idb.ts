// Checkpoints in IndexedDB (browser tab, Electron renderer, workers), through `idb`.
//
// Environment-free: the IDBFactory comes in through the constructor (a page or worker
// passes its `indexedDB`), nothing here touches a global. (idb itself recognises IndexedDB
// objects with `instanceof` against the host's IDBRequest, IDBDatabase, … classes, so the
// factory must be the host's own, or, in Node tests, fake-indexeddb's with its classes
// installed by 'fake-indexeddb/auto'.) Each checkpoint
// is one record { name, bytes, step, savedAt } holding the encoded checkpoint (see
// checkpoint.ts), written in ONE readwrite transaction: IndexedDB commits it entirely or
// not at all, so a crash or a closed tab mid-save leaves the previous checkpoint. load()
// decodes and validates the bytes, so a damaged record is reported, not trained on.
import { wrap, type IDBPDatabase } from 'idb';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, validateCheckpointName, type Checkpoint, type CheckpointStore } from './checkpoint.ts';

/** The part of IndexedDB's IDBFactory used here (the engine is compiled without DOM types). */
export interface IdbFactoryLike {
  open(name: string, version?: number): unknown;
}

interface OpenRequestLike {
  result: {
    objectStoreNames: { contains(name: string): boolean };
    createObjectStore(name: string): unknown;
  };
  onupgradeneeded: ((ev: unknown) => void) | null;
}

export const IDB_DATABASE = 'tessera-checkpoints';
const STORE = 'checkpoints';
const VERSION = 1;

interface StoredRecord {
  name: string;
  bytes: Uint8Array;
  step: number;
  savedAt: number;
}

export class IdbCheckpointStore implements CheckpointStore {
  private readonly factory: IdbFactoryLike;
  private readonly dbName: string;
  private db: Promise<IDBPDatabase> | null = null;

  constructor(factory: IdbFactoryLike, dbName = IDB_DATABASE) {
    if (!factory || typeof factory.open !== 'function') {
      throw new TypeError('IdbCheckpointStore needs an IDBFactory (e.g. indexedDB in a page or worker)');
    }
    this.factory = factory;
    this.dbName = dbName;
  }

  private open(): Promise<IDBPDatabase> {
    if (!this.db) {
      const req = this.factory.open(this.dbName, VERSION) as OpenRequestLike;
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
      };
      this.db = (wrap(req as never) as unknown as Promise<IDBPDatabase>).catch((e: unknown) => {
        this.db = null;
        throw new CheckpointError('missing', `could not open IndexedDB database '${this.dbName}': ${(e as Error)?.message ?? String(e)}`);
      });
    }
    return this.db;
  }

  async save(name: string, c: Checkpoint): Promise<void> {
    validateCheckpointName(name);
    const bytes = encodeCheckpoint(c); // validates before the transaction starts
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const record: StoredRecord = { name, bytes, step: c.step, savedAt: Date.now() };
    await Promise.all([tx.objectStore(STORE).put(record, name), tx.done]);
  }

  async load(name: string): Promise<Checkpoint | null> {
    validateCheckpointName(name);
    const db = await this.open();
    const rec = (await db.get(STORE, name)) as StoredRecord | undefined;
    if (rec === undefined) return null;
    const source = `IndexedDB ${this.dbName}/${name}`;
    if (!rec || !(rec.bytes instanceof Uint8Array)) {
      throw new CheckpointError('header', `${source}: the record holds no checkpoint bytes; remove it and save again`);
    }
    return decodeCheckpoint(rec.bytes, source);
  }

  async list(): Promise<string[]> {
    const db = await this.open();
    return ((await db.getAllKeys(STORE)) as unknown[]).map(String).sort();
  }

  async remove(name: string): Promise<void> {
    validateCheckpointName(name);
    const db = await this.open();
    await db.delete(STORE, name);
  }

  /** Closes the database connection (a later call opens it again). */
  async close(): Promise<void> {
    if (!this.db) return;
    const db = await this.db.catch(() => null);
    this.db = null;
    db?.close();
  }
}
