// The wallet secret (the keystore password or mnemonic the UI hands over), encrypted with
// Electron's safeStorage in the main process and kept in one file in the app's data folder.
// On Linux without a keyring safeStorage falls back to 'basic_text', a fixed key: the UI
// is warned, and saving still needs the user's explicit choice (allowPlainText).
import type { SecretStorageInfo } from '../contract.ts';

export interface SafeStorageLike {
  isEncryptionAvailable(): boolean;
  encryptString(plainText: string): Uint8Array;
  decryptString(encrypted: Buffer): string;
  /** Linux only. */
  getSelectedStorageBackend?(): string;
}

export interface SecretFiles {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array, options: { mode: number }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
}

export const PLAIN_TEXT_WARNING =
  'No system keyring was found (safeStorage uses the "basic_text" backend), so the wallet secret ' +
  'would be stored with a fixed, publicly known key. Install and unlock a keyring (GNOME Keyring ' +
  'or KWallet), or keep the secret yourself and type it each time.';

export const MAX_SECRET_LENGTH = 16_384;

export class SecretStore {
  constructor(
    private readonly safeStorage: SafeStorageLike,
    private readonly files: SecretFiles,
    private readonly path: string,
    private readonly platform: string,
    /** The user accepted plain-text storage (a setting the UI asks for after the warning). */
    private readonly allowPlainText: () => boolean = () => false,
  ) {}

  info(): SecretStorageInfo {
    const available = this.safeStorage.isEncryptionAvailable();
    const backend = this.platform === 'linux' ? (this.safeStorage.getSelectedStorageBackend?.() ?? 'unknown') : 'os';
    const warning = !available
      ? 'Secret storage is not available on this system yet; the wallet secret cannot be saved.'
      : backend === 'basic_text' ? PLAIN_TEXT_WARNING : null;
    return { available, backend, warning };
  }

  async save(secret: unknown): Promise<SecretStorageInfo> {
    if (typeof secret !== 'string' || secret.length === 0) throw new Error('the wallet secret must be a non-empty string');
    if (secret.length > MAX_SECRET_LENGTH) throw new Error(`the wallet secret is longer than ${MAX_SECRET_LENGTH} characters`);
    const info = this.info();
    if (!info.available) throw new Error(info.warning!);
    if (info.backend === 'basic_text' && !this.allowPlainText()) throw new Error(`not saved: ${PLAIN_TEXT_WARNING}`);
    const temporary = `${this.path}.tmp`;
    await this.files.writeFile(temporary, this.safeStorage.encryptString(secret), { mode: 0o600 });
    await this.files.rename(temporary, this.path);
    return info;
  }

  async load(): Promise<string | null> {
    let encrypted: Uint8Array;
    try {
      encrypted = await this.files.readFile(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    if (!this.safeStorage.isEncryptionAvailable()) throw new Error('secret storage is not available yet (is the keyring unlocked?); try again after logging in');
    try {
      return this.safeStorage.decryptString(Buffer.from(encrypted));
    } catch (error) {
      throw new Error(`the saved wallet secret cannot be decrypted (${(error as Error).message}); the keyring may have changed. Import the wallet again.`, { cause: error });
    }
  }

  async remove(): Promise<void> {
    await this.files.rm(this.path, { force: true });
  }
}
