// The wallet on disk and `tessera wallet …` as a user runs it: a real process through
// bin/tessera.mjs, the password from TESSERA_WALLET_PASSWORD or --password-file. The words
// appear on stdout only where asked for (create, show --reveal), never on stderr.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mnemonicToMiniSecret } from '@polkadot/util-crypto';
import { loadHotkeyFile } from '../../src/node/hotkey-file.ts';
import { passwordFromFileOrEnv, readPasswordFile, readWalletFile, writeWalletFile } from '../../src/node/wallet-file.ts';
import { toPrefixedHex } from '../../src/base/hex.ts';
import { Hotkey, WalletError, cryptoReady } from '../../src/wallet/keys.ts';
import { WalletSecret, decryptWallet, encryptWallet } from '../../src/wallet/keystore.ts';
import { atTerminal, hasPty } from '../helpers/terminal.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const DEV_ROOT = '5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV';
const PW = 'a long wallet password';
const FAST = { kdf: { N: 1 << 10 } };

let dir: string;
beforeAll(async () => {
  await cryptoReady();
  dir = mkdtempSync(join(tmpdir(), 'tessera-wallet-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `tessera wallet …` in `dir`, with TESSERA_WALLET_PASSWORD set unless told otherwise. */
function tessera(args: string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<{ code: number | null; out: string; err: string }> {
  const env: Record<string, string | undefined> = { ...process.env, TESSERA_WALLET_PASSWORD: PW, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'wallet', ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** No stack, no secret. */
function cleanError(err: string): void {
  expect(err).not.toMatch(/\n\s+at /);
  for (const s of [DEV, 'bottom drive', 'fit walk', PW]) expect(err).not.toContain(s);
}

const mode = (p: string) => statSync(p).mode & 0o777;

describe('wallet file (Node)', () => {
  it('is written 0600 whatever the umask, atomically, its folder 0700, and refuses to clobber', () => {
    const path = join(dir, 'sub', 'w.json');
    const file = encryptWallet(WalletSecret.fromMnemonic(DEV, '//Alice'), PW, FAST);
    const old = process.umask(0);
    try {
      writeWalletFile(path, file);
    } finally {
      process.umask(old);
    }
    expect(mode(path)).toBe(0o600);
    expect(mode(join(dir, 'sub'))).toBe(0o700);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['w.json']); // no temporary left behind
    const bob = encryptWallet(WalletSecret.fromMnemonic(DEV, '//Bob'), PW, FAST);
    expect(() => writeWalletFile(path, bob)).toThrow(/already exists.*--force/);
    expect(readWalletFile(path).wallet.address).toBe(ALICE);
    writeWalletFile(path, bob, { overwrite: true });
    expect(mode(path)).toBe(0o600);
    const { wallet, mode: m } = readWalletFile(path);
    expect(m).toBe(0o600);
    expect(wallet.address).toBe(BOB);
    expect(decryptWallet(wallet, PW).address).toBe(BOB);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['w.json']);
  });

  it('missing, corrupt and folder → clear WalletErrors', () => {
    expect(() => readWalletFile(join(dir, 'nope.json'))).toThrow(/no wallet at .*nope\.json.*tessera wallet create/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"format": "tessera-wallet", "vers');
    expect(() => readWalletFile(bad)).toThrow(/bad\.json is damaged \(it is not valid JSON\)/);
    expect(() => readWalletFile(dir)).toThrow(WalletError);
  });

  it('password file: first line, line ending not included; env fallback', () => {
    const p = join(dir, 'pw.txt');
    writeFileSync(p, `${PW}\r\nsecond line\n`);
    expect(readPasswordFile(p)).toBe(PW);
    writeFileSync(p, '\n');
    expect(() => readPasswordFile(p)).toThrow(/is empty/);
    expect(passwordFromFileOrEnv(undefined, { TESSERA_WALLET_PASSWORD: 'x' })).toBe('x');
    expect(passwordFromFileOrEnv(undefined, {})).toBeNull();
  });
});

describe('tessera contribute --key: loadHotkeyFile', () => {
  it('opens a Tessera wallet with the password from the env or --password-file', () => {
    const path = join(dir, 'contrib.json');
    writeWalletFile(path, encryptWallet(WalletSecret.fromMnemonic(DEV, '//Alice'), PW, FAST));
    const saved = process.env.TESSERA_WALLET_PASSWORD;
    try {
      delete process.env.TESSERA_WALLET_PASSWORD;
      expect(() => loadHotkeyFile(path)).toThrow(/encrypted Tessera wallet.*--password-file.*TESSERA_WALLET_PASSWORD/);
      const pwFile = join(dir, 'contrib-pw');
      writeFileSync(pwFile, `${PW}\n`);
      expect(loadHotkeyFile(path, { passwordFile: pwFile }).address).toBe(ALICE);
      process.env.TESSERA_WALLET_PASSWORD = PW;
      expect(loadHotkeyFile(path).address).toBe(ALICE);
      process.env.TESSERA_WALLET_PASSWORD = 'wrong';
      expect(() => loadHotkeyFile(path)).toThrow(/wrong password/);
    } finally {
      if (saved === undefined) delete process.env.TESSERA_WALLET_PASSWORD;
      else process.env.TESSERA_WALLET_PASSWORD = saved;
    }
  });

  it('still reads plain mnemonic files and btcli files, now also seed-only and checked ones', () => {
    const plain = join(dir, 'hotkey');
    writeFileSync(plain, `${DEV} //Alice\n`);
    expect(loadHotkeyFile(plain).address).toBe(ALICE);
    const btcli = join(dir, 'btcli-seed');
    writeFileSync(btcli, JSON.stringify({ secretPhrase: null, secretSeed: '0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a', ss58Address: ALICE }));
    expect(loadHotkeyFile(btcli).address).toBe(ALICE);
    writeFileSync(btcli, JSON.stringify({ secretPhrase: DEV, ss58Address: BOB }));
    expect(() => loadHotkeyFile(btcli)).toThrow(/inconsistent/);
    writeFileSync(btcli, `{"secretPhrase": "${DEV}"`);
    let msg = '';
    try {
      loadHotkeyFile(btcli);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/does not parse/);
    expect(msg).not.toContain('bottom');
  });
});

// Each test uses its own wallet files, so they run side by side (each process mostly waits).
describe.concurrent('tessera wallet (a real process)', () => {
  it('create prints the words once with the notice, saves 0600; show, show --reveal, wrong or no password', async () => {
    const c = await tessera(['create']);
    expect(c.code, c.err).toBe(0);
    const words = c.out.match(/^ {4}([a-z]+(?: [a-z]+){11})$/m)?.[1];
    expect(words).toBeDefined();
    expect(c.out).toMatch(/WRITE THESE WORDS DOWN/);
    expect(c.out.split(words!).length).toBe(2); // exactly once
    const address = c.out.match(/address: (5\w+)/)![1];
    expect(Hotkey.fromMnemonic(words!).address).toBe(address);
    expect(c.err).not.toContain(words!);
    const path = join(dir, '.tessera', 'wallet.json');
    expect(mode(path)).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(words!.split(' ').slice(0, 2).join(' '));
    expect(JSON.parse(text).kdf).toMatchObject({ name: 'scrypt', N: 32768 });

    const [s, r, again, wrong, none] = await Promise.all([
      tessera(['show'], { env: { TESSERA_WALLET_PASSWORD: undefined } }),
      tessera(['show', '--reveal', '--json']),
      tessera(['create']),
      tessera(['show', '--reveal'], { env: { TESSERA_WALLET_PASSWORD: 'not it' } }),
      tessera(['show', '--reveal'], { env: { TESSERA_WALLET_PASSWORD: undefined } }),
    ]);
    expect(s.code, s.err).toBe(0);
    expect(s.out).toContain(`address: ${address}`);
    expect(s.out).not.toContain(words!);

    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ address, kind: 'mnemonic', mnemonic: words });

    expect(again.code).toBe(1);
    expect(again.err).toMatch(/a wallet already exists at .*wallet\.json \(5\w+\): pass --force/);
    expect(again.out).toBe('');
    expect(readFileSync(path, 'utf8')).toBe(text);

    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/tessera: wrong password for \.tessera\/wallet\.json/);
    expect(wrong.out).not.toContain(words!);
    expect(wrong.err).not.toContain(words!);
    cleanError(wrong.err);

    expect(none.code).toBe(1);
    expect(none.err).toMatch(/needs its password and there is no terminal.*--password-file.*TESSERA_WALLET_PASSWORD/);
    expect(none.out + none.err).not.toContain(words!);
  });

  it('import from stdin with --path //Alice (the known vector), and --force', async () => {
    const r = await tessera(['import', '--path', '//Alice', '--wallet', 'alice.json'], { input: `${DEV}\n` });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`address: ${ALICE}`);
    expect(r.out + r.err).not.toContain('bottom');
    expect(mode(join(dir, 'alice.json'))).toBe(0o600);
    const s = await tessera(['show', '--reveal', '--wallet', 'alice.json']);
    expect(s.out).toContain(`address: ${ALICE}`);
    expect(s.out).toContain(DEV);
    expect(s.out).toContain('derivation path: //Alice');
    expect(s.err).not.toContain('bottom');
    const bob = await tessera(['import', '--wallet', 'alice.json', '--force'], { input: `${DEV} //Bob\n` });
    expect(bob.code, bob.err).toBe(0);
    expect(bob.out).toContain(`address: ${BOB}`);
  });

  it('import --mnemonic-file with --password-file', async () => {
    writeFileSync(join(dir, 'words.txt'), `${DEV}\n`);
    writeFileSync(join(dir, 'pw'), 'from a file\n');
    const r = await tessera(['import', '--mnemonic-file', 'words.txt', '--password-file', 'pw', '--wallet', 'root.json', '--json'], { env: { TESSERA_WALLET_PASSWORD: undefined } });
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ address: DEV_ROOT, kind: 'mnemonic' });
    expect(decryptWallet(readFileSync(join(dir, 'root.json'), 'utf8'), 'from a file').address).toBe(DEV_ROOT);
  });

  it('import --btcli: a hotkey file as btcli writes it; a mismatching one is refused', async () => {
    const key = Hotkey.fromMnemonic(DEV);
    const pub = toPrefixedHex(key.publicKey);
    const good = { accountId: pub, publicKey: pub, secretPhrase: DEV, secretSeed: toPrefixedHex(mnemonicToMiniSecret(DEV)), ss58Address: key.address };
    writeFileSync(join(dir, 'btcli-hotkey'), JSON.stringify(good));
    writeFileSync(join(dir, 'btcli-bad'), JSON.stringify({ ...good, ss58Address: ALICE }));
    const [r, bad] = await Promise.all([
      tessera(['import', '--btcli', 'btcli-hotkey', '--wallet', 'bt.json']),
      tessera(['import', '--btcli', 'btcli-bad', '--wallet', 'bt2.json']),
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`address: ${DEV_ROOT}`);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/btcli-bad is inconsistent.*refused/);
    cleanError(bad.err);
    expect(existsSync(join(dir, 'bt2.json'))).toBe(false);
  });

  it('an invalid mnemonic, a corrupt wallet, a --password flag and words on the command line: clear errors, no secrets', async () => {
    writeFileSync(join(dir, 'corrupt.json'), '{"format": "tessera-wallet", "version": 1, "address": ');
    writeFileSync(join(dir, 'future.json'), JSON.stringify({ format: 'tessera-wallet', version: 9 }));
    const [typo, corrupt, future, flag, pasted] = await Promise.all([
      tessera(['import', '--wallet', 'typo.json'], { input: DEV.replace('walk', 'walks') }),
      tessera(['show', '--wallet', 'corrupt.json']),
      tessera(['show', '--wallet', 'future.json']),
      tessera(['create', '--password=hunter2', '--wallet', 'flag.json']),
      tessera(['import', ...DEV.split(' ')]),
    ]);
    expect(typo.code).toBe(1);
    expect(typo.err).toMatch(/tessera: stdin: not a valid BIP-39 mnemonic/);
    cleanError(typo.err);
    expect(existsSync(join(dir, 'typo.json'))).toBe(false);

    expect(corrupt.code).toBe(1);
    expect(corrupt.err).toMatch(/corrupt\.json is damaged.*tessera wallet import/);
    expect(future.err).toMatch(/version 9.*update Tessera/);

    expect(flag.code).toBe(2);
    expect(flag.err).toMatch(/no --password flag.*shell history/);
    expect(flag.err).not.toContain('hunter2');
    expect(existsSync(join(dir, 'flag.json'))).toBe(false);

    expect(pasted.code).toBe(2);
    expect(pasted.err).toMatch(/unexpected argument/);
    cleanError(pasted.err);
  });

  it('usage lists the password sources and says why there is no --password', async () => {
    const r = await tessera(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--password-file FILE/);
    expect(r.out).toMatch(/TESSERA_WALLET_PASSWORD/);
    expect(r.out).toMatch(/no --password flag/);
    expect(r.out).toMatch(/A new password has at least\s+8 characters/);
    expect(r.out).toMatch(/tessera contribute uses \.tessera\/wallet\.json by itself/);
  });

  // The prompt on a real terminal: the typed password is not echoed.
  it.skipIf(!hasPty)('create at a terminal: asks twice, echoes nothing', async () => {
    const r = await atTerminal(dir, dir, [process.execPath, BIN, 'wallet', 'create', '--wallet', 'tty.json'], [
      { waitFor: '\npassword: ', seconds: 30, type: 'typed secret 123' },
      { waitFor: 'again: ', seconds: 10, type: 'typed secret 123' },
      { waitFor: 'wallet show --reveal', seconds: 30 },
      { waitFor: '\0', seconds: 1 }, // what it prints after that line
    ]);
    expect(r.stdout, r.stderr).toMatch(/password: /);
    expect(r.stdout).toMatch(/password again: /);
    expect(r.stdout).toMatch(/WRITE THESE WORDS DOWN/);
    expect(r.stdout).not.toContain('typed secret');
    expect(decryptWallet(readFileSync(join(dir, 'tty.json'), 'utf8'), 'typed secret 123').address).toMatch(/^5/);
  });
});

// Not in the concurrent group above: fewer processes starting at once on a small machine.
describe('tessera wallet: the password rule', () => {
  it('a new password shorter than 8 characters is refused, from the environment or a file, and nothing is saved', async () => {
    const one = await tessera(['create', '--wallet', 'short.json'], { env: { TESSERA_WALLET_PASSWORD: 'x' } });
    expect(one.code).toBe(1);
    expect(one.err.trim()).toBe('tessera: the wallet password is too short (1 character): use at least 8, it encrypts the wallet on disk (from $TESSERA_WALLET_PASSWORD); nothing was saved');
    expect(one.out).toBe('');
    const pwFile = join(dir, 'seven');
    writeFileSync(pwFile, '1234567\n');
    const words = join(dir, 'short-words');
    writeFileSync(words, DEV);
    const file = await tessera(['import', '--mnemonic-file', words, '--wallet', 'short.json', '--password-file', pwFile]);
    expect(file.code).toBe(1);
    expect(file.err).toMatch(/too short \(7 characters\): use at least 8.*\(from the password file .*seven\); nothing was saved/);
    cleanError(file.err);
    expect(existsSync(join(dir, 'short.json'))).toBe(false);
  });
});
