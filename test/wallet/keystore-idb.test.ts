// Encrypted wallets in IndexedDB, on fake-indexeddb. idb recognises IndexedDB objects with
// `instanceof` against the host's IDBRequest, IDBDatabase, … classes: install fake-indexeddb's,
// then remove the global `indexedDB` to show the store only uses the factory it is given.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeAll, describe, expect, it } from 'vitest';
import { IdbWalletStore } from '../../src/wallet/keystore-idb.ts';
import { WalletError, cryptoReady } from '../../src/wallet/keys.ts';
import { WalletSecret, decryptWallet, encryptWallet } from '../../src/wallet/keystore.ts';

delete (globalThis as { indexedDB?: unknown }).indexedDB;

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const PW = 'open sesame';
const FAST = { kdf: { N: 1 << 10 } };

beforeAll(() => cryptoReady());

describe('IdbWalletStore (fake-indexeddb)', () => {
  it('round trip, across connections: saved encrypted, opened with the password', async () => {
    const factory = new IDBFactory();
    const store = new IdbWalletStore(factory);
    expect(await store.load()).toBeNull();
    await store.save(encryptWallet(WalletSecret.fromMnemonic(DEV, '//Alice'), PW, FAST));
    await store.close();
    const again = new IdbWalletStore(factory);
    const file = await again.load();
    expect(file).not.toBeNull();
    expect(file!.address).toBe(ALICE);
    expect(JSON.stringify(file)).not.toContain('bottom');
    const w = decryptWallet(file!, PW, 'IndexedDB wallet');
    expect(w.secret.revealMnemonic()).toBe(DEV);
    expect(w.secret.derivationPath).toBe('//Alice');
    expect(await again.list()).toEqual([{ name: 'default', address: ALICE }]);
    await again.close();
  });

  it('refuses to replace a wallet unless asked; names; remove', async () => {
    const store = new IdbWalletStore(new IDBFactory(), 'db-test');
    const a = encryptWallet(WalletSecret.fromMnemonic(DEV, '//Alice'), PW, FAST);
    const b = encryptWallet(WalletSecret.fromMnemonic(DEV, '//Bob'), PW, FAST);
    await store.save(a, 'main');
    await expect(store.save(b, 'main')).rejects.toThrow(/already exists.*5GrwvaEF/);
    expect((await store.load('main'))!.address).toBe(ALICE);
    await store.save(b, 'main', { overwrite: true });
    expect((await store.load('main'))!.address).toBe(b.address);
    await store.save(a, 'other');
    expect((await store.list()).map((x) => x.name)).toEqual(['main', 'other']);
    await store.remove('main');
    expect(await store.load('main')).toBeNull();
    await expect(store.save(a, '')).rejects.toThrow(WalletError);
    await store.close();
  });

  it('a damaged record is reported, not used', async () => {
    const factory = new IDBFactory();
    const store = new IdbWalletStore(factory, 'db-damaged');
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW, FAST);
    await store.save(file);
    await store.close();
    // Damage it behind the store's back.
    await new Promise<void>((resolve, reject) => {
      const req = factory.open('db-damaged', 1);
      req.onsuccess = () => {
        const tx = req.result.transaction('wallets', 'readwrite');
        tx.objectStore('wallets').put({ name: 'default', text: '{"format": "tessera-wallet", "version": 1', address: file.address, savedAt: 0 }, 'default');
        tx.oncomplete = () => { req.result.close(); resolve(); };
        tx.onerror = () => reject(tx.error);
      };
      req.onerror = () => reject(req.error);
    });
    const reopened = new IdbWalletStore(factory, 'db-damaged');
    await expect(reopened.load()).rejects.toThrow(/IndexedDB db-damaged\/default is damaged/);
    await reopened.close();
  });

  it('refuses to save something that is not a wallet document', async () => {
    const store = new IdbWalletStore(new IDBFactory(), 'db-bad');
    await expect(store.save({ format: 'tessera-wallet', version: 3 } as never)).rejects.toThrow(/newer Tessera/);
    await store.close();
    expect(() => new IdbWalletStore(undefined as never)).toThrow(/IDBFactory/);
  });
});
