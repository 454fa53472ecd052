// The encrypted wallet as a file (Node): the JSON document of src/wallet/keystore.ts, mode
// 0600, written atomically (a temporary file in the same folder, fsync, rename, fsync of the
// folder), so a crash mid-write leaves the old wallet or the new one, never half of either.
// The temporary file is created 0600 from the start: the ciphertext is never world-readable,
// not even for a moment. Also: the wallet password from --password-file or the environment.
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WalletError } from '../wallet/keys.ts';
import { fsyncDir } from './corpus.ts';
import { parseWalletFile, serializeWalletFile, type WalletFile } from '../wallet/keystore.ts';

export const DEFAULT_WALLET_FILE = join('.tessera', 'wallet.json');
/** The environment variable holding the wallet password (for scripts and services). */
export const PASSWORD_ENV = 'TESSERA_WALLET_PASSWORD';

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? String(e);
}

/** Reads and checks a wallet file (still encrypted). `mode` lets callers warn about loose permissions. */
export function readWalletFile(path: string): { wallet: WalletFile; mode: number } {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (code(e) === 'ENOENT') throw new WalletError(`no wallet at ${path}: create one with \`tessera wallet create\`, or import one with \`tessera wallet import\` (or name another file with --wallet)`);
    if (code(e) === 'EISDIR') throw new WalletError(`${path} is a folder, not a wallet file`);
    throw new WalletError(`cannot read the wallet ${path} (${code(e)})`);
  }
  return { wallet: parseWalletFile(text, path), mode };
}

export function walletFileExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a wallet file atomically with mode 0600 (its folder is created 0700 if missing).
 * Without `overwrite`, an existing file is never replaced, not even by a concurrent writer.
 */
export function writeWalletFile(path: string, wallet: WalletFile, options: { overwrite?: boolean } = {}): void {
  const checked = parseWalletFile(wallet, path);
  const bytes = Buffer.from(serializeWalletFile(checked), 'utf8');
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!options.overwrite && walletFileExists(path)) throw existsError(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600); // the umask may have taken more away; 0600 exactly
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw new WalletError(`cannot write the wallet ${path} (${code(e)})`);
  }
  closeSync(fd);
  try {
    if (options.overwrite) {
      renameSync(tmp, path);
    } else {
      // link() fails if the name exists, atomically: no check-then-write race. Where the
      // file system has no hard links, fall back to check-then-rename.
      try {
        linkSync(tmp, path);
        rmSync(tmp, { force: true });
      } catch (e) {
        if (code(e) === 'EEXIST' || walletFileExists(path)) throw existsError(path);
        renameSync(tmp, path);
      }
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    if (e instanceof WalletError) throw e;
    throw new WalletError(`cannot write the wallet ${path} (${code(e)})`);
  }
  fsyncDir(dir);
}

function existsError(path: string): WalletError {
  return new WalletError(`a wallet already exists at ${path}: pass --force to replace it (back up its words first: \`tessera wallet show --reveal\`), or choose another file with --wallet`);
}

/** The password on the first line of a file (its line ending is not part of it). */
export function readPasswordFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WalletError(`cannot read the password file ${path} (${code(e)})`);
  }
  const password = text.split(/\r?\n/)[0];
  if (!password) throw new WalletError(`the password file ${path} is empty: put the wallet password on its first line`);
  return password;
}

/** The password from --password-file, else $TESSERA_WALLET_PASSWORD, else null. */
export function passwordFromFileOrEnv(passwordFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (passwordFile !== undefined) return readPasswordFile(passwordFile);
  const fromEnv = env[PASSWORD_ENV];
  return fromEnv ? fromEnv : null;
}
