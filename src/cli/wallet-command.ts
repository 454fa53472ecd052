// `tessera wallet create|import|show`: the contributor's Bittensor-compatible hotkey, kept
// encrypted with a password in .tessera/wallet.json (src/wallet/keystore.ts, src/node/wallet-file.ts).
// The password comes from --password-file, $TESSERA_WALLET_PASSWORD or a prompt that does
// not echo; never from a flag (shell history, process list). Words are printed only by
// `create` (once) and `show --reveal`, on stdout; nothing secret goes to stderr or an error.
import { readFileSync } from 'node:fs';
import { parseBtcliKeyfile } from '../wallet/btcli.ts';
import { WalletError, cryptoReady } from '../wallet/keys.ts';
import { MIN_PASSWORD_CHARS, WalletSecret, encryptWallet, newPasswordProblem, type UnlockedWallet } from '../wallet/keystore.ts';
import { parseCommandArgs } from './args.ts';
import {
  DEFAULT_WALLET_FILE, PASSWORD_ENV, PASSWORD_TRIES, noPasswordError, passwordFromFileOrEnv, promptHidden, readWalletFile, unlockWallet,
  walletFileExists, writeWalletFile,
} from '../node/wallet-file.ts';

export const WALLET_USAGE = `usage:
  tessera wallet create [--wallet FILE] [--force] [--json]
  tessera wallet import [--mnemonic-file FILE] [--path //Alice] [--wallet FILE] [--force] [--json]
  tessera wallet import --btcli HOTKEY_FILE [--wallet FILE] [--force] [--json]
  tessera wallet show [--wallet FILE] [--reveal] [--json]

  create   a new 12-word recovery phrase (BIP-39) and its sr25519 hotkey, derived as substrate
           and Bittensor derive it; prints the words once: write them down.
  import   your words from --mnemonic-file FILE or from stdin (typed, not echoed, at a terminal),
           with an optional substrate derivation path (--path //hard/soft); or a btcli hotkey
           file (~/.bittensor/wallets/<wallet>/hotkeys/<hotkey>), checked against its ss58Address.
  show     the ss58 address (prefix 42); --reveal asks for the password and prints the words.

  --wallet FILE  the encrypted wallet, default ${DEFAULT_WALLET_FILE} (mode 0600)
  --force        replace an existing wallet file (back up its words first)
  password       --password-file FILE (its first line), or the ${PASSWORD_ENV} environment
                 variable, or typed at the prompt (not echoed). A new password has at least
                 ${MIN_PASSWORD_CHARS} characters. There is no --password flag: a password on the
                 command line lands in your shell history and the process list.
  tessera contribute uses ${DEFAULT_WALLET_FILE} by itself (password as above); --key names another.`;

export class WalletUsageError extends Error {
  override name = 'WalletUsageError';
}

const MAX_INPUT_CHARS = 64 * 1024;

interface Options {
  wallet: string;
  passwordFile?: string;
  force: boolean;
  json: boolean;
}

const COMMON_OPTIONS = {
  wallet: { type: 'string' },
  'password-file': { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(args: string[], extra: T) {
  // Positionals are allowed here and refused by common() without quoting them (they may be words).
  return parseCommandArgs({ args, allowPositionals: true, options: { ...COMMON_OPTIONS, ...extra } }, (m) => new WalletUsageError(m));
}

export async function walletCommand(args: string[]): Promise<number> {
  // Checked before anything else, and without repeating what followed the flag.
  if (args.some((a) => a === '--password' || a.startsWith('--password='))) {
    throw new WalletUsageError(`there is no --password flag: a password on the command line lands in your shell history and the process list. Use --password-file FILE, the ${PASSWORD_ENV} environment variable, or type it at the prompt`);
  }
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    console.log(WALLET_USAGE);
    return 0;
  }
  switch (sub) {
    case 'create':
      return create(rest);
    case 'import':
      return importCommand(rest);
    case 'show':
      return show(rest);
    default:
      throw new WalletUsageError(`unknown wallet command '${sub.slice(0, 40)}': expected create, import or show`);
  }
}

function common(values: Record<string, unknown>, positionals: string[]): Options | null {
  if (values.help) {
    console.log(WALLET_USAGE);
    return null;
  }
  if (positionals.length > 0) {
    // Not echoed: people paste their words here.
    throw new WalletUsageError(`unexpected argument(s) (${positionals.length}, not shown in case they are secret): the mnemonic goes in a file (--mnemonic-file FILE) or on stdin, never on the command line`);
  }
  return {
    wallet: (values.wallet as string | undefined) ?? DEFAULT_WALLET_FILE,
    passwordFile: values['password-file'] as string | undefined,
    force: values.force === true,
    json: values.json === true,
  };
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {});
  const o = common(values, positionals);
  if (!o) return 0;
  refuseExisting(o);
  await cryptoReady();
  const password = await newPassword(o, true);
  const secret = WalletSecret.generate();
  writeWalletFile(o.wallet, encryptWallet(secret, password), { overwrite: o.force });
  // Printed only after the file is safely written: never words for a wallet that was not saved.
  const mnemonic = secret.revealMnemonic()!;
  if (o.json) {
    console.log(JSON.stringify({ event: 'wallet-created', wallet: o.wallet, address: secret.address, mnemonic }));
    return 0;
  }
  console.log(`created a new wallet in ${o.wallet} (encrypted with your password, mode 0600)`);
  console.log(`address: ${secret.address}`);
  console.log('');
  console.log('WRITE THESE WORDS DOWN, in order, on paper, and keep them somewhere safe and offline.');
  console.log('They are the only way to restore this key if the file or its password is lost, and anyone');
  console.log('who sees them controls the key. Tessera does not print them again unless you ask');
  console.log('(tessera wallet show --reveal).');
  console.log('');
  console.log(`    ${mnemonic}`);
  console.log('');
  return 0;
}

async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { 'mnemonic-file': { type: 'string' }, path: { type: 'string' }, btcli: { type: 'string' } } as const);
  const o = common(values, positionals);
  if (!o) return 0;
  const btcli = values.btcli as string | undefined;
  const mnemonicFile = values['mnemonic-file'] as string | undefined;
  const path = values.path as string | undefined;
  if (btcli !== undefined && (mnemonicFile !== undefined || path !== undefined)) {
    throw new WalletUsageError('--btcli takes the key from the btcli file: leave out --mnemonic-file and --path');
  }
  refuseExisting(o);
  await cryptoReady();
  let secret: WalletSecret;
  let stdinUsed = false;
  if (btcli !== undefined) {
    secret = parseBtcliKeyfile(readInput(btcli, 'btcli keyfile'), btcli).secret;
  } else {
    let text: string;
    let source: string;
    if (mnemonicFile !== undefined) {
      text = readInput(mnemonicFile, 'mnemonic file');
      source = mnemonicFile;
    } else if (process.stdin.isTTY) {
      text = await promptHidden('Enter the words of your recovery phrase, separated by spaces (not shown): ');
      source = 'the words typed';
    } else {
      text = await readStdin();
      stdinUsed = true;
      source = 'stdin';
    }
    secret = mnemonicSecret(text, path, source);
  }
  // The words are checked before the password is asked for: a typo costs no password prompt.
  const password = await newPassword(o, !stdinUsed);
  writeWalletFile(o.wallet, encryptWallet(secret, password), { overwrite: o.force });
  if (o.json) {
    console.log(JSON.stringify({ event: 'wallet-imported', wallet: o.wallet, address: secret.address, kind: secret.kind }));
    return 0;
  }
  console.log(`imported ${secret.kind === 'mnemonic' ? 'a mnemonic' : 'a secret seed (no mnemonic in that file)'}${secret.derivationPath ? ' with a derivation path' : ''} into ${o.wallet} (encrypted, mode 0600)`);
  console.log(`address: ${secret.address}`);
  return 0;
}

async function show(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { reveal: { type: 'boolean' } } as const);
  const o = common(values, positionals);
  if (!o) return 0;
  const { wallet, mode } = readWalletFile(o.wallet);
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    console.error(`warning: ${o.wallet} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${o.wallet}`);
  }
  let unlocked: UnlockedWallet | null = null;
  if (values.reveal) {
    await cryptoReady();
    unlocked = await unlockWallet(wallet, o.wallet, o.passwordFile);
  }
  const secret = unlocked?.secret;
  if (o.json) {
    console.log(JSON.stringify({
      wallet: o.wallet,
      address: wallet.address,
      created: wallet.created,
      version: wallet.version,
      kdf: { name: wallet.kdf.name, N: wallet.kdf.N, r: wallet.kdf.r, p: wallet.kdf.p },
      ...(secret ? { kind: secret.kind, mnemonic: secret.revealMnemonic() ?? undefined, path: secret.derivationPath || undefined, seed: secret.revealSeed() ?? undefined } : {}),
    }));
    return 0;
  }
  console.log(`address: ${wallet.address}`);
  console.log(`wallet:  ${o.wallet} (created ${wallet.created}; ${wallet.kdf.name} N=${wallet.kdf.N} r=${wallet.kdf.r} p=${wallet.kdf.p}, ${wallet.cipher.name})`);
  if (secret) {
    console.log('');
    if (secret.kind === 'mnemonic') {
      console.log('recovery phrase (secret: anyone who sees it controls the key):');
      console.log(`    ${secret.revealMnemonic()!}`);
      if (secret.derivationPath) console.log(`derivation path: ${secret.derivationPath}`);
    } else {
      console.log('secret seed (this wallet was imported from a btcli file without a mnemonic; anyone who sees it controls the key):');
      console.log(`    ${secret.revealSeed()!}`);
    }
  }
  return 0;
}

function refuseExisting(o: Options): void {
  if (!o.force && walletFileExists(o.wallet)) {
    let address = '';
    try {
      address = ` (${readWalletFile(o.wallet).wallet.address})`;
    } catch {
      // an unreadable file is still a file we will not replace
    }
    throw new WalletError(`a wallet already exists at ${o.wallet}${address}: pass --force to replace it (back up its words first: tessera wallet show --reveal), or choose another file with --wallet`);
  }
}

function readInput(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WalletError(`cannot read the ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text.length > MAX_INPUT_CHARS) throw new WalletError(`the ${what} ${path} is too large to be one`);
  return text;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.length > MAX_INPUT_CHARS) throw new WalletError('stdin is too large to be a mnemonic');
  }
  return text;
}

/** 'words…' or 'words… //Alice' (words have no '/', so a path starts at the first one). */
function mnemonicSecret(text: string, pathOption: string | undefined, source: string): WalletSecret {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) throw new WalletError(`${source} looks like a JSON keyfile, not a mnemonic: for a btcli hotkey file use --btcli FILE`);
  const slash = trimmed.indexOf('/');
  let words = trimmed;
  let path = pathOption ?? '';
  if (slash >= 0) {
    if (pathOption !== undefined) throw new WalletUsageError(`${source} already holds a derivation path after the words: leave out --path, or remove it there`);
    words = trimmed.slice(0, slash);
    path = trimmed.slice(slash).trim();
  }
  try {
    return WalletSecret.fromMnemonic(words, path);
  } catch (e) {
    if (e instanceof WalletError) throw new WalletError(`${source}: ${e.message}`);
    throw e;
  }
}

/** A password for a new wallet file, held to the one rule (newPasswordProblem); confirmed when typed. */
async function newPassword(o: Options, mayPrompt: boolean): Promise<string> {
  const given = passwordFromFileOrEnv(o.passwordFile);
  if (given !== null) {
    const problem = newPasswordProblem(given);
    if (problem) throw new WalletError(`${problem} (from ${o.passwordFile !== undefined ? `the password file ${o.passwordFile}` : `$${PASSWORD_ENV}`}); nothing was saved`);
    return given;
  }
  if (!mayPrompt || !process.stdin.isTTY) throw noPasswordError(o.wallet, !mayPrompt);
  console.error(`Choose a password to encrypt the wallet file (at least ${MIN_PASSWORD_CHARS} characters). It cannot be recovered, but your words restore the key without it.`);
  let retry = '';
  for (let attempt = 1; ; attempt++) {
    // A retry notice goes in the prompt, written once echo is off (see unlockWallet).
    const first = await promptHidden(`${retry}password: `);
    const problem = newPasswordProblem(first);
    if (problem) {
      if (attempt >= PASSWORD_TRIES) throw new WalletError(`${problem}; nothing was saved`);
      retry = `${problem}; try again\n`;
      continue;
    }
    const again = await promptHidden('password again: ');
    if (again !== first) throw new WalletError('the two passwords differ: nothing was saved; run the command again');
    return first;
  }
}
