// A btcli (bittensor) keyfile, the JSON that `btcli wallet new_hotkey` writes unencrypted to
// ~/.bittensor/wallets/<wallet>/hotkeys/<hotkey>:
//   { "accountId": "0x…", "publicKey": "0x…", "privateKey": "0x…", "secretPhrase": "words…" | null,
//     "secretSeed": "0x<32-byte mini-secret>" | null, "ss58Address": "5…" }
// The key comes from secretPhrase (preferred: the words can then be shown for backup) or
// secretSeed; every other field present must agree with it, or the file is refused.
// Encrypted btcli keyfiles (coldkeys: $NACL, $ANSIBLE_VAULT, legacy Fernet) are recognised and
// refused with a pointer to the mnemonic import. Errors never quote the file's secrets.
import { decodeAddress } from '@polkadot/util-crypto';
import { fromPrefixedHex, isPrefixedHex } from '../base/hex.ts';
import { bytesEqual } from './bytes.ts';
import { WalletError, type Hotkey } from './keys.ts';
import { WalletSecret } from './keystore.ts';

export interface BtcliKeyfile {
  /** The wallet secret to store: the mnemonic when the file has one, else the seed. */
  secret: WalletSecret;
  key: Hotkey;
  address: string;
}

const MAX_KEYFILE_CHARS = 64 * 1024;

/** Whether text looks like an encrypted btcli keyfile (it has no readable key). */
export function isEncryptedBtcliKeyfile(text: string): boolean {
  const t = text.trimStart();
  return t.startsWith('$NACL') || t.startsWith('$ANSIBLE_VAULT') || t.startsWith('gAAAAA');
}

function optionalString(json: Record<string, unknown>, name: string, source: string): string | undefined {
  const v = json[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new WalletError(`${source}: "${name}" is not a string; is this a btcli keyfile?`);
  return v;
}

/** Parses and checks a btcli keyfile (its text). WalletError saying what is wrong. */
export function parseBtcliKeyfile(text: string, source = 'the btcli keyfile'): BtcliKeyfile {
  if (typeof text !== 'string' || text.length > MAX_KEYFILE_CHARS) throw new WalletError(`${source} is not a btcli keyfile (too large)`);
  if (isEncryptedBtcliKeyfile(text)) {
    throw new WalletError(`${source} is an encrypted btcli keyfile (a coldkey?), which Tessera does not open: use a hotkey file (btcli writes those unencrypted), or import the key's mnemonic with \`tessera wallet import\``);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Never the parser's message: it quotes the text.
    throw new WalletError(`${source} is not valid JSON: expected a btcli hotkey file like ~/.bittensor/wallets/<wallet>/hotkeys/<hotkey>`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new WalletError(`${source} is not a JSON object: expected a btcli hotkey file`);
  const json = parsed as Record<string, unknown>;
  const phrase = optionalString(json, 'secretPhrase', source);
  let seed = optionalString(json, 'secretSeed', source);
  const ss58 = optionalString(json, 'ss58Address', source);
  const publicKey = optionalString(json, 'publicKey', source);
  const accountId = optionalString(json, 'accountId', source);
  if (seed?.startsWith('0x0x')) seed = seed.slice(2); // some btcli versions prefixed an already-prefixed seed
  if (phrase === undefined && seed === undefined) {
    throw new WalletError(`${source} has neither "secretPhrase" nor "secretSeed", so it holds no usable secret: use the hotkey file that btcli wrote, or import the mnemonic`);
  }

  let fromPhrase: WalletSecret | undefined;
  let fromSeed: WalletSecret | undefined;
  if (phrase !== undefined) {
    try {
      fromPhrase = WalletSecret.fromMnemonic(phrase);
    } catch (e) {
      throw new WalletError(`${source}: its "secretPhrase" is not usable: ${(e as Error).message}`);
    }
  }
  if (seed !== undefined) {
    try {
      fromSeed = WalletSecret.fromSeed(seed);
    } catch (e) {
      throw new WalletError(`${source}: its "secretSeed" is not usable: ${(e as Error).message}`);
    }
  }
  if (fromPhrase && fromSeed && fromPhrase.address !== fromSeed.address) {
    throw new WalletError(`${source} is inconsistent: its "secretPhrase" gives ${fromPhrase.address} but its "secretSeed" gives ${fromSeed.address}; refusing to guess which is right`);
  }
  const secret = (fromPhrase ?? fromSeed)!;
  const derived = secret.key.publicKey;

  if (ss58 !== undefined) {
    let claimed: Uint8Array;
    try {
      claimed = decodeAddress(ss58);
    } catch {
      throw new WalletError(`${source}: its "ss58Address" (${ss58.slice(0, 64)}) is not an ss58 address`);
    }
    if (!bytesEqual(claimed, derived)) {
      throw new WalletError(`${source} is inconsistent: its secret gives ${secret.address}, but its "ss58Address" is ${ss58}; the file was altered or mixed up, so it is refused`);
    }
  }
  for (const [name, hex] of [['publicKey', publicKey], ['accountId', accountId]] as const) {
    if (hex === undefined) continue;
    if (!isPrefixedHex(hex) || hex.length !== 66) throw new WalletError(`${source}: its "${name}" is not 0x followed by 64 hex digits`);
    if (!bytesEqual(fromPrefixedHex(hex), derived)) {
      throw new WalletError(`${source} is inconsistent: its secret gives the public key of ${secret.address}, but its "${name}" differs; the file was altered or mixed up, so it is refused`);
    }
  }
  return { secret, key: secret.key, address: secret.address };
}
