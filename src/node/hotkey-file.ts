// The hotkey of `tessera contribute` as a file: a mnemonic (plain words), or a btcli hotkey
// JSON file (secretPhrase). A missing default file is created with a new mnemonic, 0600.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Hotkey, WalletError } from '../wallet/keys.ts';

export const DEFAULT_HOTKEY_FILE = '.tessera/hotkey';

export function loadHotkeyFile(path: string, options: { create: boolean }): { key: Hotkey; created: boolean } {
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
    let json: { secretPhrase?: unknown };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new WalletError(`${path} looks like JSON but does not parse: expected a btcli hotkey file with "secretPhrase"`);
    }
    if (typeof json.secretPhrase !== 'string') throw new WalletError(`${path} has no "secretPhrase": use a btcli hotkey file, or a file holding just the mnemonic`);
    return { key: Hotkey.fromMnemonic(json.secretPhrase), created: false };
  }
  // 'words… //Alice': mnemonic words have no '/', so a derivation path starts at the first.
  const slash = text.indexOf('/');
  const words = slash < 0 ? text : text.slice(0, slash);
  const derivation = slash < 0 ? '' : text.slice(slash).trim();
  return { key: Hotkey.fromMnemonic(words, derivation), created: false };
}
