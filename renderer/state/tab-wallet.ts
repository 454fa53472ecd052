// A second tab of the same browser profile: the tabs share the IndexedDB keystore, and one
// wallet contributes from one place at a time (the worker's Web Lock; the coordinator would
// replace one connection by the other). When this tab's wallet is in use elsewhere, the tab
// can take a wallet of its own — a new one (words shown once and a password, on one screen)
// or another stored one — and contribute as a second contributor. The choice is remembered
// per tab (sessionStorage), so a reload of this tab resumes with the same wallet and its own
// history and checkpoint. Part of the one store (store.ts calls tabWalletActions).
import type { Engine } from '../engine/client.ts';
import { newPasswordProblem } from '../../src/wallet/password-rule.ts';
import { noTabWalletChosenNotice, passwordTooShortNotice, passwordsDifferNotice } from './human.ts';
import type { AppActions, AppState } from './store.ts';

/** Where a tab remembers its wallet: sessionStorage in a page (per tab, kept across reloads). */
export interface TabWalletMemory {
  load(): string | null;
  save(name: string): void;
}

/** The sessionStorage key of the tab's wallet choice. */
export const TAB_WALLET_KEY = 'tessera-tab-wallet';

export function sessionTabWallet(storage: Pick<Storage, 'getItem' | 'setItem'>): TabWalletMemory {
  return {
    load: () => storage.getItem(TAB_WALLET_KEY),
    save: (name) => storage.setItem(TAB_WALLET_KEY, name),
  };
}

export interface TabWalletContext {
  engine: Engine;
  /** Absent (desktop app, tests without it): the choice lasts until the page goes. */
  memory?: TabWalletMemory;
  get(): AppState & AppActions;
  set(patch: Partial<AppState>): void;
  busy<T>(work: () => Promise<T>): Promise<T | undefined>;
  /** Switches the store's history to this wallet's. */
  useWalletHistory(name: string): Promise<void>;
}

/** A keystore name nobody else takes, even when two tabs create a wallet at once. */
export function newTabWalletName(random: () => number = Math.random): string {
  return `tab-${Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0')}`;
}

export interface TabWalletActions {
  /** A browser tab whose wallet contributes in another tab: choose or create a wallet for this tab. */
  chooseTabWallet(): Promise<void>;
  createTabWallet(): Promise<void>;
  /** Saves the new wallet of this tab (its words shown once, on the same screen) and contributes with it. */
  saveTabWallet(password: string, repeat: string): Promise<void>;
  /** Unlocks another stored wallet for this tab and contributes with it. */
  unlockTabWallet(name: string, password: string): Promise<void>;
  cancelTabWallet(): void;
}

export function tabWalletActions(c: TabWalletContext): TabWalletActions {
  /** This tab's wallet is now `name` (unlocked in the worker): remember it, and contribute with it. */
  const switchTo = async (name: string, address: string) => {
    c.memory?.save(name);
    await c.useWalletHistory(name);
    c.set({ address, draft: null, screen: 'main', notice: null });
    await c.get().contribute();
  };

  return {
    async chooseTabWallet() {
      const wallets = await c.busy(() => c.engine.call('listWallets', {}));
      if (!wallets) return;
      c.set({ wallets, screen: 'tab-wallet', draft: null, notice: null });
    },
    async createTabWallet() {
      const r = await c.busy(() => c.engine.call('generateMnemonic', {}));
      if (r) c.set({ draft: { mnemonic: r.mnemonic, address: r.address, confirm: [], imported: false }, screen: 'tab-create' });
    },
    async saveTabWallet(password, repeat) {
      const d = c.get().draft;
      if (!d) return;
      if (password !== repeat) return c.set({ notice: passwordsDifferNotice() });
      if (newPasswordProblem(password)) return c.set({ notice: passwordTooShortNotice('this wallet') });
      const name = newTabWalletName();
      const w = await c.busy(() => c.engine.call('saveWallet', { mnemonic: d.mnemonic, password, name }));
      if (w) await switchTo(w.name, w.address);
    },
    async unlockTabWallet(name, password) {
      if (!name) return c.set({ notice: noTabWalletChosenNotice() });
      const w = await c.busy(() => c.engine.call('unlockWallet', { password, name }));
      if (w) await switchTo(w.name, w.address);
    },
    cancelTabWallet() {
      // Back to where the tab was: the main view when a wallet is unlocked, else its unlock screen.
      c.set({ draft: null, notice: null, screen: c.get().address ? 'main' : 'unlock' });
    },
  };
}
