// Encrypted wallets in IndexedDB (browser tab, Electron renderer, workers), through `idb`.
//
// Environment-free: the IDBFactory comes in through the constructor (a page or worker passes
// its `indexedDB`); nothing here touches a global. (idb recognises IndexedDB objects with
// `instanceof` against the host's classes, so the factory must be the host's own, or in Node
// tests fake-indexeddb's with its classes installed by 'fake-indexeddb/auto'.)
// Each wallet is one record { name, text, address, savedAt } whose `text` is the same JSON
// document a wallet file holds (keystore.ts): encrypted, so the browser's storage never sees
// the words. load() re-validates it, so a damaged record is reported, not used.
import { wrap, type IDBPDatabase } from 'idb';
import { WalletError } from './keys.ts';
import { parseWalletFile, serializeWalletFile, type WalletFile } from './keystore.ts';

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

export const IDB_WALLET_DATABASE = 'tessera-wallet';
export const DEFAULT_WALLET_NAME = 'default';
const STORE = 'wallets';
const VERSION = 1;

interface StoredRecord {
  name: string;
  text: string;
  address: string;
  savedAt: number;
}

function validateName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 100) {
    throw new WalletError('a wallet name is 1 to 100 characters');
  }
}

export class IdbWalletStore {
  private readonly factory: IdbFactoryLike;
  private readonly dbName: string;
  private db: Promise<IDBPDatabase> | null = null;

  constructor(factory: IdbFactoryLike, dbName = IDB_WALLET_DATABASE) {
    if (!factory || typeof factory.open !== 'function') {
      throw new TypeError('IdbWalletStore needs an IDBFactory (e.g. indexedDB in a page or worker)');
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
        throw new WalletError(`could not open IndexedDB database '${this.dbName}': ${(e as Error)?.message ?? String(e)}`);
      });
    }
    return this.db;
  }

  /**
   * Stores an encrypted wallet under `name` in one transaction. Refuses to replace an
   * existing one unless `overwrite` (a lost wallet is lost words).
   */
  async save(file: WalletFile, name = DEFAULT_WALLET_NAME, options: { overwrite?: boolean } = {}): Promise<void> {
    validateName(name);
    const checked = parseWalletFile(file, `the wallet '${name}'`);
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const existing = (await store.get(name)) as StoredRecord | undefined;
    if (existing !== undefined && !options.overwrite) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw new WalletError(`a wallet named '${name}' already exists (${existing?.address ?? 'unknown address'}): back up its words, then save with overwrite`);
    }
    const record: StoredRecord = { name, text: serializeWalletFile(checked), address: checked.address, savedAt: Date.now() };
    await Promise.all([store.put(record, name), tx.done]);
  }

  /** The wallet stored under `name`, checked (still encrypted), or null if there is none. */
  async load(name = DEFAULT_WALLET_NAME): Promise<WalletFile | null> {
    validateName(name);
    const db = await this.open();
    const rec = (await db.get(STORE, name)) as StoredRecord | undefined;
    if (rec === undefined) return null;
    const source = `IndexedDB ${this.dbName}/${name}`;
    if (!rec || typeof rec.text !== 'string') {
      throw new WalletError(`${source} is damaged (the record holds no wallet): remove it and import your mnemonic again`);
    }
    return parseWalletFile(rec.text, source);
  }

  /** Names and addresses of the stored wallets (no password needed). */
  async list(): Promise<{ name: string; address: string }[]> {
    const db = await this.open();
    const recs = (await db.getAll(STORE)) as StoredRecord[];
    return recs.map((r) => ({ name: String(r?.name), address: String(r?.address) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async remove(name = DEFAULT_WALLET_NAME): Promise<void> {
    validateName(name);
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
