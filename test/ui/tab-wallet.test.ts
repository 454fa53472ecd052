// @vitest-environment happy-dom
// A second tab of the same browser profile (renderer/state/tab-wallet.ts and its views): the
// wallet is in use in another tab, so this tab takes a wallet of its own — created (words once,
// a password) or another stored one — remembers it for its reloads (sessionStorage), and keeps
// its history and session apart from the first wallet's (renderer/state/db.ts).
import { act, cleanup, fireEvent, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_WALLET, UiDb, walletRecordKey } from '../../renderer/state/db.ts';
import { TAB_WALLET_KEY, newTabWalletName, sessionTabWallet } from '../../renderer/state/tab-wallet.ts';
import { EngineError } from '../../renderer/engine/client.ts';
import { ADDRESS, MNEMONIC, ScriptedEngine, freshDbName, joined, makeStore, memoryStorage, settle } from './fakes.ts';
import { renderWith } from './render.tsx';

afterEach(() => cleanup());

const OTHER = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const IN_USE = { kind: 'in-use', message: 'the wallet is already contributing in another tab of this browser' } as const;

/** A second tab: the default wallet unlocks, but another tab contributes with it. */
async function secondTab(o: { dbName?: string; storage?: Storage; wallets?: { name: string; address: string; inUse: boolean }[] } = {}) {
  const engine = new ScriptedEngine();
  engine.answer('listWallets', o.wallets ?? [{ name: 'default', address: ADDRESS, inUse: true }]);
  // The first start finds the wallet's Web Lock held by the other tab; later ones (another wallet) start.
  engine.answer('start', () => {
    if (engine.callsOf('start').length === 1) throw new EngineError(IN_USE);
    return { address: OTHER };
  });
  engine.answer('saveWallet', ({ name }) => ({ name: name ?? 'default', address: OTHER }));
  const storage = o.storage ?? memoryStorage();
  const made = makeStore({ engine, dbName: o.dbName, tabWallet: sessionTabWallet(storage) });
  await made.store.getState().init();
  await made.store.getState().unlock('password1');
  await settle();
  return { ...made, storage };
}

describe('a second tab of the same profile', () => {
  it('offers a wallet of its own when the wallet contributes in another tab, and contributes with it', async () => {
    const { store, engine, db, storage } = await secondTab();
    await db.saveSession({ contributing: true }); // the first tab's
    await store.getState().contribute();
    expect(store.getState().notice).toMatchObject({ kind: 'in-use', action: 'another-wallet' });
    expect(store.getState().notice?.text).toMatch(/wallet of its own/);

    await store.getState().chooseTabWallet();
    expect(store.getState().screen).toBe('tab-wallet');
    await store.getState().createTabWallet();
    expect(store.getState().screen).toBe('tab-create');
    expect(store.getState().draft?.mnemonic).toBe(MNEMONIC);
    await store.getState().saveTabWallet('password2', 'password3');
    expect(store.getState().notice?.title).toBe('The passwords differ');
    await store.getState().saveTabWallet('short', 'short');
    expect(store.getState().notice?.title).toBe('Password too short');
    expect(engine.callsOf('saveWallet')).toEqual([]);

    await store.getState().saveTabWallet('password2', 'password2');
    await settle();
    const [saved] = engine.callsOf('saveWallet') as { name: string; overwrite?: boolean }[];
    expect(saved).toEqual({ mnemonic: MNEMONIC, password: 'password2', name: expect.stringMatching(/^tab-[0-9a-f]{8}$/) });
    expect(storage.getItem(TAB_WALLET_KEY)).toBe(saved.name);
    expect(store.getState()).toMatchObject({ screen: 'main', walletName: saved.name, address: OTHER, draft: null, notice: null });
    expect(engine.callsOf('start')).toHaveLength(2); // contributing with it
    expect(await db.loadSession(saved.name)).toEqual({ contributing: true });
    expect(await db.loadSession()).toEqual({ contributing: true }); // the first tab's, untouched
  });

  it('keeps its history apart from the first wallet’s', async () => {
    const dbName = freshDbName();
    const { store, engine, db } = await secondTab({ dbName });
    await db.saveHistory({ run: 'r1', losses: [{ round: 0, step: 1, loss: 9, at: 1 }], rewards: [] }); // the first tab's
    await store.getState().contribute();
    await store.getState().chooseTabWallet();
    await store.getState().createTabWallet();
    await store.getState().saveTabWallet('password2', 'password2');
    expect(store.getState().losses).toEqual([]); // not the first wallet's
    engine.emit(joined('r1', 0), { event: 'step', round: 0, step: 1, loss: 5, tokensPerSecond: 1 });
    await settle();
    const name = store.getState().walletName;
    expect((await db.loadHistory(name)).losses.map((p) => p.loss)).toEqual([5]);
    expect((await db.loadHistory()).losses.map((p) => p.loss)).toEqual([9]);
  });

  it('resumes with its own wallet, history and session after a reload', async () => {
    const dbName = freshDbName();
    const storage = memoryStorage();
    storage.setItem(TAB_WALLET_KEY, 'tab-0000abcd');
    const db = new UiDb(indexedDB, dbName);
    await db.saveHistory({ run: 'r1', losses: [{ round: 0, step: 1, loss: 4, at: 1 }], rewards: [] }, 'tab-0000abcd');
    await db.saveHistory({ run: 'r1', losses: [{ round: 0, step: 1, loss: 9, at: 1 }], rewards: [] });
    await db.saveSession({ contributing: true }, 'tab-0000abcd');
    const engine = new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: true }, { name: 'tab-0000abcd', address: OTHER, inUse: false }]);
    engine.answer('unlockWallet', ({ name }) => ({ name: name ?? 'default', address: name ? OTHER : ADDRESS }));
    const { store } = makeStore({ engine, dbName, tabWallet: sessionTabWallet(storage) });
    await store.getState().init();
    expect(store.getState()).toMatchObject({ screen: 'unlock', walletName: 'tab-0000abcd' });
    expect(store.getState().losses.map((p) => p.loss)).toEqual([4]);
    await store.getState().unlock('password2');
    await settle();
    expect(engine.callsOf('unlockWallet')).toEqual([{ password: 'password2', name: 'tab-0000abcd' }]);
    expect(store.getState().address).toBe(OTHER);
    expect(engine.callsOf('start')).toHaveLength(1); // carried on by itself
  });

  it('starts with the first wallet when the remembered one is gone, and without a memory at all', async () => {
    const storage = memoryStorage();
    storage.setItem(TAB_WALLET_KEY, 'tab-gone');
    const engine = new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
    const { store } = makeStore({ engine, tabWallet: sessionTabWallet(storage) });
    await store.getState().init();
    expect(store.getState().walletName).toBe(DEFAULT_WALLET);
    await store.getState().unlock('password1');
    expect(engine.callsOf('unlockWallet')).toEqual([{ password: 'password1' }]); // as a single tab always did
  });

  it('unlocks another stored wallet that no tab uses', async () => {
    const { store, engine, storage } = await secondTab({ wallets: [{ name: 'default', address: ADDRESS, inUse: true }, { name: 'tab-12345678', address: OTHER, inUse: false }] });
    engine.answer('unlockWallet', ({ name }) => ({ name: name ?? 'default', address: name ? OTHER : ADDRESS }));
    await store.getState().contribute();
    expect(store.getState().notice?.kind).toBe('in-use');
    await store.getState().chooseTabWallet();
    await store.getState().unlockTabWallet('', 'password2');
    expect(store.getState().notice?.title).toBe('No wallet chosen');
    await store.getState().unlockTabWallet('tab-12345678', 'password2');
    await settle();
    expect(engine.callsOf('unlockWallet').at(-1)).toEqual({ password: 'password2', name: 'tab-12345678' });
    expect(storage.getItem(TAB_WALLET_KEY)).toBe('tab-12345678');
    expect(store.getState()).toMatchObject({ screen: 'main', walletName: 'tab-12345678', address: OTHER });
    expect(engine.callsOf('start')).toHaveLength(2);
  });

  it('names wallets apart and keeps the first wallet’s records where they were', () => {
    expect(newTabWalletName(() => 0.5)).toBe('tab-80000000');
    expect(newTabWalletName(() => 0)).toBe('tab-00000000');
    expect(walletRecordKey(DEFAULT_WALLET)).toBe('current'); // the layout before several wallets: no migration
    expect(walletRecordKey('tab-80000000')).toBe('wallet:tab-80000000');
  });
});

describe('its views', () => {
  const click = async (el: HTMLElement) => {
    await act(async () => {
      fireEvent.click(el);
      await settle();
    });
  };

  it('goes from the banner’s button to a new wallet for this tab, listing only wallets not in use', async () => {
    const { store } = await secondTab({ wallets: [{ name: 'default', address: ADDRESS, inUse: true }, { name: 'tab-1', address: OTHER, inUse: false }, { name: 'tab-2', address: '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy', inUse: true }] });
    await store.getState().contribute();
    renderWith(store);
    expect(screen.getByRole('alert').textContent).toMatch(/already contributing in another tab/);
    await click(screen.getByRole('button', { name: 'Use another wallet in this tab' }));
    expect(screen.getByRole('heading', { name: 'A wallet for this tab' })).toBeTruthy();
    const others = screen.getAllByRole('radio') as HTMLInputElement[];
    expect(others.map((r) => r.value)).toEqual(['tab-1']); // not the tab's own, not one in use
    expect(others[0].checked).toBe(true);
    expect(screen.getByLabelText('Password of that wallet')).toBeTruthy();

    await click(screen.getByRole('button', { name: 'Create a wallet for this tab' }));
    const words = within(screen.getByRole('list', { name: 'Your recovery words' })).getAllByRole('listitem');
    expect(words).toHaveLength(12);
    fireEvent.change(screen.getByLabelText('Password for this wallet'), { target: { value: 'password2' } });
    fireEvent.change(screen.getByLabelText('Password again'), { target: { value: 'password2' } });
    await click(screen.getByRole('button', { name: 'Save and contribute' }));
    expect(screen.queryByRole('list', { name: 'Your recovery words' })).toBeNull(); // shown once
    expect(screen.getByRole('heading', { name: 'Contribute' })).toBeTruthy();
  });

  it('tells a reloaded tab which wallet it unlocks, with no import over the first wallet', async () => {
    const storage = memoryStorage();
    storage.setItem(TAB_WALLET_KEY, 'tab-1');
    const engine = new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: true }, { name: 'tab-1', address: OTHER, inUse: false }]);
    const { store } = makeStore({ engine, tabWallet: sessionTabWallet(storage) });
    await store.getState().init();
    renderWith(store);
    expect(screen.getByText('This tab contributes with its own wallet, 5FHneW…94ty.')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Import from my words' })).toBeNull();
    await click(screen.getByRole('button', { name: 'Use another wallet' }));
    expect(screen.getByRole('heading', { name: 'A wallet for this tab' })).toBeTruthy();
    await click(screen.getByRole('button', { name: 'Back' }));
    expect(screen.getByRole('heading', { name: 'Welcome back' })).toBeTruthy();
  });
});
