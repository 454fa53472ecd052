import { describe, expect, it } from 'vitest';
import { PLAIN_TEXT_WARNING, SecretStore, type SafeStorageLike } from '../../electron/services/secret-store.ts';
import { MemoryFiles } from './doubles.ts';

/** Reversible "encryption" that is visibly not the plain text (a byte rotation). */
class FakeSafeStorage implements SafeStorageLike {
  constructor(public available = true, public backend = 'gnome_libsecret', public corrupt = false) {}
  isEncryptionAvailable() { return this.available; }
  encryptString(plain: string) { return Uint8Array.from(Buffer.from(plain, 'utf8'), (b) => (b + 13) % 256); }
  decryptString(encrypted: Buffer) {
    if (this.corrupt) throw new Error('Error while decrypting the ciphertext provided to safeStorage.decryptString.');
    return Buffer.from(Uint8Array.from(encrypted, (b) => (b + 243) % 256)).toString('utf8');
  }
  getSelectedStorageBackend() { return this.backend; }
}

const PATH = '/data/wallet-secret.bin';

describe('SecretStore', () => {
  it('stores the secret encrypted (never the plain text), mode 0600, and reads it back', async () => {
    const files = new MemoryFiles();
    const store = new SecretStore(new FakeSafeStorage(), files, PATH, 'linux');
    expect(await store.load()).toBeNull();
    expect(await store.save('correct horse battery staple')).toEqual({ available: true, backend: 'gnome_libsecret', warning: null });
    const stored = files.files.get(PATH)!;
    expect(stored.mode).toBe(0o600);
    expect(Buffer.from(stored.data).toString('utf8')).not.toContain('horse');
    expect(await store.load()).toBe('correct horse battery staple');
    await store.remove();
    expect(await store.load()).toBeNull();
  });

  it("warns about Linux's basic_text backend and refuses to save until the user accepts it", async () => {
    let accepted = false;
    const store = new SecretStore(new FakeSafeStorage(true, 'basic_text'), new MemoryFiles(), PATH, 'linux', () => accepted);
    expect(store.info()).toEqual({ available: true, backend: 'basic_text', warning: PLAIN_TEXT_WARNING });
    await expect(store.save('words')).rejects.toThrow(/not saved: .*basic_text/);
    accepted = true;
    expect((await store.save('words')).warning).toBe(PLAIN_TEXT_WARNING);
    expect(await store.load()).toBe('words');
  });

  it('on Windows and macOS the backend is the OS and there is no warning', () => {
    expect(new SecretStore(new FakeSafeStorage(true, 'basic_text'), new MemoryFiles(), PATH, 'win32').info()).toEqual({ available: true, backend: 'os', warning: null });
  });

  it('says so when encryption is unavailable, and keeps nothing', async () => {
    const files = new MemoryFiles();
    const store = new SecretStore(new FakeSafeStorage(false), files, PATH, 'darwin');
    await expect(store.save('x')).rejects.toThrow(/cannot be saved/);
    expect(files.files.size).toBe(0);
  });

  it('a secret that no longer decrypts gives a message saying what to do', async () => {
    const files = new MemoryFiles();
    const safe = new FakeSafeStorage();
    const store = new SecretStore(safe, files, PATH, 'linux');
    await store.save('x');
    safe.corrupt = true;
    await expect(store.load()).rejects.toThrow(/cannot be decrypted.*Import the wallet again/);
  });

  it('refuses empty, non-string and oversized secrets', async () => {
    const store = new SecretStore(new FakeSafeStorage(), new MemoryFiles(), PATH, 'linux');
    await expect(store.save('')).rejects.toThrow(/non-empty string/);
    await expect(store.save(42)).rejects.toThrow(/non-empty string/);
    await expect(store.save('x'.repeat(20_000))).rejects.toThrow(/longer than/);
  });
});
