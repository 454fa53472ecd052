// The encrypted wallet document: round trips, scrypt parameters read back from the file, and
// a clear WalletError (never quoting a secret) for each way a file or its password can be wrong.
import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { base64Decode, base64Encode, mnemonicToMiniSecret, scryptEncode } from '@polkadot/util-crypto';
import { Hotkey, WalletError, cryptoReady, verifySignature } from '../../src/wallet/keys.ts';
import {
  DEFAULT_SCRYPT, MIN_PASSWORD_CHARS, WalletSecret, decryptWallet, encryptWallet, isWalletJson, newPasswordProblem, parseWalletFile,
  serializeWalletFile,
  type WalletFile,
} from '../../src/wallet/keystore.ts';
import { toPrefixedHex } from '../../src/base/hex.ts';

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
/** `subkey inspect //Alice`: the secret seed of the dev mnemonic's //Alice. */
const ALICE_SEED = '0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a';
/** The dev mnemonic without a path. */
const DEV_ROOT = '5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV';
const FAST = { kdf: { N: 1 << 10 } }; // tests only: the default is 2^15
const PW = 'correct horse battery staple';

beforeAll(() => cryptoReady());

/** The error a function throws, checked to be a WalletError that quotes no secret. */
function walletError(fn: () => unknown): WalletError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(WalletError);
  const msg = (caught as Error).message;
  for (const secret of [DEV, 'bottom drive', 'lonely fit', PW, ALICE_SEED.slice(2, 20)]) expect(msg).not.toContain(secret);
  return caught as WalletError;
}

/** The file's JSON, loosely typed so a test can damage any part of it. */
interface Loose { kdf?: Record<string, unknown>; cipher?: Record<string, unknown>; [field: string]: unknown }

function edit(file: WalletFile, change: (j: Loose) => void): string {
  const j = JSON.parse(serializeWalletFile(file));
  change(j);
  return JSON.stringify(j);
}

describe('keys', () => {
  it('the known vector: the dev mnemonic with //Alice', () => {
    expect(WalletSecret.fromMnemonic(DEV, '//Alice').address).toBe(ALICE);
    expect(Hotkey.fromMnemonic(DEV, '//Alice').address).toBe(ALICE);
  });

  it('a 32-byte secret seed gives the same key as its mnemonic (substrate mini-secret expansion)', () => {
    expect(Hotkey.fromSeed(ALICE_SEED).address).toBe(ALICE);
    expect(Hotkey.fromSeed(ALICE_SEED.toUpperCase().replace('0X', '0x')).address).toBe(ALICE);
    const mini = mnemonicToMiniSecret(DEV);
    expect(Hotkey.fromSeed(mini).address).toBe(DEV_ROOT);
    expect(Hotkey.fromSeed(toPrefixedHex(mini)).address).toBe(Hotkey.fromMnemonic(DEV).address);
    for (const bad of ['', '0x', ALICE_SEED.slice(0, -2), `${ALICE_SEED}00`, ALICE_SEED.replace('e5', 'zz'), new Uint8Array(31)]) {
      walletError(() => Hotkey.fromSeed(bad));
    }
  });

  it('an invalid derivation path never echoes a ///password part', () => {
    const e = walletError(() => Hotkey.fromMnemonic(DEV, 'Alice///hunter2'));
    expect(e.message).not.toContain('hunter2');
  });
});

describe('WalletSecret', () => {
  it('an invalid mnemonic is a clear error that does not repeat the words', () => {
    expect(walletError(() => WalletSecret.fromMnemonic(DEV.replace('walk', 'walks'))).message).toMatch(/word list|checksum/);
    expect(walletError(() => WalletSecret.fromMnemonic('bottom drive obey')).message).toMatch(/12, 15, 18, 21 or 24 words/);
    walletError(() => WalletSecret.fromMnemonic(DEV, 'no-slash'));
  });

  it('prints, stringifies and inspects as redacted', () => {
    const s = WalletSecret.fromMnemonic(DEV, '//Alice');
    for (const shown of [String(s), `${s}`, JSON.stringify(s), inspect(s), inspect({ s }, { depth: 5 })]) {
      expect(shown).not.toContain('bottom');
      expect(shown).not.toContain('//Alice');
    }
    expect(JSON.stringify(s)).toContain(ALICE);
    expect(s.revealMnemonic()).toBe(DEV);
    expect(s.derivationPath).toBe('//Alice');
    expect(s.revealSeed()).toBeNull();
    const seed = WalletSecret.fromSeed(ALICE_SEED);
    expect(inspect(seed)).not.toContain(ALICE_SEED.slice(2));
    expect(seed.revealSeed()).toBe(ALICE_SEED);
    expect(seed.revealMnemonic()).toBeNull();
  });

  it('generates 12 words that restore to the same address', () => {
    const s = WalletSecret.generate();
    expect(s.revealMnemonic()!.split(' ')).toHaveLength(12);
    expect(WalletSecret.fromMnemonic(s.revealMnemonic()!).address).toBe(s.address);
  });
});

describe('encryptWallet / decryptWallet', () => {
  it('round trip: mnemonic + path, through the JSON text, then sign and verify', () => {
    const created = new Date('2025-03-01T12:00:00Z');
    const file = encryptWallet(WalletSecret.fromMnemonic(`  ${DEV}\n`, '//Alice'), PW, { ...FAST, created });
    expect(isWalletJson(file)).toBe(true);
    expect(file).toMatchObject({ format: 'tessera-wallet', version: 1, address: ALICE, created: created.toISOString() });
    expect(file.kdf).toMatchObject({ name: 'scrypt', N: 1024, r: 8, p: 1 });
    expect(base64Decode(file.kdf.salt)).toHaveLength(32);
    expect(base64Decode(file.cipher.nonce)).toHaveLength(24);
    expect(file.cipher.name).toBe('xsalsa20-poly1305');
    const text = serializeWalletFile(file);
    expect(text).not.toMatch(/bottom|drive|Alice|correct horse/);
    const w = decryptWallet(text, PW, 'test.json');
    expect(w.address).toBe(ALICE);
    expect(w.created).toBe(created.toISOString());
    expect(w.secret.revealMnemonic()).toBe(DEV);
    expect(w.secret.derivationPath).toBe('//Alice');
    const msg = new TextEncoder().encode('hello');
    expect(verifySignature(msg, w.key.sign(msg), ALICE)).toBe(true);
  });

  it('round trip: a seed-only secret', () => {
    const w = decryptWallet(encryptWallet(WalletSecret.fromSeed(ALICE_SEED), PW, FAST), PW);
    expect(w.address).toBe(ALICE);
    expect(w.secret.kind).toBe('seed');
    expect(w.secret.revealSeed()).toBe(ALICE_SEED);
  });

  it('fresh salt and nonce each time', () => {
    const s = WalletSecret.fromMnemonic(DEV);
    const a = encryptWallet(s, PW, FAST);
    const b = encryptWallet(s, PW, FAST);
    expect(a.kdf.salt).not.toBe(b.kdf.salt);
    expect(a.cipher.nonce).not.toBe(b.cipher.nonce);
    expect(a.ciphertext).not.toBe(b.ciphertext);
  });

  it('production-strength scrypt by default (N = 2^15, r = 8, p = 1)', () => {
    expect(DEFAULT_SCRYPT).toEqual({ N: 32768, r: 8, p: 1 });
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW);
    expect(file.kdf).toMatchObject({ N: 32768, r: 8, p: 1 });
    expect(decryptWallet(file, PW).address).toBe(DEV_ROOT);
  });

  it('reads the scrypt parameters back from the file, not from defaults', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW, { kdf: { N: 1 << 11, r: 4, p: 2 } });
    expect(file.kdf).toMatchObject({ N: 2048, r: 4, p: 2 });
    const text = serializeWalletFile(file);
    expect(decryptWallet(text, PW).address).toBe(DEV_ROOT); // no options: everything from the file
    // Other parameters derive another key: the password no longer matches.
    for (const kdf of [{ N: 1024 }, { r: 8 }, { p: 1 }]) {
      const changed = edit(file, (j) => Object.assign(j.kdf!, kdf));
      expect(walletError(() => decryptWallet(changed, PW)).message).toMatch(/wrong password/);
    }
  });

  it('the key derivation is the same in WASM and in plain JS (a file opens in every host)', () => {
    const salt = new Uint8Array(32).fill(3);
    const params = { N: 1 << 10, r: 8, p: 1 };
    const wasm = scryptEncode('pw', salt, params, false).password;
    const js = scryptEncode('pw', salt, params, true).password;
    expect(toPrefixedHex(wasm)).toBe(toPrefixedHex(js));
  });

  it('the password is NFKC-normalised (the same characters typed on any system)', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), 'caf\u00e9 au lait', FAST);
    expect(decryptWallet(file, 'cafe\u0301 au lait').address).toBe(DEV_ROOT);
  });

  it('a new password has at least MIN_PASSWORD_CHARS (8) characters, counted as typed (NFKC code points)', () => {
    expect(MIN_PASSWORD_CHARS).toBe(8);
    expect(walletError(() => encryptWallet(WalletSecret.fromMnemonic(DEV), 'x', FAST)).message).toMatch(/too short \(1 character\): use at least 8/);
    expect(walletError(() => encryptWallet(WalletSecret.fromMnemonic(DEV), '1234567', FAST)).message).toMatch(/too short \(7 characters\)/);
    expect(encryptWallet(WalletSecret.fromMnemonic(DEV), '12345678', FAST).address).toBe(DEV_ROOT);
    // é as e + combining accent is one character, as the key derivation sees it
    expect(newPasswordProblem('cafe\u0301 au')).toMatch(/7 characters/);
    expect(newPasswordProblem('\u{1F511}'.repeat(8))).toBeNull();
  });

  it('wrong password → says so', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW, FAST);
    const e = walletError(() => decryptWallet(file, 'correct horse battery stapler', 'w.json'));
    expect(e.message).toMatch(/wrong password for w\.json/);
    expect(walletError(() => decryptWallet(file, '')).message).toMatch(/password is empty/);
    expect(walletError(() => encryptWallet(WalletSecret.fromMnemonic(DEV), '', FAST)).message).toMatch(/password is empty/);
  });

  it('corrupted ciphertext → damaged (the password being right)', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW, FAST);
    const ct = base64Decode(file.ciphertext);
    for (const at of [0, ct.length >> 1, ct.length - 1]) {
      const bad = ct.slice();
      bad[at] ^= 0x01;
      const changed = edit(file, (j) => { j.ciphertext = base64Encode(bad); });
      expect(walletError(() => decryptWallet(changed, PW, 'w.json')).message).toMatch(/w\.json is damaged.*does not authenticate.*import/);
    }
    const nonce = base64Decode(file.cipher.nonce);
    nonce[0] ^= 1;
    const changed = edit(file, (j) => { j.cipher!.nonce = base64Encode(nonce); });
    expect(walletError(() => decryptWallet(changed, PW)).message).toMatch(/damaged/);
  });

  it('corrupted JSON → damaged, without quoting the text', () => {
    const text = serializeWalletFile(encryptWallet(WalletSecret.fromMnemonic(DEV), PW, FAST));
    for (const bad of [text.slice(0, text.length >> 1), '', 'bottom drive obey lake', '[]', 'null', '42']) {
      const e = walletError(() => decryptWallet(bad, PW, 'w.json'));
      expect(e.message).toMatch(/w\.json is damaged/);
      expect(e.message).not.toContain('obey');
    }
  });

  it('missing or malformed fields → damaged, before any key derivation', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW, FAST);
    const changes: ((j: Loose) => void)[] = [
      (j) => { delete j.kdf; },
      (j) => { delete j.cipher; },
      (j) => { delete j.ciphertext; },
      (j) => { j.ciphertext = '!!!not base64!!!'; },
      (j) => { j.ciphertext = base64Encode(new Uint8Array(8)); },
      (j) => { j.kdf!.salt = base64Encode(new Uint8Array(8)); },
      (j) => { j.cipher!.nonce = base64Encode(new Uint8Array(12)); },
      (j) => { delete j.kdf!.check; },
      (j) => { j.address = 'not an address'; },
      (j) => { delete j.created; },
      (j) => { j.kdf!.N = 1000; }, // not a power of two
      (j) => { j.kdf!.N = 2 ** 30; }, // 128 GiB: refused, never allocated
      (j) => { j.kdf!.r = 0; },
      (j) => { j.kdf!.p = 1e9; },
    ];
    for (const change of changes) {
      expect(walletError(() => parseWalletFile(edit(file, change), 'w.json')).message, String(change)).toMatch(/w\.json is damaged/);
    }
  });

  it('unknown version, format, kdf or cipher → says which and what to do', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV), PW, FAST);
    expect(walletError(() => decryptWallet(edit(file, (j) => { j.version = 2; }), PW, 'w.json')).message)
      .toMatch(/w\.json has wallet format version 2, written by a newer Tessera.*update Tessera/);
    for (const v of [0, '1', null, 1.5]) {
      expect(walletError(() => parseWalletFile(edit(file, (j) => { j.version = v; }))).message).toMatch(/unknown wallet format version/);
    }
    expect(walletError(() => parseWalletFile(edit(file, (j) => { delete j.format; }))).message).toMatch(/not a Tessera wallet.*--btcli/);
    expect(walletError(() => parseWalletFile(edit(file, (j) => { j.kdf!.name = 'argon2id'; }))).message).toMatch(/key derivation 'argon2id'/);
    expect(walletError(() => parseWalletFile(edit(file, (j) => { j.cipher!.name = 'aes-gcm'; }))).message).toMatch(/cipher 'aes-gcm'/);
  });

  it('an address that is not the key inside → damaged (the file was edited)', () => {
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV, '//Alice'), PW, FAST);
    const e = walletError(() => decryptWallet(edit(file, (j) => { j.address = BOB; }), PW));
    expect(e.message).toMatch(/address .* is not that of the key it holds/);
  });

  it('refuses scrypt parameters out of range when writing', () => {
    for (const kdf of [{ N: 512 }, { N: 3000 }, { N: 1 << 21 }, { r: 0 }, { p: 17 }]) {
      walletError(() => encryptWallet(WalletSecret.fromMnemonic(DEV), PW, { kdf }));
    }
  });
});
