// The hotkey of `tessera contribute` as a file: a mnemonic (plain words), a btcli hotkey
// JSON file (secretPhrase / secretSeed, checked against its ss58Address), or a Tessera wallet
// (`tessera wallet create`), decrypted with the password from --password-file or
// $TESSERA_WALLET_PASSWORD. A missing default file is created with a new mnemonic, 0600.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isEncryptedBtcliKeyfile, parseBtcliKeyfile } from '../wallet/btcli.ts';
import { Hotkey, WalletError } from '../wallet/keys.ts';
import { decryptWallet, isWalletJson } from '../wallet/keystore.ts';
import { PASSWORD_ENV, passwordFromFileOrEnv } from './wallet-file.ts';

export const DEFAULT_HOTKEY_FILE = '.tessera/hotkey';

export function loadHotkeyFile(path: string, options: { create: boolean; passwordFile?: string }): { key: Hotkey; created: boolean } {
  if (!existsSync(path)) {
    if (!options.create) throw new WalletError(`no key file at ${path}: pass --key with a file holding a mnemonic (or a btcli hotkey file), or leave --key out to create one`);
    const { key, mnemonic } = Hotkey.generate();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${mnemonic}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
    return { key, created: true };
  }
  const text = readFileSync(path, 'utf8').trim();
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // Never the parser's message: it quotes the file, which holds a secret.
      throw new WalletError(`${path} looks like JSON but does not parse: expected a Tessera wallet or a btcli hotkey file`);
    }
    if (isWalletJson(json)) {
      const password = passwordFromFileOrEnv(options.passwordFile);
      if (password === null) throw new WalletError(`${path} is an encrypted Tessera wallet: give its password with --password-file FILE or the ${PASSWORD_ENV} environment variable`);
      return { key: decryptWallet(text, password, path).key, created: false };
    }
    return { key: parseBtcliKeyfile(text, path).key, created: false };
  }
  if (isEncryptedBtcliKeyfile(text)) parseBtcliKeyfile(text, path); // throws, saying what to do
  // 'words… //Alice': mnemonic words have no '/', so a derivation path starts at the first.
  const slash = text.indexOf('/');
  const words = slash < 0 ? text : text.slice(0, slash);
  const derivation = slash < 0 ? '' : text.slice(slash).trim();
  return { key: Hotkey.fromMnemonic(words, derivation), created: false };
}
