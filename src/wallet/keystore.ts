// A wallet at rest: the secret (mnemonic + derivation path, or a bare 32-byte seed) encrypted
// with a password, as one versioned JSON document. Environment-free; the Node file
// (src/node/wallet-file.ts) and the IndexedDB store (keystore-idb.ts) hold the same document.
//
// Crypto comes from @polkadot/util-crypto and nothing here is hand-rolled:
//   key  = scrypt(password (NFKC, UTF-8), salt 32 B, N, r, p) → 64 bytes
//   box  = xsalsa20-poly1305 secretbox (naclEncrypt) under key[0..32], nonce 24 B
//   check = blake2b-128(key[32..64])  — lets a wrong password be told apart from a damaged
//          ciphertext; it tests a guess no faster than trying to open the box (both need scrypt).
// The plaintext is JSON: { "mnemonic": "...", "path": "//Alice" } or { "seed": "0x..." }.
// The scrypt parameters are read back from each file, never assumed, and bounded so a hostile
// file cannot make us allocate gigabytes.
//
// {
//   "format": "tessera-wallet", "version": 1,
//   "address": "5Grw…", "created": "2025-01-01T00:00:00.000Z",
//   "kdf": { "name": "scrypt", "N": 32768, "r": 8, "p": 1, "salt": "<base64>", "check": "<base64>" },
//   "cipher": { "name": "xsalsa20-poly1305", "nonce": "<base64>" },
//   "ciphertext": "<base64>"
// }
//
// Secrets never reach an error message: errors name the file and the problem, never its words.
import {
  base64Decode, base64Encode, blake2AsU8a, decodeAddress, isBase64, naclDecrypt, naclEncrypt,
  randomAsU8a, scryptEncode,
} from '@polkadot/util-crypto';
import { toPrefixedHex } from '../base/hex.ts';
import { bytesEqual, fromUtf8, utf8 } from './bytes.ts';
import { Hotkey, SEED_BYTES, WalletError, normalizeMnemonic } from './keys.ts';
import { newPasswordProblem } from './password-rule.ts';

export { MIN_PASSWORD_CHARS, newPasswordProblem } from './password-rule.ts';

export const WALLET_FORMAT = 'tessera-wallet';
export const WALLET_VERSION = 1;
export const KDF_NAME = 'scrypt';
export const CIPHER_NAME = 'xsalsa20-poly1305';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Production strength: 32 MiB and ~0.2 s per unlock (polkadot allows this set, too). */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 1 << 15, r: 8, p: 1 });
/** What a file may ask for: N in [2^10, 2^20], r and p in [1, 16], at most 1 GiB of memory. */
export const SCRYPT_LIMITS = Object.freeze({ minLogN: 10, maxLogN: 20, maxR: 16, maxP: 16, maxBytes: 1 << 30 });

const SALT_BYTES = 32;
const NONCE_BYTES = 24;
const CHECK_BYTES = 16; // blake2b-128
const MAX_CIPHERTEXT = 4096;

export interface WalletFile {
  format: typeof WALLET_FORMAT;
  version: typeof WALLET_VERSION;
  /** ss58 (prefix 42), in the clear so `show` needs no password; checked on every unlock. */
  address: string;
  /** ISO 8601 time of creation or import. */
  created: string;
  kdf: { name: typeof KDF_NAME; N: number; r: number; p: number; salt: string; check: string };
  cipher: { name: typeof CIPHER_NAME; nonce: string };
  ciphertext: string;
}

const REDACTED = '[WalletSecret: redacted]';

/**
 * What a wallet holds: a BIP-39 mnemonic with an optional derivation path, or (a btcli file
 * with only `secretSeed`) a 32-byte mini-secret. Validated on construction. It keeps the
 * secret in private fields, and prints, stringifies and logs as '[redacted]': only
 * `revealMnemonic()` / `revealSeed()` give it out, for a backup screen.
 */
export class WalletSecret {
  readonly kind: 'mnemonic' | 'seed';
  readonly #words: string;
  readonly #path: string;
  readonly #seed: string;
  readonly #key: Hotkey;

  private constructor(kind: 'mnemonic' | 'seed', words: string, path: string, seed: string, key: Hotkey) {
    this.kind = kind;
    this.#words = words;
    this.#path = path;
    this.#seed = seed;
    this.#key = key;
  }

  /** Throws WalletError (no words in it) when the mnemonic or path is invalid. */
  static fromMnemonic(mnemonic: string, derivationPath = ''): WalletSecret {
    const key = Hotkey.fromMnemonic(mnemonic, derivationPath);
    return new WalletSecret('mnemonic', normalizeMnemonic(mnemonic), derivationPath, '', key);
  }

  /** A 32-byte mini-secret as 0x-hex or bytes (substrate's / btcli's secretSeed). */
  static fromSeed(seed: string | Uint8Array): WalletSecret {
    const key = Hotkey.fromSeed(seed);
    const hex = typeof seed === 'string' ? seed.toLowerCase() : toPrefixedHex(seed);
    return new WalletSecret('seed', '', '', hex, key);
  }

  /** A fresh 12-word mnemonic (no derivation path). */
  static generate(): WalletSecret {
    const { mnemonic } = Hotkey.generate();
    return WalletSecret.fromMnemonic(mnemonic);
  }

  get key(): Hotkey {
    return this.#key;
  }

  get address(): string {
    return this.#key.address;
  }

  /** The derivation path ('' if none). May hold a '///password' part: treat it as secret. */
  get derivationPath(): string {
    return this.#path;
  }

  /** The words, for a backup screen; null for a seed-only wallet. */
  revealMnemonic(): string | null {
    return this.kind === 'mnemonic' ? this.#words : null;
  }

  /** The 0x-hex seed of a seed-only wallet; null for a mnemonic wallet. */
  revealSeed(): string | null {
    return this.kind === 'seed' ? this.#seed : null;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): { kind: string; address: string; secret: string } {
    return { kind: this.kind, address: this.address, secret: '[redacted]' };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `WalletSecret { kind: '${this.kind}', address: '${this.address}', secret: [redacted] }`;
  }

  /** The plaintext that gets encrypted. */
  payload(): Uint8Array {
    const body = this.kind === 'mnemonic' ? { mnemonic: this.#words, path: this.#path } : { seed: this.#seed };
    return utf8(JSON.stringify(body));
  }
}

function checkPassword(password: unknown): asserts password is string {
  if (typeof password !== 'string') throw new WalletError('the wallet password must be a string');
  if (password.length === 0) throw new WalletError('the wallet password is empty: choose a password (it encrypts the wallet on disk)');
}

function validScrypt(p: Partial<ScryptParams>): ScryptParams | null {
  const { N, r, p: par } = p;
  if (!Number.isSafeInteger(N) || !Number.isSafeInteger(r) || !Number.isSafeInteger(par)) return null;
  const logN = Math.log2(N!);
  if (!Number.isInteger(logN) || logN < SCRYPT_LIMITS.minLogN || logN > SCRYPT_LIMITS.maxLogN) return null;
  if (r! < 1 || r! > SCRYPT_LIMITS.maxR || par! < 1 || par! > SCRYPT_LIMITS.maxP) return null;
  if (128 * N! * r! > SCRYPT_LIMITS.maxBytes) return null;
  return { N: N!, r: r!, p: par! };
}

/** scrypt → 64 bytes; the library uses its WASM build after cryptoReady(), JS before (same bytes). */
function deriveKey(password: string, salt: Uint8Array, params: ScryptParams): { boxKey: Uint8Array; check: Uint8Array } {
  const dk = scryptEncode(utf8(password.normalize('NFKC')), salt, params).password;
  if (dk.length !== 64) throw new WalletError(`scrypt returned ${dk.length} bytes, expected 64`);
  return { boxKey: dk.slice(0, 32), check: blake2AsU8a(dk.subarray(32), 128) };
}

export interface EncryptOptions {
  /**
   * scrypt parameters; default DEFAULT_SCRYPT. Lower N only for tests (a weaker file is
   * cheaper to attack); whatever is used is written into the file and read back from it.
   */
  kdf?: Partial<ScryptParams>;
  /** Creation time recorded in the file (default now). */
  created?: Date;
}

/**
 * Encrypts a wallet secret with a password into a WalletFile (a plain JSON-able object). The
 * password must pass the one rule for new passwords (newPasswordProblem: at least
 * MIN_PASSWORD_CHARS characters), whoever calls.
 */
export function encryptWallet(secret: WalletSecret, password: string, options: EncryptOptions = {}): WalletFile {
  if (!(secret instanceof WalletSecret)) throw new WalletError('encryptWallet needs a WalletSecret');
  checkPassword(password);
  const problem = newPasswordProblem(password);
  if (problem) throw new WalletError(problem);
  const params = validScrypt({ ...DEFAULT_SCRYPT, ...options.kdf });
  if (!params) throw new WalletError(`scrypt parameters out of range: N a power of two in [2^${SCRYPT_LIMITS.minLogN}, 2^${SCRYPT_LIMITS.maxLogN}], r and p in [1, 16]`);
  const salt = randomAsU8a(SALT_BYTES);
  const { boxKey, check } = deriveKey(password, salt, params);
  const plain = secret.payload();
  const { encrypted, nonce } = naclEncrypt(plain, boxKey, randomAsU8a(NONCE_BYTES));
  plain.fill(0);
  boxKey.fill(0);
  return {
    format: WALLET_FORMAT,
    version: WALLET_VERSION,
    address: secret.address,
    created: (options.created ?? new Date()).toISOString(),
    kdf: { name: KDF_NAME, ...params, salt: base64Encode(salt), check: base64Encode(check) },
    cipher: { name: CIPHER_NAME, nonce: base64Encode(nonce) },
    ciphertext: base64Encode(encrypted),
  };
}

/** Whether a parsed JSON value claims to be a Tessera wallet (any version): see parseWalletFile. */
export function isWalletJson(json: unknown): boolean {
  return typeof json === 'object' && json !== null && (json as { format?: unknown }).format === WALLET_FORMAT;
}

/** The JSON text of a wallet, as files and IndexedDB hold it. */
export function serializeWalletFile(file: WalletFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

function damaged(source: string, what: string): WalletError {
  return new WalletError(`${source} is damaged (${what}): restore it from a backup, or import your mnemonic again with \`tessera wallet import\``);
}

function bytesField(v: unknown, length: number | null, source: string, name: string): Uint8Array {
  if (typeof v !== 'string' || v.length === 0 || v.length > 2 * MAX_CIPHERTEXT || !isBase64(v)) throw damaged(source, `${name} is not base64`);
  let out: Uint8Array;
  try {
    out = base64Decode(v);
  } catch {
    throw damaged(source, `${name} is not base64`);
  }
  if (length !== null && out.length !== length) throw damaged(source, `${name} has ${out.length} bytes, expected ${length}`);
  return out;
}

/**
 * Checks a wallet document's shape and version without the password. Accepts its JSON text
 * or the parsed value; throws WalletError saying what is wrong and what to do.
 */
export function parseWalletFile(input: string | unknown, source = 'the wallet'): WalletFile {
  let json: unknown = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch {
      // Never the parser's message: it quotes the text, which may be a secret.
      throw damaged(source, 'it is not valid JSON');
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw damaged(source, 'it is not a JSON object');
  const w = json as Record<string, unknown>;
  if (w.format !== WALLET_FORMAT) {
    throw new WalletError(`${source} is not a Tessera wallet (no "format": "${WALLET_FORMAT}"): for a btcli hotkey file use \`tessera wallet import --btcli\``);
  }
  if (w.version !== WALLET_VERSION) {
    const v = w.version;
    if (typeof v === 'number' && Number.isInteger(v) && v > WALLET_VERSION) {
      throw new WalletError(`${source} has wallet format version ${v}, written by a newer Tessera; this one reads version ${WALLET_VERSION}: update Tessera`);
    }
    throw new WalletError(`${source} has an unknown wallet format version (${typeof v === 'number' || typeof v === 'string' ? JSON.stringify(v).slice(0, 20) : typeof v}); this Tessera reads version ${WALLET_VERSION}`);
  }
  if (typeof w.address !== 'string' || w.address.length > 64) throw damaged(source, 'no address');
  try {
    if (decodeAddress(w.address).length !== 32) throw new Error('length');
  } catch {
    throw damaged(source, 'its address is not an ss58 address');
  }
  if (typeof w.created !== 'string' || w.created.length > 64) throw damaged(source, 'no creation time');
  const kdf = w.kdf as Record<string, unknown> | null;
  if (typeof kdf !== 'object' || kdf === null) throw damaged(source, 'no "kdf"');
  if (kdf.name !== KDF_NAME) throw new WalletError(`${source} uses key derivation '${String(kdf.name).slice(0, 20)}'; this Tessera knows '${KDF_NAME}'`);
  const params = validScrypt(kdf as Partial<ScryptParams>);
  if (!params) throw damaged(source, 'its scrypt parameters are out of range');
  const cipher = w.cipher as Record<string, unknown> | null;
  if (typeof cipher !== 'object' || cipher === null) throw damaged(source, 'no "cipher"');
  if (cipher.name !== CIPHER_NAME) throw new WalletError(`${source} uses cipher '${String(cipher.name).slice(0, 20)}'; this Tessera knows '${CIPHER_NAME}'`);
  bytesField(kdf.salt, SALT_BYTES, source, 'the salt');
  bytesField(kdf.check, CHECK_BYTES, source, 'the password check');
  bytesField(cipher.nonce, NONCE_BYTES, source, 'the nonce');
  const ct = bytesField(w.ciphertext, null, source, 'the ciphertext');
  if (ct.length < 17 || ct.length > MAX_CIPHERTEXT) throw damaged(source, `the ciphertext has ${ct.length} bytes`);
  return {
    format: WALLET_FORMAT,
    version: WALLET_VERSION,
    address: w.address,
    created: w.created,
    kdf: { name: KDF_NAME, ...params, salt: kdf.salt as string, check: kdf.check as string },
    cipher: { name: CIPHER_NAME, nonce: cipher.nonce as string },
    ciphertext: w.ciphertext as string,
  };
}

export interface UnlockedWallet {
  secret: WalletSecret;
  key: Hotkey;
  address: string;
  created: string;
}

/**
 * Opens a wallet with its password (scrypt parameters from the file). WalletError for a wrong
 * password, a damaged or altered file, or an unknown version — each saying so.
 */
export function decryptWallet(input: WalletFile | string, password: string, source = 'the wallet'): UnlockedWallet {
  const file = parseWalletFile(input, source);
  checkPassword(password);
  const salt = base64Decode(file.kdf.salt);
  const { boxKey, check } = deriveKey(password, salt, { N: file.kdf.N, r: file.kdf.r, p: file.kdf.p });
  if (!bytesEqual(check, base64Decode(file.kdf.check))) {
    boxKey.fill(0);
    throw new WalletError(`wrong password for ${source}: try again. (The password cannot be recovered; if it is lost, import your mnemonic again with a new one.)`);
  }
  const plain = naclDecrypt(base64Decode(file.ciphertext), base64Decode(file.cipher.nonce), boxKey);
  boxKey.fill(0);
  if (!plain) throw damaged(source, 'the password is right but the ciphertext does not authenticate');
  let body: { mnemonic?: unknown; path?: unknown; seed?: unknown };
  try {
    body = JSON.parse(fromUtf8(plain)) as typeof body;
  } catch {
    throw damaged(source, 'the decrypted secret is not JSON');
  } finally {
    plain.fill(0);
  }
  let secret: WalletSecret;
  try {
    if (typeof body?.mnemonic === 'string') secret = WalletSecret.fromMnemonic(body.mnemonic, typeof body.path === 'string' ? body.path : '');
    else if (typeof body?.seed === 'string' && body.seed.length === 2 + 2 * SEED_BYTES) secret = WalletSecret.fromSeed(body.seed);
    else throw new Error('neither');
  } catch {
    throw damaged(source, 'the decrypted secret is not a valid mnemonic or seed');
  }
  if (secret.address !== file.address) throw damaged(source, `its address ${file.address} is not that of the key it holds (${secret.address}): was the file edited?`);
  return { secret, key: secret.key, address: secret.address, created: file.created };
}
