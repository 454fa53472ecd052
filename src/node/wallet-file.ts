// The encrypted wallet as a file (Node): the JSON document of src/wallet/keystore.ts, mode
// 0600, written atomically (a temporary file in the same folder, fsync, rename, fsync of the
// folder), so a crash mid-write leaves the old wallet or the new one, never half of either.
// The temporary file is created 0600 from the start: the ciphertext is never world-readable,
// not even for a moment. Also: the wallet password from --password-file, the environment or a
// prompt that does not echo, and unlocking a wallet with it.
import { closeSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WalletError } from '../wallet/keys.ts';
import { fsyncDir } from './files.ts';
import { decryptWallet, parseWalletFile, serializeWalletFile, type UnlockedWallet, type WalletFile } from '../wallet/keystore.ts';

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

/** Tries a person gets at the password prompt before the command gives up. */
export const PASSWORD_TRIES = 3;

/**
 * Opens the wallet in `text` (read from `path`) with its password: from --password-file or
 * $TESSERA_WALLET_PASSWORD, else typed at the terminal (up to PASSWORD_TRIES tries). Without a
 * terminal, an error saying how to give it. A wrong password given by file or environment says
 * which one it came from. `stdinHeld`: stdin carried data, so no prompt.
 */
export async function unlockWallet(text: string | WalletFile, path: string, passwordFile: string | undefined, options: { stdinHeld?: boolean } = {}): Promise<UnlockedWallet> {
  const given = passwordFromFileOrEnv(passwordFile);
  if (given !== null) {
    try {
      return decryptWallet(text, given, path);
    } catch (e) {
      if (!isWrongPassword(e)) throw e;
      const from = passwordFile !== undefined ? `the password file ${passwordFile}` : `$${PASSWORD_ENV}`;
      throw new WalletError(`wrong password for ${path} (from ${from}): check it; a lost password cannot be recovered, but \`tessera wallet import --force\` with your words sets a new one`);
    }
  }
  if (options.stdinHeld || !process.stdin.isTTY) throw noPasswordError(path, options.stdinHeld === true);
  for (let attempt = 1; ; attempt++) {
    // The retry notice is part of the prompt, written once echo is off: a password typed as
    // soon as it shows is never echoed.
    const typed = await promptHidden(`${attempt > 1 ? 'wrong password; try again\n' : ''}password for ${path}: `);
    try {
      return decryptWallet(text, typed, path);
    } catch (e) {
      if (!isWrongPassword(e) && !(e instanceof WalletError && /password is empty/.test(e.message))) throw e;
      if (attempt >= PASSWORD_TRIES) throw new WalletError(`wrong password for ${path} (${PASSWORD_TRIES} tries): a lost password cannot be recovered, but \`tessera wallet import --force\` with your words sets a new one`);
    }
  }
}

function isWrongPassword(e: unknown): boolean {
  return e instanceof WalletError && e.message.startsWith('wrong password');
}

export function noPasswordError(path: string, stdinHeld = false): WalletError {
  return new WalletError(`the wallet ${path} needs its password and there is no terminal to ask on${stdinHeld ? ' (stdin held the mnemonic)' : ''}: pass --password-file FILE or set ${PASSWORD_ENV}`);
}

/** Reads a line from the terminal without echoing it (prompt on stderr). Ctrl-C or Ctrl-D on an empty line cancels. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    // Echo off before the prompt shows, so nothing typed right after it is echoed.
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    process.stderr.write(question);
    stdin.setEncoding('utf8');
    stdin.resume();
    let value = '';
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new WalletError('cancelled'));
        if (ch === '\u0004') return value ? finish() : finish(new WalletError('cancelled'));
        if (ch === '\u007f' || ch === '\b') {
          value = Array.from(value).slice(0, -1).join('');
          continue;
        }
        if (ch === '\u001b') break; // an escape sequence (arrow keys …): drop the rest of it
        if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
