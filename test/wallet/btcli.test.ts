// btcli hotkey files, made here the way btcli writes them (json.dumps of accountId,
// publicKey, [privateKey,] secretPhrase, secretSeed, ss58Address), and the inconsistent ones
// that must be refused.
import { beforeAll, describe, expect, it } from 'vitest';
import { mnemonicToMiniSecret } from '@polkadot/util-crypto';
import { parseBtcliKeyfile } from '../../src/wallet/btcli.ts';
import { toPrefixedHex } from '../../src/base/hex.ts';
import { Hotkey, WalletError, cryptoReady } from '../../src/wallet/keys.ts';

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const ALICE_SEED = '0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';

beforeAll(() => cryptoReady());

/** What `btcli wallet new_hotkey` writes (Python's json.dumps: ", " and ": " separators). */
function btcliFile(mnemonic: string | null, seed: string | null, fields: Record<string, unknown> = {}): string {
  const key = seed ? Hotkey.fromSeed(seed) : Hotkey.fromMnemonic(mnemonic!);
  const pub = toPrefixedHex(key.publicKey);
  const data = { accountId: pub, publicKey: pub, secretPhrase: mnemonic, secretSeed: seed, ss58Address: key.address, ...fields };
  return JSON.stringify(data).replace(/","/g, '", "').replace(/":/g, '": ').replace(/,"/g, ', "');
}

function refused(text: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    parseBtcliKeyfile(text, 'hotkeys/default');
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(WalletError);
  const msg = (caught as Error).message;
  expect(msg).toMatch(pattern);
  expect(msg).toMatch(/hotkeys\/default/);
  expect(msg).not.toContain('bottom drive');
  expect(msg).not.toContain(ALICE_SEED.slice(2, 18));
}

describe('parseBtcliKeyfile', () => {
  const devSeed = toPrefixedHex(mnemonicToMiniSecret(DEV));
  const devAddress = Hotkey.fromMnemonic(DEV).address;

  it('a btcli hotkey file with secretPhrase and secretSeed: the mnemonic is kept', () => {
    const text = btcliFile(DEV, null, { secretSeed: devSeed });
    expect(text).toContain('"secretPhrase": "bottom');
    const k = parseBtcliKeyfile(text);
    expect(k.address).toBe(devAddress);
    expect(k.secret.kind).toBe('mnemonic');
    expect(k.secret.revealMnemonic()).toBe(DEV);
  });

  it('newer btcli files also carry privateKey; it is ignored', () => {
    const k = parseBtcliKeyfile(btcliFile(DEV, null, { secretSeed: devSeed, privateKey: `0x${'ab'.repeat(64)}` }));
    expect(k.address).toBe(devAddress);
  });

  it('secretSeed alone (secretPhrase null) works: the known //Alice seed', () => {
    const k = parseBtcliKeyfile(btcliFile(null, ALICE_SEED));
    expect(k.address).toBe(ALICE);
    expect(k.secret.kind).toBe('seed');
    expect(k.secret.revealSeed()).toBe(ALICE_SEED);
    // Fields that are missing altogether are fine too.
    expect(parseBtcliKeyfile(JSON.stringify({ secretSeed: ALICE_SEED, ss58Address: ALICE })).address).toBe(ALICE);
  });

  it('refuses a file whose ss58Address is not its key', () => {
    refused(btcliFile(DEV, null, { ss58Address: BOB }), /inconsistent.*ss58Address.*5FHneW46/);
    refused(btcliFile(null, ALICE_SEED, { ss58Address: BOB }), /inconsistent/);
    refused(btcliFile(DEV, null, { ss58Address: 'garbage' }), /not an ss58 address/);
  });

  it('refuses a publicKey / accountId that is not its key', () => {
    const bobPub = toPrefixedHex(Hotkey.fromMnemonic(DEV, '//Bob').publicKey);
    refused(btcliFile(DEV, null, { publicKey: bobPub }), /inconsistent.*publicKey/);
    refused(btcliFile(DEV, null, { accountId: bobPub }), /inconsistent.*accountId/);
    refused(btcliFile(DEV, null, { publicKey: '0x1234' }), /publicKey.*64 hex/);
  });

  it('refuses a secretPhrase and secretSeed that disagree', () => {
    refused(btcliFile(DEV, null, { secretSeed: ALICE_SEED }), /secretPhrase.*secretSeed.*refusing/);
  });

  it('refuses files with no secret, a bad secret, or bad JSON — never quoting them', () => {
    refused(JSON.stringify({ ss58Address: ALICE }), /neither "secretPhrase" nor "secretSeed"/);
    refused(btcliFile(DEV, null, { secretPhrase: DEV.replace('walk', 'walks') }), /secretPhrase.*not usable.*(word list|checksum)/);
    refused(btcliFile(null, ALICE_SEED, { secretSeed: ALICE_SEED.slice(0, 40) }), /secretSeed.*not usable/);
    refused(btcliFile(DEV, null, { secretPhrase: 42 }), /"secretPhrase" is not a string/);
    refused(`{"secretPhrase": "${DEV}"`, /not valid JSON/);
    refused('[1, 2]', /not a JSON object/);
  });

  it('refuses an encrypted btcli keyfile and says what to do instead', () => {
    refused('$NACL\x00\x01\x02', /encrypted btcli keyfile.*tessera wallet import/);
    refused('$ANSIBLE_VAULT;1.1;AES256\n6162', /encrypted btcli keyfile/);
    refused('gAAAAABk', /encrypted btcli keyfile/);
  });
});
