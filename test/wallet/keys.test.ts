import { beforeAll, describe, expect, it } from 'vitest';
import { Hotkey, WalletError, cryptoReady, isValidAddress, verifySignature } from '../../src/wallet/keys.ts';

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';

beforeAll(() => cryptoReady());

describe('Hotkey', () => {
  it('derives the substrate dev accounts from the dev mnemonic', () => {
    const alice = Hotkey.fromMnemonic(DEV, '//Alice');
    expect(alice.address).toBe(ALICE);
    expect(alice.publicKey).toBeInstanceOf(Uint8Array);
    expect(alice.publicKey.length).toBe(32);
    expect(Hotkey.fromMnemonic(DEV, '//Bob').address).toBe(BOB);
  });

  it('ignores spacing in the mnemonic', () => {
    expect(Hotkey.fromMnemonic(`  ${DEV.replace(/ /g, '   ')}\n`, '//Alice').address).toBe(ALICE);
  });

  it('rejects invalid mnemonics and paths with a WalletError', () => {
    const bad = [
      '', 'bottom drive obey', DEV.replace('walk', 'walks'), DEV.replace('bottom', 'drive'),
      `${DEV} extra`, 'not a mnemonic at all but twelve words long here you go now',
    ];
    for (const m of bad) expect(() => Hotkey.fromMnemonic(m), m).toThrow(WalletError);
    expect(() => Hotkey.fromMnemonic(DEV, 'Alice')).toThrow(WalletError);
    expect(() => Hotkey.fromMnemonic(DEV.replace('walk', 'zzzz'))).toThrow(/word list|checksum/);
  });

  it('generates 12-word mnemonics that restore to the same key', () => {
    const { key, mnemonic } = Hotkey.generate();
    expect(mnemonic.split(' ')).toHaveLength(12);
    expect(Hotkey.fromMnemonic(mnemonic).address).toBe(key.address);
    expect(isValidAddress(key.address)).toBe(true);
    expect(Hotkey.generate().key.address).not.toBe(key.address);
  });
});

describe('signatures', () => {
  const alice = () => Hotkey.fromMnemonic(DEV, '//Alice');
  const msg = new TextEncoder().encode('round 7 update');

  it('sign → verify', () => {
    const sig = alice().sign(msg);
    expect(sig).toBeInstanceOf(Uint8Array);
    expect(sig.length).toBe(64);
    expect(verifySignature(msg, sig, ALICE)).toBe(true);
    expect(verifySignature(new Uint8Array(0), alice().sign(new Uint8Array(0)), ALICE)).toBe(true);
  });

  it('tampered message, signature or wrong address → false', () => {
    const sig = alice().sign(msg);
    const m2 = msg.slice();
    m2[0] ^= 1;
    expect(verifySignature(m2, sig, ALICE)).toBe(false);
    for (const at of [0, 31, 32, 63]) {
      const s2 = sig.slice();
      s2[at] ^= 0x10;
      expect(verifySignature(msg, s2, ALICE)).toBe(false);
    }
    expect(verifySignature(msg, sig, BOB)).toBe(false);
  });

  it('garbage input → false, never throws', () => {
    const sig = alice().sign(msg);
    const garbage: unknown[] = [undefined, null, 42, 'x', {}, new Uint8Array(63), new Uint8Array(65), new Uint8Array(64)];
    for (const g of garbage) {
      expect(verifySignature(msg, g as Uint8Array, ALICE)).toBe(false);
      expect(verifySignature(g as Uint8Array, sig, ALICE)).toBe(false);
      expect(verifySignature(msg, sig, g as string)).toBe(false);
    }
    expect(verifySignature(msg, sig, ALICE.slice(0, -1) + 'Z')).toBe(false);
    expect(verifySignature(msg, sig, '')).toBe(false);
  });
});

describe('isValidAddress', () => {
  it('accepts canonical prefix-42 addresses only', () => {
    expect(isValidAddress(ALICE)).toBe(true);
    expect(isValidAddress(BOB)).toBe(true);
    expect(isValidAddress(ALICE.slice(0, -1))).toBe(false);
    expect(isValidAddress(ALICE.slice(0, -1) + (ALICE.endsWith('Y') ? 'X' : 'Y'))).toBe(false);
    // Alice on Polkadot (prefix 0): same key, not this network's address.
    expect(isValidAddress('15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5')).toBe(false);
    expect(isValidAddress('')).toBe(false);
    expect(isValidAddress('0x' + '00'.repeat(32))).toBe(false);
    expect(isValidAddress(42 as unknown as string)).toBe(false);
  });
});
