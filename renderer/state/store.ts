// All of the UI's state, behind one zustand store, split by concern into slices (one file
// each, as Excalidraw splits its store): notices.ts (the banner, the busy flag), wallet.ts
// (this tab's wallet, the first run's wallet steps), network.ts (the run chosen, the GPU
// check), training.ts (contribute, pause, the live status), history.ts (losses, rewards, the
// log), settings.ts, runs.ts (the known runs, the swarm's progress), tab-wallet.ts (a second
// tab's own wallet) and, in the desktop app, desktop.ts, which replaces the actions that go to
// the main process there. Components read the store with useApp(selector) and change it only
// through its actions. The platform comes in through createAppStore's arguments (the engine
// worker, IndexedDB, the local coordinator's address, the desktop app's window.tessera), so
// tests drive the same store with scripted ones.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { TesseraDesktopApi } from '../../electron/contract.ts';
import type { Engine } from '../engine/client.ts';
import { DEFAULT_WALLET, type UiDb } from './db.ts';
import { DESKTOP_STARTING, desktopActions, type DesktopState } from './desktop.ts';
import { historySlice, historyStarting, type HistoryState } from './history.ts';
import { settingsNotLoadedNotice } from './human.ts';
import { networkSlice, networkStarting, type NetworkActions, type NetworkState } from './network.ts';
import { busyRunner, noticesActions, noticesStarting, type NoticesActions, type NoticesState } from './notices.ts';
import type { RunShape } from './run-info.ts';
import { runsActions, runsStarting, type RunsActions, type RunsContext, type RunsState } from './runs.ts';
import { settingsActions, settingsStarting, type SettingsActions, type SettingsState } from './settings.ts';
import { tabWalletActions, type TabWalletActions, type TabWalletMemory } from './tab-wallet.ts';
import { trainingSlice, trainingStarting, type TrainingActions, type TrainingState } from './training.ts';
import { walletActions, walletStarting, type WalletActions, type WalletState } from './wallet.ts';

export type { LogLine } from './history.ts';

export type Screen = 'loading' | 'welcome' | 'create-show' | 'create-confirm' | 'password' | 'import' | 'unlock' | 'network' | 'gpu' | 'main' | 'tab-wallet' | 'tab-create';

export interface AppState extends NoticesState, WalletState, NetworkState, TrainingState, HistoryState, SettingsState, RunsState {
  screen: Screen;
  /** In the desktop app's UI window: the main process's status, settings and secret storage; null in a browser tab. */
  desktop: DesktopState | null;
}

export interface AppActions extends NoticesActions, WalletActions, NetworkActions, TrainingActions, SettingsActions, RunsActions, TabWalletActions {
  /** Loads the settings, the wallets and this wallet's history, and shows the first screen. */
  init(): Promise<void>;
}

export type AppStore = StoreApi<AppState & AppActions>;

export interface StoreDeps {
  engine: Engine;
  db: UiDb;
  /** The embedded coordinator's ws:// URL (GET /local.json from `npm run web`), or null. */
  localCoordinator(): Promise<string | null>;
  /** Model, batch and sequence length of the run at a coordinator (its GET /run), or null when it cannot be read. */
  runShape?(coordinator: string): Promise<RunShape | null>;
  /** fetch for the known-runs list (tests pass their own). */
  fetchList?: typeof fetch;
  /** The swarm's progress from a coordinator's GET /status, where the contributor's events lack it. */
  swarmProgress?: RunsContext['swarmProgress'];
  /** The clock (tests pass their own). */
  now?: () => number;
  /** Which wallet this browser tab chose (sessionStorage: a reload keeps it, another tab does not); absent in the desktop app. */
  tabWallet?: TabWalletMemory;
  /** window.tessera in the desktop app's UI window; absent in a browser tab. */
  desktop?: TesseraDesktopApi;
}

/** What every slice is given: the platform, the one store's get and set, the clock, the busy runner. */
export interface SliceContext {
  deps: StoreDeps;
  get(): AppState & AppActions;
  set(patch: Partial<AppState>): void;
  now(): number;
  /** Runs one engine call with the busy flag set; a failure becomes the notice. */
  busy<T>(work: () => Promise<T>): Promise<T | undefined>;
}

export function createAppStore(deps: StoreDeps): AppStore {
  return createStore<AppState & AppActions>()((set, get) => {
    const now = deps.now ?? (() => Date.now());
    const c: SliceContext = { deps, get, set, now, busy: busyRunner(set) };
    const history = historySlice(c);
    const network = networkSlice(c);
    const training = trainingSlice({ ...c, log: history.log, coordinatorUrl: network.coordinatorUrl });
    const runs = runsActions({ db: deps.db, fetch: deps.fetchList, swarmProgress: deps.swarmProgress, coordinatorUrl: network.coordinatorUrl, now, get, set });

    // Each event: the live status first, then its log line, then each slice's part of it.
    deps.engine.onEvent((e) => {
      training.fold(e);
      history.logEvent(e);
      runs.onEvent(e);
      history.onEvent(e);
      training.onEvent(e);
    });

    const base: AppState & AppActions = {
      screen: 'loading',
      desktop: null,
      ...noticesStarting(),
      ...walletStarting(),
      ...networkStarting(),
      ...trainingStarting(),
      ...historyStarting(),
      ...settingsStarting(),
      ...runsStarting(),

      async init() {
        let settings = get().settings;
        try {
          settings = await deps.db.loadSettings();
        } catch (e) {
          set({ notice: settingsNotLoadedNotice((e as Error).message) });
        }
        const [wallets, local] = await Promise.all([deps.engine.call('listWallets', {}).catch(() => []), deps.localCoordinator().catch(() => null)]);
        // A reloaded tab keeps the wallet it chose; any other starts with the browser's first.
        const remembered = deps.tabWallet?.load() ?? null;
        const walletName = remembered && wallets.some((w) => w.name === remembered) ? remembered : DEFAULT_WALLET;
        const { losses, rewards } = await history.read(walletName);
        set({ settings, walletName, wallets, losses, rewards, localCoordinator: local, screen: wallets.length > 0 ? 'unlock' : 'welcome' });
        await runs.loadKnownRuns();
      },
      ...noticesActions(set),
      ...walletActions(c),
      ...network.actions,
      ...training.actions,
      ...settingsActions({ ...c, log: history.log, readRun: network.readRun, applyPause: training.applyPause }),
      refreshKnownRuns: runs.refreshKnownRuns,
      joinKnownRun: runs.joinKnownRun,
      readSwarmProgress: runs.readSwarmProgress,
      ...tabWalletActions({ engine: deps.engine, memory: deps.tabWallet, get, set, busy: c.busy, useWalletHistory: history.useWalletHistory }),
    };
    if (!deps.desktop) return base;
    const desktop = desktopActions({ api: deps.desktop, engine: deps.engine, db: deps.db, get, set, busy: c.busy, persistHistory: history.persistHistory, now, base });
    return { ...base, ...desktop, desktop: { ...DESKTOP_STARTING } };
  });
}
