// The store's slice for this tab's wallet and the first run's wallet steps: create one (the
// words, three of them asked back, a password), import one from its words, or unlock the one
// saved in this browser. The words are held only while on screen (the draft), never stored
// unencrypted. Part of the one store (store.ts composes the slices; tab-wallet.ts adds a
// second tab's own wallet).
import type { StoredWallet } from '../engine/messages.ts';
import { newPasswordProblem } from '../../src/wallet/password-rule.ts';
import { DEFAULT_WALLET } from './db.ts';
import { notAMnemonicNotice, passwordTooShortNotice, passwordsDifferNotice, wordsMismatchNotice } from './human.ts';
import { checkConfirmation, pickConfirmation } from './rules.ts';
import type { SliceContext } from './store.ts';

export interface WalletState {
  address: string | null;
  /** The keystore name of this tab's wallet: 'default', or a wallet of its own while the default contributes in another tab. */
  walletName: string;
  /** The wallets of this browser, as last listed (at start, and when this tab chooses another). */
  wallets: StoredWallet[];
  /** During wallet creation or import: the words (never stored unencrypted) and, to create, which to confirm. */
  draft: { mnemonic: string; address: string | null; confirm: number[]; imported: boolean } | null;
}

export interface WalletActions {
  beginCreate(): Promise<void>;
  wroteDownWords(): void;
  showWordsAgain(): void;
  confirmWords(answers: string[]): void;
  beginImport(): void;
  submitImport(mnemonic: string): void;
  choosePassword(password: string, repeat: string): Promise<void>;
  unlock(password: string): Promise<void>;
  backToWelcome(): void;
}

/** Words a new wallet shows, and how many of them the user types back. */
const MNEMONIC_WORDS = 12;
const WORDS_ASKED_BACK = 3;
/** The lengths of a BIP-39 mnemonic. */
const MNEMONIC_LENGTHS = [12, 15, 18, 21, 24];

export function walletStarting(): WalletState {
  return { address: null, walletName: DEFAULT_WALLET, wallets: [], draft: null };
}

export function walletActions(c: SliceContext): WalletActions {
  const { get, set } = c;
  const { engine, db } = c.deps;

  const afterWallet = async (address: string) => {
    set({ address, draft: null });
    const session = await db.loadSession(get().walletName).catch(() => ({ contributing: false }));
    // A reload while contributing: carry on where the last page left off (the engine
    // resumes from its checkpoint in IndexedDB).
    if (session.contributing) await get().contribute();
  };

  return {
    async beginCreate() {
      const r = await c.busy(() => engine.call('generateMnemonic', {}));
      if (r) set({ draft: { mnemonic: r.mnemonic, address: r.address, confirm: pickConfirmation(MNEMONIC_WORDS, WORDS_ASKED_BACK), imported: false }, screen: 'create-show' });
    },
    wroteDownWords() {
      set({ screen: 'create-confirm', notice: null });
    },
    showWordsAgain() {
      // Until the wallet is saved the words are still only on screen: showing them again is safe.
      if (get().draft) set({ screen: 'create-show', notice: null });
    },
    confirmWords(answers) {
      const d = get().draft;
      if (!d) return;
      if (!checkConfirmation(d.mnemonic, d.confirm, answers)) return set({ notice: wordsMismatchNotice() });
      set({ screen: 'password', notice: null });
    },
    beginImport() {
      set({ screen: 'import', notice: null, draft: null });
    },
    submitImport(mnemonic) {
      const words = mnemonic.trim().split(/\s+/).filter(Boolean);
      if (!MNEMONIC_LENGTHS.includes(words.length)) return set({ notice: notAMnemonicNotice(words.length) });
      set({ draft: { mnemonic: words.join(' '), address: null, confirm: [], imported: true }, screen: 'password', notice: null });
    },
    async choosePassword(password, repeat) {
      const d = get().draft;
      if (!d) return;
      if (password !== repeat) return set({ notice: passwordsDifferNotice() });
      if (newPasswordProblem(password)) return set({ notice: passwordTooShortNotice('your wallet') });
      const w = await c.busy(() => engine.call('saveWallet', { mnemonic: d.mnemonic, password, overwrite: d.imported }));
      if (!w) return;
      set({ address: w.address, draft: null, screen: 'network' });
    },
    async unlock(password) {
      const name = get().walletName;
      const w = await c.busy(() => engine.call('unlockWallet', name === DEFAULT_WALLET ? { password } : { password, name }));
      if (!w) return;
      set({ screen: 'main' });
      void get().checkGpu();
      await afterWallet(w.address);
    },
    backToWelcome() {
      set({ screen: 'welcome', draft: null, notice: null });
    },
  };
}
