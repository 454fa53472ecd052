// A hotkey from a file, and which file holds the user's own key. A key file is a mnemonic
// (plain words, optionally followed by a derivation path), a btcli hotkey JSON file
// (secretPhrase / secretSeed, checked against its ss58Address), or a Tessera wallet
// (`tessera wallet create`), opened with its password (--password-file, $TESSERA_WALLET_PASSWORD,
// or typed at the terminal). Every error names the file and what it should hold; none quotes
// its contents, which are secret.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isEncryptedBtcliKeyfile, parseBtcliKeyfile } from '../wallet/btcli.ts';
import { Hotkey, WalletError } from '../wallet/keys.ts';
import { decryptWallet, isWalletJson } from '../wallet/keystore.ts';
import { DEFAULT_WALLET_FILE, PASSWORD_ENV, passwordFromFileOrEnv, unlockWallet } from './wallet-file.ts';

/** The unencrypted mnemonic file `tessera contribute` made before it used the wallet; still read, with a warning. */
export const PLAINTEXT_HOTKEY_FILE = join('.tessera', 'hotkey');
/** Larger than any key file; a bigger one is the wrong file. */
const MAX_KEY_FILE_BYTES = 64 * 1024;
const WHAT_A_KEY_FILE_HOLDS = 'a key file holds a mnemonic (12–24 words), a btcli hotkey file or a Tessera wallet (tessera wallet create)';

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? 'error';
}

/** The file's text, or a WalletError naming the file: missing, a folder, unreadable, empty, too large. */
function readKeyText(path: string): string {
  let text: string;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new WalletError(`the key file ${path} is a folder: ${WHAT_A_KEY_FILE_HOLDS}`);
    if (stat.size > MAX_KEY_FILE_BYTES) throw new WalletError(`the key file ${path} is too large to be one (${stat.size} bytes): ${WHAT_A_KEY_FILE_HOLDS}`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof WalletError) throw e;
    if (errorCode(e) === 'ENOENT') throw new WalletError(`no key file at ${path}: check the name, or create a wallet with \`tessera wallet create\``);
    throw new WalletError(`cannot read the key file ${path} (${errorCode(e)}${errorCode(e) === 'EACCES' ? ': permission denied' : ''})`);
  }
  text = text.trim();
  if (!text) throw new WalletError(`the key file ${path} is empty: ${WHAT_A_KEY_FILE_HOLDS}`);
  return text;
}

/** The key in a file's text, or 'wallet' when it is a Tessera wallet (which needs its password). */
function keyFromText(path: string, text: string): Hotkey | 'wallet' {
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // Never the parser's message: it quotes the file, which holds a secret.
      throw new WalletError(`the key file ${path} looks like JSON but does not parse: expected a Tessera wallet or a btcli hotkey file`);
    }
    if (isWalletJson(json)) return 'wallet';
    return parseBtcliKeyfile(text, `the key file ${path}`).key;
  }
  if (isEncryptedBtcliKeyfile(text)) parseBtcliKeyfile(text, `the key file ${path}`); // throws, saying what to do
  // 'words… //Alice': mnemonic words have no '/', so a derivation path starts at the first.
  const slash = text.indexOf('/');
  const words = slash < 0 ? text : text.slice(0, slash);
  const derivation = slash < 0 ? '' : text.slice(slash).trim();
  try {
    return Hotkey.fromMnemonic(words, derivation);
  } catch (e) {
    if (!(e instanceof WalletError)) throw e;
    throw new WalletError(`the key file ${path} is not a key Tessera reads (${e.message}): ${WHAT_A_KEY_FILE_HOLDS}`);
  }
}

/**
 * The key in a file, a wallet opened with the password from --password-file or the
 * environment only (no prompt): for callers that cannot wait on a terminal.
 */
export function loadHotkeyFile(path: string, options: { passwordFile?: string } = {}): Hotkey {
  const text = readKeyText(path);
  const key = keyFromText(path, text);
  if (key !== 'wallet') return key;
  const password = passwordFromFileOrEnv(options.passwordFile);
  if (password === null) throw new WalletError(`${path} is an encrypted Tessera wallet: give its password with --password-file FILE or the ${PASSWORD_ENV} environment variable`);
  return decryptWallet(text, password, path).key;
}

/** The key in a file; a wallet's password may also be typed at the terminal (see unlockWallet). */
export async function unlockHotkeyFile(path: string, options: { passwordFile?: string } = {}): Promise<{ key: Hotkey; encrypted: boolean }> {
  const text = readKeyText(path);
  const key = keyFromText(path, text);
  if (key !== 'wallet') return { key, encrypted: false };
  return { key: (await unlockWallet(text, path, options.passwordFile)).key, encrypted: true };
}

/** The address of a key file without its password: a wallet keeps it in the clear. */
export function keyFileAddress(path: string): string {
  const text = readKeyText(path);
  const key = keyFromText(path, text);
  return key === 'wallet' ? (JSON.parse(text) as { address: string }).address : key.address;
}

export interface OwnKey {
  key: Hotkey;
  /** The file it came from. */
  file: string;
  /** Said to the user before anything else: the key is stored unencrypted, and how to fix that. */
  warning: string | null;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** True when others than the owner may read the file (never on Windows, which has no such bits). */
function readableByOthers(path: string): boolean {
  return process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0;
}

/**
 * The user's own hotkey: `--key FILE` when given; else the wallet (.tessera/wallet.json);
 * else the unencrypted .tessera/hotkey an older `tessera contribute` made, with a warning that
 * says how to encrypt it. With none of these, an error telling how to make a wallet: a key is
 * never created here, so none is ever left unencrypted without the user knowing.
 */
export async function loadOwnKey(options: { key?: string; passwordFile?: string; wallet?: string } = {}): Promise<OwnKey> {
  const file = ownKeyFile(options);
  const { key, encrypted } = await unlockHotkeyFile(file, options);
  if (file === PLAINTEXT_HOTKEY_FILE && options.key === undefined) {
    return {
      key,
      file,
      warning: `warning: your key ${key.address} is stored unencrypted in ${file} (made by an earlier tessera contribute). Encrypt it: tessera wallet import --mnemonic-file ${file}, then delete ${file}`,
    };
  }
  const warning = !encrypted && readableByOthers(file) ? `warning: the key file ${file} is unencrypted and other users can read it: run chmod 600 ${file}, or encrypt it with tessera wallet import --mnemonic-file ${file}` : null;
  return { key, file, warning };
}

/** Which file holds the user's own key (see loadOwnKey); an error saying how to make one when none does. */
export function ownKeyFile(options: { key?: string; wallet?: string }): string {
  const wallet = options.wallet ?? DEFAULT_WALLET_FILE;
  if (options.key !== undefined) return options.key;
  if (exists(wallet)) return wallet;
  if (exists(PLAINTEXT_HOTKEY_FILE)) return PLAINTEXT_HOTKEY_FILE;
  throw new WalletError(
    `no wallet yet (no ${wallet}): your hotkey signs your work and earns its rewards; make one first:\n` +
      '  tessera wallet create     a new key, encrypted with a password (write its 12 words down)\n' +
      '  tessera wallet import     your existing words, or a btcli hotkey file (--btcli FILE)\n' +
      'then run this command again; or name a key file with --key FILE.',
  );
}
