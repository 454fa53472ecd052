// Which key `tessera contribute` signs with, as a user meets it: the wallet made by `tessera
// wallet create` (its password from a file, the environment or the terminal), never a new
// unencrypted key made silently; and key files whose errors name the file. Real processes
// through bin/tessera.mjs in a fresh folder; each is stopped once it has said which key it uses.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unlockHotkeyFile } from '../../src/node/hotkey-file.ts';
import { writeWalletFile } from '../../src/node/wallet-file.ts';
import { cryptoReady } from '../../src/wallet/keys.ts';
import { WalletSecret, encryptWallet } from '../../src/wallet/keystore.ts';
import { atTerminal, hasPty } from '../helpers/terminal.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const PW = 'a long wallet password';
const FAST = { kdf: { N: 1 << 10 } };
/** Nothing listens there: the contributor is stopped before it would connect. */
const COORDINATOR = 'ws://127.0.0.1:9/ws';
const STARTED = /^hotkey \w+ \(/m;

let root: string;
beforeAll(async () => {
  await cryptoReady();
  root = mkdtempSync(join(tmpdir(), 'tessera-contribute-key-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh working folder; with `wallet`, .tessera/wallet.json holds //Alice under PW. */
function folder(name: string, wallet = false): string {
  const dir = join(root, name);
  mkdirSync(join(dir, '.tessera'), { recursive: true });
  if (wallet) writeWalletFile(join(dir, '.tessera', 'wallet.json'), encryptWallet(WalletSecret.fromMnemonic(DEV, '//Alice'), PW, FAST));
  return dir;
}

/** `tessera contribute …` in `cwd` without a password in the environment unless given; stopped once it names its key. */
function contribute(cwd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string; started: boolean }> {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  if (!('TESSERA_WALLET_PASSWORD' in env)) delete childEnv.TESSERA_WALLET_PASSWORD;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'contribute', '--coordinator', COORDINATOR, '--software', ...args], { cwd, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!started && STARTED.test(out)) {
        started = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, started });
    });
    child.stdin.end();
  });
}

const noStack = (err: string) => expect(err).not.toMatch(/\n\s+at /);

describe('tessera contribute: which key', () => {
  it('no wallet and no --key: says how to make a wallet, creates no key', async () => {
    const dir = folder('none');
    const r = await contribute(dir, []);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'tessera: no wallet yet (no .tessera/wallet.json): your hotkey signs your work and earns its rewards; make one first:\n' +
        '  tessera wallet create     a new key, encrypted with a password (write its 12 words down)\n' +
        '  tessera wallet import     your existing words, or a btcli hotkey file (--btcli FILE)\n' +
        'then run this command again; or name a key file with --key FILE.\n',
    );
    expect(r.out).toBe('');
    expect(existsSync(join(dir, '.tessera', 'hotkey'))).toBe(false);
  });

  it('uses the wallet, with the password from a file or the environment; a wrong one is a plain error', async () => {
    const dir = folder('wallet', true);
    const pwFile = join(dir, 'pw');
    writeFileSync(pwFile, `${PW}\n`);
    const [byFile, byEnv, wrong, none] = await Promise.all([
      contribute(dir, ['--password-file', pwFile]),
      contribute(dir, [], { TESSERA_WALLET_PASSWORD: PW }),
      contribute(dir, [], { TESSERA_WALLET_PASSWORD: 'not the password' }),
      contribute(dir, []),
    ]);
    for (const r of [byFile, byEnv]) {
      expect(r.started, r.err).toBe(true);
      expect(r.out).toMatch(`hotkey ${ALICE} (.tessera/wallet.json)`);
      expect(r.err).not.toMatch(/warning/);
    }
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/^tessera: wrong password for \.tessera\/wallet\.json \(from \$TESSERA_WALLET_PASSWORD\): check it/);
    noStack(wrong.err);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/^tessera: the wallet \.tessera\/wallet\.json needs its password and there is no terminal to ask on: pass --password-file FILE or set TESSERA_WALLET_PASSWORD/);
    noStack(none.err);
    expect(existsSync(join(dir, '.tessera', 'hotkey'))).toBe(false);
  });

  it('the plain .tessera/hotkey of an earlier version still works, with a warning on how to encrypt it', async () => {
    const dir = folder('legacy');
    writeFileSync(join(dir, '.tessera', 'hotkey'), `${DEV} //Alice\n`, { mode: 0o600 });
    const r = await contribute(dir, []);
    expect(r.started, r.err).toBe(true);
    expect(r.err).toMatch(`warning: your key ${ALICE} is stored unencrypted in .tessera/hotkey (made by an earlier tessera contribute). Encrypt it: tessera wallet import --mnemonic-file .tessera/hotkey, then delete .tessera/hotkey`);
  });

  it('--key FILE with a mnemonic still works (as tessera swarm starts its contributors); a bad one is named', async () => {
    const dir = folder('key');
    writeFileSync(join(dir, 'mine.key'), `${DEV} //Alice\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'open.key'), `${DEV} //Alice\n`);
    chmodSync(join(dir, 'open.key'), 0o644);
    writeFileSync(join(dir, 'bad.key'), 'three words only\n');
    const [good, open, bad, missing] = await Promise.all([
      contribute(dir, ['--key', 'mine.key']),
      contribute(dir, ['--key', 'open.key']),
      contribute(dir, ['--key', 'bad.key']),
      contribute(dir, ['--key', 'nope.key']),
    ]);
    expect(good.started, good.err).toBe(true);
    expect(good.out).toMatch(`hotkey ${ALICE} (mine.key)`);
    expect(good.err).toBe('');
    expect(open.started, open.err).toBe(true);
    if (process.platform !== 'win32') expect(open.err).toMatch('warning: the key file open.key is unencrypted and other users can read it: run chmod 600 open.key');
    expect(bad.code).toBe(1);
    expect(bad.err.trim()).toBe(
      'tessera: the key file bad.key is not a key Tessera reads (a mnemonic has 12, 15, 18, 21 or 24 words; this one has 3): a key file holds a mnemonic (12–24 words), a btcli hotkey file or a Tessera wallet (tessera wallet create)',
    );
    expect(missing.code).toBe(1);
    expect(missing.err.trim()).toBe('tessera: no key file at nope.key: check the name, or create a wallet with `tessera wallet create`');
  });

  // The prompt on a real terminal: a wrong password is asked again, not echoed.
  it.skipIf(!hasPty)('at a terminal: asks for the wallet password, again after a wrong one', async () => {
    const dir = folder('tty', true);
    const r = await atTerminal(root, dir, [process.execPath, BIN, 'contribute', '--coordinator', COORDINATOR, '--software'], [
      { waitFor: 'password for .tessera/wallet.json: ', seconds: 120, type: 'not it' },
      { waitFor: 'try again', seconds: 60, type: PW },
      { waitFor: 'hotkey ', seconds: 60 },
    ]);
    expect(r.stdout, r.stderr).toMatch(/password for \.tessera\/wallet\.json: /);
    expect(r.stdout).toMatch(/wrong password; try again/);
    expect(r.stdout).toMatch(`hotkey ${ALICE}`);
    expect(r.stdout).not.toContain('not it');
    expect(r.stdout).not.toContain(PW);
  });
});

describe('key files: each error names the file', () => {
  const error = async (path: string, passwordFile?: string) => {
    try {
      await unlockHotkeyFile(path, { passwordFile });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error(`no error for ${path}`);
  };

  it('missing, a folder, empty, not a mnemonic, JSON that is no key, a wrong wallet password', async () => {
    const dir = folder('files', true);
    const at = (name: string, text?: string) => {
      const p = join(dir, name);
      if (text !== undefined) writeFileSync(p, text);
      return p;
    };
    expect(await error(at('missing'))).toBe(`no key file at ${at('missing')}: check the name, or create a wallet with \`tessera wallet create\``);
    expect(await error(dir)).toMatch(`the key file ${dir} is a folder`);
    expect(await error(at('empty', '\n'))).toMatch(`the key file ${at('empty')} is empty: a key file holds a mnemonic`);
    expect(await error(at('typo', DEV.replace('walk', 'wolk')))).toMatch(`the key file ${at('typo')} is not a key Tessera reads (not a valid BIP-39 mnemonic`);
    expect(await error(at('broken.json', '{"secretPhrase": '))).toBe(`the key file ${at('broken.json')} looks like JSON but does not parse: expected a Tessera wallet or a btcli hotkey file`);
    expect(await error(at('other.json', '{"name": "not a key"}'))).toMatch(`the key file ${at('other.json')} has neither "secretPhrase" nor "secretSeed"`);
    const wrong = at('wrong-pw', 'not the password\n');
    expect(await error(join(dir, '.tessera', 'wallet.json'), wrong)).toMatch(`wrong password for ${join(dir, '.tessera', 'wallet.json')} (from the password file ${wrong})`);
    if (process.getuid?.() !== 0) {
      chmodSync(at('locked', DEV), 0o000);
      expect(await error(at('locked'))).toBe(`cannot read the key file ${at('locked')} (EACCES: permission denied)`);
    }
    for (const name of ['typo', 'broken.json']) expect(await error(at(name))).not.toMatch(/bottom|secretPhrase"/);
  });
});
