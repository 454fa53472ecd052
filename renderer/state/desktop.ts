// The store's actions in the desktop app's UI window (window.tessera): training runs in the
// shell's hidden training window, so Contribute, Pause, Resume and Finish go to the main
// process, whose status becomes the live status; the training settings are the main
// process's (ui-link.ts says why); the wallet secret goes to the OS keychain through it, so
// the training window can sign and the app unlocks without a password next time; the rewards
// are read from the coordinator (signed by the same hotkey). Part of the one store (store.ts
// calls desktopActions), split out by concern.
import type { DesktopSettings, DesktopStatus, SecretStorageInfo, TesseraDesktopApi } from '../../electron/contract.ts';
import { desktopPatchOf, runFromDesktop, uiSettingsFrom, type DesktopPatch } from '../desktop/ui-link.ts';
import type { Engine } from '../engine/client.ts';
import { HISTORY_LIMIT, type UiDb } from './db.ts';
import { rewardPointOf } from './event-log.ts';
import { DESKTOP_NOTICES } from './human.ts';
import type { AppActions, AppState } from './store.ts';

export interface DesktopState {
  status: DesktopStatus | null;
  settings: DesktopSettings | null;
  secretStorage: SecretStorageInfo | null;
  /** The wallet secret is in the main process's store: the training window can sign. */
  secretSaved: boolean;
  /** A secret waits for the user's go-ahead to be stored under the plain-text backend. */
  secretWaiting: boolean;
}

export interface DesktopContext {
  api: TesseraDesktopApi;
  engine: Engine;
  db: UiDb;
  get(): AppState & AppActions;
  set(patch: Partial<AppState>): void;
  busy<T>(work: () => Promise<T>): Promise<T | undefined>;
  persistHistory(): void;
  now(): number;
  /** The browser tab's actions, for what is the same here. */
  base: AppActions;
}

export function desktopActions(c: DesktopContext): Partial<AppActions> {
  const { api } = c;
  /** A secret not yet stored (waiting for the plain-text go-ahead); never put in the state. */
  let heldSecret: string | null = null;
  let lastStep = '';
  let lastError: string | null = null;
  let standingRound: number | null | undefined;
  let readingStanding = false;

  const patch = (p: Partial<DesktopState>) => c.set({ desktop: { ...(c.get().desktop ?? DESKTOP_STARTING), ...p } });

  /**
   * The rewards: training (and the coordinator's 'reward' messages) are in the training window,
   * so this window asks the coordinator itself, signed by the same hotkey, when it starts and
   * whenever the training window reports another round (a round is scored after it closes).
   */
  const readStanding = async () => {
    const url = c.get().desktop?.settings?.coordinatorUrl;
    if (readingStanding || !url || !c.get().address) return;
    readingStanding = true;
    try {
      const st = await c.engine.call('readStanding', { coordinator: url });
      if (!st) return;
      const point = rewardPointOf(st.lastRound, st);
      c.set({ rewards: [...c.get().rewards.filter((r) => r.round !== point.round), point].slice(-HISTORY_LIMIT), run: { ...c.get().run, standing: st } });
      c.persistHistory();
    } catch {
      // Unreachable or refusing for now: the next round asks again.
    } finally {
      readingStanding = false;
    }
  };

  const onStatus = (status: DesktopStatus) => {
    c.set({ run: runFromDesktop(c.get().run, status), userPaused: status.pauseReasons.includes('user-paused') });
    patch({ status });
    const e = status.engine;
    if (e && e.round !== null && e.step !== null && e.loss !== null && `${e.round}:${e.step}` !== lastStep) {
      lastStep = `${e.round}:${e.step}`;
      c.set({ losses: [...c.get().losses, { round: e.round, step: e.step, loss: e.loss, at: c.now() }].slice(-HISTORY_LIMIT) });
      c.persistHistory();
    }
    const round = e?.round ?? null;
    if (round !== standingRound && c.get().address) {
      standingRound = round;
      void readStanding();
      void c.get().readSwarmProgress();
    }
    if (status.error && status.error !== lastError) c.set({ notice: DESKTOP_NOTICES.trainingStopped(status.gpu.message ?? status.error) });
    lastError = status.error;
  };

  /** Runs one action of the main process and shows the status it answers with. */
  const act = async (call: () => Promise<DesktopStatus>) => {
    const status = await c.busy(call);
    if (status) onStatus(status);
  };

  const storeSecret = async (secret: string) => {
    const d = c.get().desktop;
    if (d?.secretStorage?.backend === 'basic_text' && !d.settings?.allowPlainTextSecrets) {
      heldSecret = secret;
      patch({ secretWaiting: true });
      c.set({ notice: DESKTOP_NOTICES.secretWaiting(d.secretStorage.warning ?? '') });
      return;
    }
    try {
      const info = await api.saveWalletSecret(secret);
      heldSecret = null;
      patch({ secretSaved: true, secretWaiting: false, secretStorage: info });
    } catch (e) {
      heldSecret = secret;
      patch({ secretWaiting: true });
      c.set({ notice: DESKTOP_NOTICES.secretNotSaved((e as Error).message) });
    }
  };

  const updateDesktopSettings = async (p: DesktopPatch): Promise<DesktopSettings | undefined> => {
    // The main process validates and rejects a bad field with a message naming it.
    const settings = await c.busy(() => api.updateSettings(p));
    if (!settings) return undefined;
    patch({ settings });
    c.set({ settings: uiSettingsFrom(settings, c.get().settings) });
    return settings;
  };

  return {
    async init() {
      api.onStatus(onStatus);
      const got = await Promise.all([api.getStatus(), api.getSettings(), api.getCapabilities()]).catch((e: Error) => {
        c.set({ notice: DESKTOP_NOTICES.noAnswer(e.message) });
        return null;
      });
      await c.base.init();
      if (!got) return;
      const [status, settings, capabilities] = got;
      patch({ settings, secretStorage: capabilities.secretStorage });
      onStatus(status);
      c.set({ settings: uiSettingsFrom(settings, c.get().settings) });
      const secret = await api.loadWalletSecret().catch((e: Error) => {
        c.set({ notice: DESKTOP_NOTICES.savedWalletUnreadable(e.message) });
        return null;
      });
      if (!secret) return;
      const wallet = await c.busy(() => c.engine.call('useSecret', { secret }));
      if (!wallet) return;
      patch({ secretSaved: true });
      c.set({ address: wallet.address, screen: 'main' });
      void c.get().checkGpu();
      void readStanding();
    },

    async choosePassword(password, repeat) {
      const mnemonic = c.get().draft?.mnemonic;
      await c.base.choosePassword(password, repeat);
      if (mnemonic && c.get().draft === null && c.get().address) await storeSecret(mnemonic);
    },

    async unlock(password) {
      const wallet = await c.busy(() => c.engine.call('unlockWallet', { password, reveal: true }));
      if (!wallet) return;
      c.set({ address: wallet.address, screen: 'main' });
      void c.get().checkGpu();
      void readStanding();
      if (wallet.secret) await storeSecret(wallet.secret);
    },

    async contribute() {
      const d = c.get().desktop;
      if (!d?.secretSaved) {
        return c.set({ notice: DESKTOP_NOTICES.secretMissing(d?.secretStorage?.warning ?? null) });
      }
      if (!d.settings?.coordinatorUrl) return c.set({ notice: DESKTOP_NOTICES.noCoordinator() });
      await act(() => api.contribute());
    },
    pause: () => act(() => api.pause()),
    resume: () => act(() => api.resume()),
    finishRoundThenStop: () => act(() => api.finishRoundThenStop()),
    // The desktop app has no "stop now" (quitting saves a checkpoint first): the round is finished.
    stopNow: () => act(() => api.finishRoundThenStop()),

    async updateSettings(p) {
      const current = c.get().desktop?.settings;
      const forMain = current ? desktopPatchOf(p, current) : {};
      if (Object.keys(forMain).length > 0 && !(await updateDesktopSettings(forMain))) return;
      if (forMain.coordinatorUrl !== undefined) c.set({ runInfo: null, innerSteps: null }); // another run: described at the next check
      if (p.logLevel !== undefined || p.runListUrl !== undefined) {
        // The settings that are the UI's own (the log level, the known-runs list's address); a copy of the rest is kept alongside.
        const own = { ...(p.logLevel !== undefined ? { logLevel: p.logLevel } : {}), ...(p.runListUrl !== undefined ? { runListUrl: p.runListUrl } : {}) };
        c.set({ settings: { ...c.get().settings, ...own } });
        await c.db.saveSettings(c.get().settings).catch(() => {});
      }
    },
    async updateDesktopSettings(p) {
      await updateDesktopSettings(p);
    },
    async allowPlainTextSecret() {
      if (!(await updateDesktopSettings({ allowPlainTextSecrets: true }))) return;
      if (heldSecret) await storeSecret(heldSecret);
    },
    // The main process watches battery, idle time and the schedule; the window's visibility never holds training.
    setEnvironment(p) {
      c.set({ env: { ...c.get().env, ...p } });
    },
  };
}

/** Before the main process has answered. */
export const DESKTOP_STARTING: Readonly<DesktopState> = Object.freeze({ status: null, settings: null, secretStorage: null, secretSaved: false, secretWaiting: false });
