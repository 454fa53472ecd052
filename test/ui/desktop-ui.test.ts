// @vitest-environment happy-dom
// The UI window of the desktop app: the same store and views over a recording double of
// window.tessera. Training goes through the main process (the page's own engine never starts),
// its status is the live status and the pause reasons are shown in words, the training
// settings are the main process's, and the wallet secret goes to its keychain store — with the
// plain-text warning and an explicit "Store it anyway". A browser tab is left as it was.
import { act, cleanup, fireEvent, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineCalls } from '../../renderer/engine/messages.ts';
import { UiDb } from '../../renderer/state/db.ts';
import { createAppStore, type StoreDeps } from '../../renderer/state/store.ts';
import { FakeDesktopApi } from './desktop-doubles.ts';
import { ADDRESS, MNEMONIC, ScriptedEngine, freshDbName, makeStore, settle, standing } from './fakes.ts';
import { renderWith } from './render.tsx';

afterEach(() => cleanup());

function setUp(o: { secret?: string | null; wallets?: boolean; swarmProgress?: StoreDeps['swarmProgress']; runShape?: StoreDeps['runShape'] } = {}) {
  const api = new FakeDesktopApi();
  api.secret = o.secret === undefined ? MNEMONIC : o.secret;
  const engine = new ScriptedEngine();
  engine.answer('useSecret', { name: 'default', address: ADDRESS });
  engine.answer('unlockWallet', ({ reveal }: EngineCalls['unlockWallet']['arg']) => ({ name: 'default', address: ADDRESS, ...(reveal ? { secret: MNEMONIC } : {}) }));
  if (o.wallets) engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
  const db = new UiDb(indexedDB, freshDbName());
  const store = createAppStore({ engine, db, localCoordinator: async () => null, desktop: api, swarmProgress: o.swarmProgress, runShape: o.runShape });
  return { api, engine, db, store };
}

const click = async (el: HTMLElement) => {
  await act(async () => {
    fireEvent.click(el);
    await settle();
  });
};

describe('the desktop UI window', () => {
  it('starts unlocked from the saved secret, with the main process\'s settings', async () => {
    const { api, engine, store } = setUp();
    await store.getState().init();
    expect(engine.callsOf('useSecret')).toEqual([{ secret: MNEMONIC }]);
    expect(store.getState()).toMatchObject({ screen: 'main', address: ADDRESS });
    expect(store.getState().settings).toMatchObject({ network: 'custom', coordinatorUrl: 'wss://run.example.org/ws', dutyCycle: 100, pauseOnBattery: true });
    expect(store.getState().desktop).toMatchObject({ secretSaved: true, settings: { gpuMode: 'auto' } });
    expect(api.methods()).toEqual(expect.arrayContaining(['onStatus', 'getStatus', 'getSettings', 'getCapabilities', 'loadWalletSecret']));
  });

  it('drives Contribute, Pause, Resume and Finish through the main process and shows its status', async () => {
    const { api, engine, store } = setUp();
    await store.getState().init();
    await settle(); // the GPU check of the page (Contribute waits for a working GPU)
    renderWith(store);
    await click(screen.getByRole('button', { name: 'Contribute' }));
    expect(api.callsOf('contribute')).toHaveLength(1);
    expect(engine.callsOf('start')).toEqual([]); // the training window trains, not this page
    expect(screen.queryByRole('button', { name: 'Stop now' })).toBeNull();

    await act(async () => api.publish({ engine: { phase: 'training', round: 3, step: 2, loss: 5.125, tokensPerSecond: 900 } }));
    expect(screen.getByTestId('activity').textContent).toBe('Training');
    expect(screen.getByTestId('round').textContent).toBe('3');
    expect(screen.getByTestId('engine-report').textContent).toBe('training, round 3 step 2');
    expect(store.getState().losses.map((p) => p.loss)).toEqual([5.125]);

    await click(screen.getByRole('button', { name: 'Pause' }));
    expect(api.callsOf('pause')).toHaveLength(1);
    await act(async () => api.publish({ pauseReasons: ['user-paused', 'on-battery', 'user-active'], tray: 'paused' }));
    expect(screen.getByRole('status').textContent).toBe('Training is held: paused by you, on battery, you are using the computer.');
    expect(screen.getByTestId('tray-state').textContent).toBe('Paused');
    await click(screen.getByRole('button', { name: 'Resume' }));
    expect(api.callsOf('resume')).toHaveLength(1);
    await click(screen.getByRole('button', { name: 'Finish this round, then stop' }));
    expect(api.callsOf('finishRoundThenStop')).toHaveLength(1);
    expect(screen.getByRole('button', { name: 'Stopping after this round…' })).toBeTruthy();

    await act(async () => api.publish({ restarts: 2, gpu: { plan: 'Vulkan on (X11)', adapterFound: false, adapterName: null, message: 'No WebGPU adapter: try GPU mode "Vulkan through X11".' }, error: 'no adapter', tray: 'error' }));
    expect(screen.getByTestId('restarts').textContent).toBe('2');
    expect(screen.getByTestId('gpu-support').textContent).toMatch(/Vulkan on \(X11\)\. No WebGPU adapter/);
    expect(screen.getByRole('alert').textContent).toMatch(/Training stopped.*No WebGPU adapter/);
    expect(engine.callsOf('setPaused')).toEqual([]);
  });

  it('writes the training settings to the main process (a refusal is shown), the log level to IndexedDB', async () => {
    const { api, db, store } = setUp();
    await store.getState().init();
    await store.getState().updateSettings({ dutyCycle: 40, schedule: { enabled: true, from: '23:00', to: '06:00' } });
    expect(api.callsOf('updateSettings')).toEqual([{ gpuDutyCyclePercent: 40, schedule: { enabled: true, windows: [{ days: [0, 1, 2, 3, 4, 5, 6], start: '23:00', end: '06:00' }] } }]);
    expect(store.getState().settings).toMatchObject({ dutyCycle: 40, schedule: { enabled: true, from: '23:00', to: '06:00' } });
    await store.getState().updateSettings({ dutyCycle: 5 });
    expect(store.getState().notice?.text).toMatch(/gpuDutyCyclePercent/);
    expect(store.getState().settings.dutyCycle).toBe(40);
    await store.getState().updateSettings({ logLevel: 'debug' });
    expect(api.callsOf('updateSettings')).toHaveLength(2);
    expect((await db.loadSettings()).logLevel).toBe('debug');
    await store.getState().updateDesktopSettings({ pauseWhenUserActive: true, userIdleMinutes: 10 });
    expect(api.settings).toMatchObject({ pauseWhenUserActive: true, userIdleMinutes: 10 });
  });

  it('keeps the new wallet\'s secret in the keychain; with only the plain-text backend, after "Store it anyway"', async () => {
    const { api, store } = setUp({ secret: null });
    api.storage = { available: true, backend: 'basic_text', warning: 'No system keyring was found.' };
    await store.getState().init();
    expect(store.getState().screen).toBe('welcome');
    await store.getState().beginCreate();
    store.getState().wroteDownWords();
    store.getState().confirmWords(store.getState().draft!.confirm.map((p) => MNEMONIC.split(' ')[p]));
    await store.getState().choosePassword('long enough', 'long enough');
    expect(api.callsOf('saveWalletSecret')).toEqual([]); // not without the user's go-ahead
    expect(store.getState().notice?.text).toMatch(/No system keyring.*Store it anyway/);
    await store.getState().contribute();
    expect(api.callsOf('contribute')).toEqual([]);
    expect(store.getState().notice?.title).toBe('The wallet secret is not saved');

    store.getState().enterMain();
    renderWith(store);
    await click(screen.getByRole('button', { name: 'Settings' }));
    expect(screen.getByText('No system keyring was found.')).toBeTruthy();
    await click(screen.getByRole('button', { name: 'Store it anyway' }));
    expect(api.callsOf('updateSettings')).toEqual([{ allowPlainTextSecrets: true }]);
    expect(api.secret).toBe(MNEMONIC);
    expect(screen.getByTestId('secret-storage').textContent).toBe('Wallet secret: saved (basic_text)');
    await store.getState().contribute();
    expect(api.callsOf('contribute')).toHaveLength(1);
  });

  it('an existing wallet unlocked with its password hands its secret to the keychain', async () => {
    const { api, engine, store } = setUp({ secret: null, wallets: true });
    await store.getState().init();
    expect(store.getState().screen).toBe('unlock');
    await store.getState().unlock('long enough');
    expect(engine.callsOf('unlockWallet')).toEqual([{ password: 'long enough', reveal: true }]);
    expect(api.secret).toBe(MNEMONIC);
    expect(store.getState()).toMatchObject({ screen: 'main', desktop: { secretSaved: true } });
  });

  it('says what the run is and reads the swarm’s tokens from the coordinator when the training window reports another round', async () => {
    const asked: string[] = [];
    const { api, store } = setUp({
      runShape: async () => ({ model: 'tiny', batch: 2, seq: 32, innerSteps: 3, name: 'Desktop demo', description: 'A run.', owner: 'Lab', rewardUnit: 'credits', plannedRounds: 20 }),
      swarmProgress: async (url) => (asked.push(url), { round: 4, tokensTrained: 5120, pendingRounds: 0 }),
    });
    await store.getState().init();
    await settle();
    renderWith(store);
    expect(screen.getByTestId('run-name').textContent).toBe('Desktop demo');
    await act(async () => api.publish({ intent: 'contributing', engine: { phase: 'training', round: 4, step: 1, loss: 5, tokensPerSecond: 900 } }));
    await settle();
    expect(asked).toEqual(['wss://run.example.org/ws']);
    expect(screen.getByTestId('run-progress').textContent).toBe('round 4 of 20; 5.1 thousand tokens trained by everyone');
    expect(screen.getByTestId('your-part').textContent).toMatch(/64 tokens trained on this device/);
    expect(screen.getByTestId('speed').textContent).toBe('900 tokens/s');
  });

  it('reads its rewards from the coordinator at start and when the training window reports another round', async () => {
    const { api, engine, store } = setUp();
    engine.answer('readStanding', { ...standing(2, 0.25), lastRound: 2 });
    await store.getState().init();
    await settle();
    expect(engine.callsOf('readStanding')).toEqual([{ coordinator: 'wss://run.example.org/ws' }]);
    expect(store.getState().rewards).toEqual([expect.objectContaining({ round: 2, totalReward: 0.25, rank: 1, of: 2 })]);
    engine.answer('readStanding', { ...standing(3, 0.5), lastRound: 3 });
    await act(async () => api.publish({ intent: 'contributing', engine: { phase: 'training', round: 4, step: 1, loss: 5, tokensPerSecond: 900 } }));
    await act(async () => api.publish({ engine: { phase: 'training', round: 4, step: 2, loss: 4.9, tokensPerSecond: 900 } }));
    await settle();
    expect(engine.callsOf('readStanding')).toHaveLength(2); // once per round, not per step
    expect(store.getState().rewards.map((r) => [r.round, r.totalReward])).toEqual([[2, 0.25], [3, 0.5]]);
  });

  it('a browser tab (no window.tessera) keeps its own engine, Stop now, and no desktop panels', async () => {
    const { store, engine } = makeStore();
    await store.getState().init();
    await store.getState().chooseNetwork('local');
    store.getState().enterMain();
    renderWith(store);
    await click(screen.getByRole('button', { name: 'Contribute' }));
    expect(engine.callsOf('start')).toEqual([{ coordinator: 'ws://127.0.0.1:9999/ws', dutyCycle: 60, paused: false }]);
    expect(store.getState().desktop).toBeNull();
    expect(screen.getByRole('button', { name: 'Stop now' })).toBeTruthy();
    expect(screen.queryByTestId('tray-state')).toBeNull();
    await click(screen.getByRole('button', { name: 'Settings' }));
    expect(screen.getByLabelText('Pause while this tab is hidden')).toBeTruthy();
    expect(screen.queryByRole('heading', { name: 'Desktop app' })).toBeNull();
  });
});
