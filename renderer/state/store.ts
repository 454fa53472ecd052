// All of the UI's state, behind one zustand store: screens of the first run, the wallet, the
// GPU check, settings, the live run status and the histories. Components read it with
// useApp(selector) and change it only through its actions. The platform comes in through
// createAppStore's arguments (the engine worker, IndexedDB, the local coordinator's address,
// the desktop app's window.tessera), so tests drive the same store with scripted ones. In the
// desktop app desktop.ts replaces the actions that go to the main process there.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { DesktopSettings, TesseraDesktopApi } from '../../electron/contract.ts';
import type { Engine } from '../engine/client.ts';
import type { EngineEvent, GpuReport, StoredWallet } from '../engine/messages.ts';
import { DEFAULT_SETTINGS, DEFAULT_WALLET, type LogLevel, type LossPoint, type RewardPoint, type Settings, type UiDb, LOG_LEVELS, HISTORY_LIMIT } from './db.ts';
import { DESKTOP_STARTING, desktopActions, type DesktopState } from './desktop.ts';
import { blockedPeerNotice, noticeFor, noticeOfError, retryNotice, type Notice } from './human.ts';
import { logLineOf, rewardPointOf } from './event-log.ts';
import { DEFAULT_RUN } from '../../src/protocol/run-config.ts';
import { IDLE, foldEvent, type RunStatus } from './run-status.ts';
import { runInfoOf, type RunShape } from './run-info.ts';
import { runsActions, runsStarting, type RunsActions, type RunsContext, type RunsState } from './runs.ts';
import { tabWalletActions, type TabWalletMemory } from './tab-wallet.ts';
import { MIN_PASSWORD_CHARS, newPasswordProblem } from '../../src/wallet/password-rule.ts';
import { checkConfirmation, coordinatorSocketUrl, pickConfirmation, shouldPause, type Environment } from './rules.ts';

export type Screen = 'loading' | 'welcome' | 'create-show' | 'create-confirm' | 'password' | 'import' | 'unlock' | 'network' | 'gpu' | 'main' | 'tab-wallet' | 'tab-create';

export interface LogLine {
  at: number;
  level: LogLevel;
  text: string;
}

export interface AppState extends RunsState {
  screen: Screen;
  busy: boolean;
  notice: Notice | null;
  address: string | null;
  /** The keystore name of this tab's wallet: 'default', or a wallet of its own while the default contributes in another tab. */
  walletName: string;
  /** The wallets of this browser, as last listed (at start, and when this tab chooses another). */
  wallets: StoredWallet[];
  /** During wallet creation or import: the words (never stored unencrypted) and, to create, which to confirm. */
  draft: { mnemonic: string; address: string | null; confirm: number[]; imported: boolean } | null;
  gpu: GpuReport | null;
  /** Inner steps per round of the chosen run, when its coordinator said. */
  innerSteps: number | null;
  settings: Settings;
  /** ws:// address of the coordinator `npm run web` embeds, or null when there is none. */
  localCoordinator: string | null;
  env: Environment;
  userPaused: boolean;
  run: RunStatus;
  losses: LossPoint[];
  rewards: RewardPoint[];
  log: LogLine[];
  /** In the desktop app's UI window: the main process's status, settings and secret storage; null in a browser tab. */
  desktop: DesktopState | null;
}

export interface AppActions extends RunsActions {
  init(): Promise<void>;
  beginCreate(): Promise<void>;
  wroteDownWords(): void;
  showWordsAgain(): void;
  confirmWords(answers: string[]): void;
  beginImport(): void;
  submitImport(mnemonic: string): void;
  choosePassword(password: string, repeat: string): Promise<void>;
  unlock(password: string): Promise<void>;
  backToWelcome(): void;
  chooseNetwork(network: 'local' | 'custom', url?: string): Promise<void>;
  checkGpu(): Promise<void>;
  enterMain(): void;
  contribute(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  finishRoundThenStop(): Promise<void>;
  stopNow(): Promise<void>;
  updateSettings(patch: Partial<Settings>): Promise<void>;
  setEnvironment(patch: Partial<Environment>): void;
  dismissNotice(): void;
  /** A browser tab whose wallet contributes in another tab: choose or create a wallet for this tab. */
  chooseTabWallet(): Promise<void>;
  createTabWallet(): Promise<void>;
  /** Saves the new wallet of this tab (its words shown once, on the same screen) and contributes with it. */
  saveTabWallet(password: string, repeat: string): Promise<void>;
  /** Unlocks another stored wallet for this tab and contributes with it. */
  unlockTabWallet(name: string, password: string): Promise<void>;
  cancelTabWallet(): void;
  /** Desktop app only: settings that exist only there (start at login, idle pause, GPU mode…). */
  updateDesktopSettings(patch: Partial<Omit<DesktopSettings, 'schemaVersion'>>): Promise<void>;
  /** Desktop app only: the user read the plain-text warning and stores the wallet secret anyway. */
  allowPlainTextSecret(): Promise<void>;
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

/** What the GPU check sizes when the run's own shape is unknown: the local run's. */
const DEFAULT_SHAPE: RunShape = { model: 'tiny', batch: 2, seq: 32 };
const LOG_LIMIT = 300;

export function createAppStore(deps: StoreDeps): AppStore {
  const now = deps.now ?? (() => Date.now());
  let historyRun = '';
  /** Each peer's last link state, so a link redialled every second is logged once, not each time. */
  const linkState = new Map<string, string>();
  let saveQueue: Promise<void> = Promise.resolve();

  const store = createStore<AppState & AppActions>()((set, get) => {
    /** Runs one engine call with the busy flag set; a failure becomes the notice. */
    const busy = async <T>(work: () => Promise<T>): Promise<T | undefined> => {
      set({ busy: true, notice: null });
      try {
        return await work();
      } catch (e) {
        set({ notice: noticeOfError(e) });
        return undefined;
      } finally {
        set({ busy: false });
      }
    };
    const log = (level: LogLevel, text: string) => {
      if (LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(get().settings.logLevel)) return;
      set({ log: [...get().log, { at: now(), level, text }].slice(-LOG_LIMIT) });
    };
    const persistHistory = () => {
      const { losses, rewards } = get();
      const wallet = get().walletName;
      saveQueue = saveQueue.then(() => deps.db.saveHistory({ run: historyRun, losses, rewards }, wallet)).catch((e: Error) => log('warn', `could not save the history: ${e.message}`));
    };
    const applyPause = async () => {
      const s = get();
      const paused = shouldPause(s.settings, s.env, s.userPaused, new Date(now()));
      if (s.run.activity !== 'idle' && paused !== s.run.paused) await deps.engine.call('setPaused', { paused }).catch(() => {});
      return paused;
    };
    const coordinatorUrl = (): string | null => {
      const s = get().settings;
      return s.network === 'local' ? get().localCoordinator : coordinatorSocketUrl(s.coordinatorUrl);
    };

    /** The chosen run from its coordinator (GET /run): its shape and what it is; null when unknown. */
    const readRun = async () => {
      const url = coordinatorUrl();
      const known = url ? await deps.runShape?.(url).catch(() => null) : null;
      set({ innerSteps: known?.innerSteps ?? null, runInfo: known ? runInfoOf(known) : null });
      return known ?? null;
    };

    const onEvent = (e: EngineEvent) => {
      const s = get();
      set({ run: foldEvent(s.run, e) });
      const line = logLineOf(e, get().runInfo?.rewardUnit ?? DEFAULT_RUN.rewardUnit);
      if (line) log(line.level, line.text);
      runs.onEvent(e);
      switch (e.event) {
        case 'joined':
          if (historyRun !== e.run) {
            // Another run: its losses and rewards are not this history's.
            if (historyRun !== '') set({ losses: [], rewards: [] });
            historyRun = e.run;
            persistHistory();
          }
          if (get().notice?.kind === 'unreachable') set({ notice: null });
          break;
        case 'step':
          set({ losses: [...get().losses, { round: e.round, step: e.step, loss: e.loss, at: now() }].slice(-HISTORY_LIMIT) });
          persistHistory();
          break;
        case 'reward':
          set({ rewards: [...get().rewards.filter((r) => r.round !== e.round), rewardPointOf(e.round, e.standing)].slice(-HISTORY_LIMIT) });
          persistHistory();
          break;
        case 'retrying':
          set({ notice: retryNotice(e.attempt, e.inMs, e.reason) });
          log('warn', `coordinator unreachable: ${e.reason}; retry ${e.attempt} in ${e.inMs} ms`);
          break;
        case 'link':
          if (!e.up && get().run.blocked[e.peer]) set({ notice: blockedPeerNotice(e.peer, e.reason) });
          if (linkState.get(e.peer) !== (e.up ? 'up' : e.reason)) log(e.up ? 'info' : 'warn', `peer ${e.peer} ${e.up ? 'linked' : `unlinked: ${e.reason}`}`);
          linkState.set(e.peer, e.up ? 'up' : e.reason);
          break;
        case 'ended':
          if (e.error) {
            set({ notice: noticeFor(e.error) });
            // Ended by a failure: a reload should not walk into it again by itself.
            void deps.db.saveSession({ contributing: false }, get().walletName).catch(() => {});
          }
          log(e.error ? 'error' : 'info', e.error ? `stopped: ${e.error.message}` : 'stopped');
          break;
        default:
          break;
      }
    };
    deps.engine.onEvent(onEvent);

    const afterWallet = async (address: string) => {
      set({ address, draft: null });
      const session = await deps.db.loadSession(get().walletName).catch(() => ({ contributing: false }));
      // A reload while contributing: carry on where the last page left off (the engine
      // resumes from its checkpoint in IndexedDB).
      if (session.contributing) await get().contribute();
    };

    /** This tab's wallet is now `name`: its own history (and, in the worker, its own checkpoints). */
    const useWalletHistory = async (name: string) => {
      await saveQueue;
      const history = await deps.db.loadHistory(name).catch(() => ({ run: '', losses: [], rewards: [] }));
      historyRun = history.run;
      linkState.clear();
      set({ walletName: name, losses: history.losses, rewards: history.rewards, run: IDLE });
    };

    const runs = runsActions({ db: deps.db, fetch: deps.fetchList, swarmProgress: deps.swarmProgress, coordinatorUrl, now, get, set });
    const notDesktop = async () => set({ notice: { kind: 'input', severity: 'error', title: 'Only in the desktop app', text: 'This setting belongs to the Tessera desktop app.' } });
    const base: AppState & AppActions = {
      screen: 'loading',
      busy: false,
      notice: null,
      address: null,
      walletName: DEFAULT_WALLET,
      wallets: [],
      draft: null,
      gpu: null,
      innerSteps: null,
      settings: structuredClone(DEFAULT_SETTINGS) as Settings,
      localCoordinator: null,
      env: { hidden: false, onBattery: false },
      userPaused: false,
      run: IDLE,
      losses: [],
      rewards: [],
      log: [],
      desktop: null,
      ...runsStarting(),

      async init() {
        let settings = get().settings;
        try {
          settings = await deps.db.loadSettings();
        } catch (e) {
          set({ notice: { kind: 'settings', severity: 'warning', title: 'Settings not loaded', text: (e as Error).message } });
        }
        const [wallets, local] = await Promise.all([deps.engine.call('listWallets', {}).catch(() => []), deps.localCoordinator().catch(() => null)]);
        // A reloaded tab keeps the wallet it chose; any other starts with the browser's first.
        const remembered = deps.tabWallet?.load() ?? null;
        const walletName = remembered && wallets.some((w) => w.name === remembered) ? remembered : DEFAULT_WALLET;
        const history = await deps.db.loadHistory(walletName).catch(() => ({ run: '', losses: [], rewards: [] }));
        historyRun = history.run;
        set({ settings, walletName, wallets, losses: history.losses, rewards: history.rewards, localCoordinator: local, screen: wallets.length > 0 ? 'unlock' : 'welcome' });
        await runs.loadKnownRuns();
      },

      async beginCreate() {
        const r = await busy(() => deps.engine.call('generateMnemonic', {}));
        if (r) set({ draft: { mnemonic: r.mnemonic, address: r.address, confirm: pickConfirmation(12, 3), imported: false }, screen: 'create-show' });
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
        if (!checkConfirmation(d.mnemonic, d.confirm, answers)) {
          set({ notice: { kind: 'mnemonic-mismatch', severity: 'error', title: 'Those words do not match', text: 'Check your written copy: the words must be the ones shown, at those positions. "Show the words again" brings them back.' } });
          return;
        }
        set({ screen: 'password', notice: null });
      },
      beginImport() {
        set({ screen: 'import', notice: null, draft: null });
      },
      submitImport(mnemonic) {
        const words = mnemonic.trim().split(/\s+/).filter(Boolean);
        if (![12, 15, 18, 21, 24].includes(words.length)) {
          set({ notice: { kind: 'input', severity: 'error', title: 'Not a mnemonic', text: `A mnemonic has 12 or 24 words (15, 18, 21 also work); this has ${words.length}.` } });
          return;
        }
        set({ draft: { mnemonic: words.join(' '), address: null, confirm: [], imported: true }, screen: 'password', notice: null });
      },
      async choosePassword(password, repeat) {
        const d = get().draft;
        if (!d) return;
        if (password !== repeat) return set({ notice: { kind: 'input', severity: 'error', title: 'The passwords differ', text: 'Type the same password twice.' } });
        if (newPasswordProblem(password)) return set({ notice: { kind: 'input', severity: 'error', title: 'Password too short', text: `Use at least ${MIN_PASSWORD_CHARS} characters: it encrypts your wallet in this browser.` } });
        const w = await busy(() => deps.engine.call('saveWallet', { mnemonic: d.mnemonic, password, overwrite: d.imported }));
        if (!w) return;
        set({ address: w.address, draft: null, screen: 'network' });
      },
      async unlock(password) {
        const name = get().walletName;
        const w = await busy(() => deps.engine.call('unlockWallet', name === DEFAULT_WALLET ? { password } : { password, name }));
        if (!w) return;
        set({ screen: 'main' });
        void get().checkGpu();
        await afterWallet(w.address);
      },
      backToWelcome() {
        set({ screen: 'welcome', draft: null, notice: null });
      },
      async chooseNetwork(network, url = '') {
        if (network === 'custom' && !coordinatorSocketUrl(url)) {
          return set({ notice: { kind: 'input', severity: 'error', title: 'Not a coordinator address', text: 'Enter an address like ws://host:8787/ws or http://host:8787 (https and wss work too).' } });
        }
        if (network === 'local' && !get().localCoordinator) {
          return set({ notice: { kind: 'input', severity: 'error', title: 'No local coordinator here', text: 'This page was not served by `npm run web`, so there is no local run: enter a coordinator address instead.' } });
        }
        await get().updateSettings({ network, coordinatorUrl: network === 'custom' ? url.trim() : get().settings.coordinatorUrl });
        set({ screen: 'gpu', notice: null });
        await get().checkGpu();
      },
      async checkGpu() {
        const { model, batch, seq } = (await readRun()) ?? DEFAULT_SHAPE;
        const gpu = await deps.engine.call('checkGpu', { model, batch, seq }).catch((e: unknown) => {
          set({ notice: noticeOfError(e) });
          return null;
        });
        set({ gpu });
        if (gpu && !gpu.available) set({ notice: noticeFor({ kind: 'no-webgpu', message: gpu.problem ?? 'no WebGPU adapter' }) });
      },
      enterMain() {
        set({ screen: 'main', notice: null });
      },

      async contribute() {
        const url = coordinatorUrl();
        if (!url) return set({ notice: { kind: 'input', severity: 'error', title: 'No coordinator chosen', text: 'Choose a network in Settings: the local run of `npm run web`, or a coordinator address.' } });
        const paused = shouldPause(get().settings, get().env, get().userPaused, new Date(now()));
        const r = await busy(() => deps.engine.call('start', { coordinator: url, dutyCycle: get().settings.dutyCycle, paused }));
        if (!r) return;
        set({ run: { ...foldEvent(get().run, { event: 'connecting', url, attempt: 0 }), paused } });
        await deps.db.saveSession({ contributing: true }, get().walletName).catch(() => {});
      },
      async pause() {
        set({ userPaused: true });
        await applyPause();
      },
      async resume() {
        set({ userPaused: false });
        await applyPause();
      },
      async finishRoundThenStop() {
        set({ run: { ...get().run, stopAfterRound: true } });
        await deps.db.saveSession({ contributing: false }, get().walletName).catch(() => {});
        await busy(() => deps.engine.call('stop', { mode: 'after-round' }));
      },
      async stopNow() {
        await deps.db.saveSession({ contributing: false }, get().walletName).catch(() => {});
        set({ run: { ...get().run, activity: 'stopping' } });
        await busy(() => deps.engine.call('stop', { mode: 'now' }));
      },
      async updateSettings(patch) {
        const settings: Settings = { ...get().settings, ...patch, schedule: { ...get().settings.schedule, ...(patch.schedule ?? {}) } };
        set({ settings });
        await deps.db.saveSettings(settings).catch((e: Error) => log('warn', `could not save the settings: ${e.message}`));
        if (patch.dutyCycle !== undefined && get().run.activity !== 'idle') await deps.engine.call('setDutyCycle', { percent: settings.dutyCycle }).catch(() => {});
        // Another coordinator chosen in Settings: another run to describe (the first run's network step checks the GPU next anyway).
        if ((patch.network !== undefined || patch.coordinatorUrl !== undefined) && get().screen === 'main') void readRun();
        await applyPause();
      },
      setEnvironment(patch) {
        set({ env: { ...get().env, ...patch } });
        void applyPause();
      },
      dismissNotice() {
        set({ notice: null });
      },
      refreshKnownRuns: runs.refreshKnownRuns,
      joinKnownRun: runs.joinKnownRun,
      readSwarmProgress: runs.readSwarmProgress,
      ...tabWalletActions({ engine: deps.engine, memory: deps.tabWallet, get, set, busy, useWalletHistory }),
      updateDesktopSettings: notDesktop,
      allowPlainTextSecret: notDesktop,
    };
    if (!deps.desktop) return base;
    const desktop = desktopActions({ api: deps.desktop, engine: deps.engine, db: deps.db, get, set, busy, persistHistory, now, base });
    return { ...base, ...desktop, desktop: { ...DESKTOP_STARTING } };
  });
  return store;
}
