// A contributor's hotkey: an sr25519 key derived from a BIP-39 mnemonic exactly as substrate
// and Bittensor derive it (so the same words give the same address in a Bittensor wallet),
// its ss58 address (prefix 42) and signatures. Environment-free: @polkadot/util-crypto runs
// in browsers, workers and Node alike.
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import {
  cryptoWaitReady, decodeAddress, encodeAddress, mnemonicGenerate, mnemonicValidate, sr25519Verify,
} from '@polkadot/util-crypto';
import { fromPrefixedHex, isPrefixedHex } from '../base/hex.ts';

/** The ss58 prefix of generic substrate addresses, the one Bittensor uses. */
export const SS58_PREFIX = 42;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/** A key cannot be made from what was given, or the crypto library failed. */
export class WalletError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WalletError';
  }
}

let ready: Promise<void> | null = null;

/**
 * Waits for @polkadot's WASM crypto, once. Everything here also works before it (sr25519 is
 * pure JS, blake2b falls back to JS), only slower; so a WASM failure is not an error.
 */
export function cryptoReady(): Promise<void> {
  ready ??= cryptoWaitReady().then(() => undefined);
  return ready;
}

/** The length of an sr25519 mini-secret (substrate's "secret seed"). */
export const SEED_BYTES = 32;

/** Words separated by single spaces: the entropy (hence the key) does not depend on spacing. */
export function normalizeMnemonic(mnemonic: string): string {
  return mnemonic.trim().split(/\s+/).join(' ');
}

export class Hotkey {
  readonly address: string;
  readonly publicKey: Uint8Array;
  readonly #pair: KeyringPair;

  private constructor(pair: KeyringPair) {
    this.#pair = pair;
    this.publicKey = new Uint8Array(pair.publicKey);
    this.address = encodeAddress(this.publicKey, SS58_PREFIX);
  }

  /**
   * The sr25519 key of a BIP-39 mnemonic, optionally through a substrate derivation path
   * ('//hard', '/soft', e.g. '//Alice'), as `Keyring.addFromUri(mnemonic + path)` does.
   */
  static fromMnemonic(mnemonic: string, derivationPath = ''): Hotkey {
    if (typeof mnemonic !== 'string') throw new WalletError('the mnemonic must be a string of words');
    const words = normalizeMnemonic(mnemonic);
    const count = words ? words.split(' ').length : 0;
    if (![12, 15, 18, 21, 24].includes(count)) {
      throw new WalletError(`a mnemonic has 12, 15, 18, 21 or 24 words; this one has ${count}`);
    }
    if (!mnemonicValidate(words)) {
      throw new WalletError('not a valid BIP-39 mnemonic: a word is not in the English word list, or the checksum does not match (a word mistyped or out of order?)');
    }
    if (typeof derivationPath !== 'string') throw new WalletError('the derivation path must be a string such as //Alice');
    if (derivationPath && !/^(\/\/?[^/]+)+(\/\/\/.*)?$/.test(derivationPath)) {
      // A '///…' tail is a password: never echo it.
      const shown = derivationPath.includes('///') ? `${derivationPath.slice(0, derivationPath.indexOf('///'))}///…` : derivationPath;
      throw new WalletError(`invalid derivation path '${shown}': expected segments like '//hard' or '/soft'`);
    }
    try {
      const keyring = new Keyring({ type: 'sr25519', ss58Format: SS58_PREFIX });
      return new Hotkey(keyring.addFromUri(`${words}${derivationPath}`));
    } catch (e) {
      throw new WalletError(`cannot derive a key: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * The sr25519 key of a 32-byte mini-secret (substrate's and btcli's "secretSeed", given as
   * bytes or 0x-hex), expanded as substrate does (schnorrkel's Ed25519 mode).
   */
  static fromSeed(seed: Uint8Array | string): Hotkey {
    let bytes: Uint8Array;
    if (typeof seed === 'string') {
      if (!isPrefixedHex(seed) || seed.length !== 2 + 2 * SEED_BYTES) throw new WalletError(`a secret seed is 0x followed by ${2 * SEED_BYTES} hex digits`);
      bytes = fromPrefixedHex(seed);
    } else if (seed instanceof Uint8Array) {
      bytes = seed;
    } else {
      throw new WalletError('the secret seed must be 32 bytes or a 0x-hex string');
    }
    if (bytes.length !== SEED_BYTES) throw new WalletError(`a secret seed has ${SEED_BYTES} bytes; this one has ${bytes.length}`);
    try {
      const keyring = new Keyring({ type: 'sr25519', ss58Format: SS58_PREFIX });
      return new Hotkey(keyring.addFromSeed(bytes));
    } catch (e) {
      throw new WalletError(`cannot derive a key from the seed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** A fresh 12-word mnemonic and its key (no derivation path). */
  static generate(): { key: Hotkey; mnemonic: string } {
    const mnemonic = mnemonicGenerate(12);
    return { key: Hotkey.fromMnemonic(mnemonic), mnemonic };
  }

  /** A 64-byte sr25519 signature (randomised: two signatures of one message differ). */
  sign(message: Uint8Array): Uint8Array {
    return this.#pair.sign(message);
  }
}

/**
 * The 32-byte public key of a canonical address (ss58, prefix 42), or null. Canonical means
 * re-encoding gives back the same string, so each key has exactly one address on the wire.
 */
export function addressPublicKey(address: string): Uint8Array | null {
  if (typeof address !== 'string' || address.length < 40 || address.length > 60) return null;
  try {
    const key = decodeAddress(address, false, SS58_PREFIX);
    if (key.length !== PUBLIC_KEY_BYTES) return null;
    return encodeAddress(key, SS58_PREFIX) === address ? key : null;
  } catch {
    return null;
  }
}

export function isValidAddress(address: string): boolean {
  return addressPublicKey(address) !== null;
}

/** Whether `signature` is the holder of `address`'s signature of `message`. Never throws. */
export function verifySignature(message: Uint8Array, signature: Uint8Array, address: string): boolean {
  if (!(message instanceof Uint8Array) || !(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
  const key = addressPublicKey(address);
  if (!key) return false;
  try {
    return sr25519Verify(message, signature, key);
  } catch {
    return false;
  }
}
