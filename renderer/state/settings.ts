// The store's slice for the page's settings (db.ts: saved in IndexedDB, checked field by field
// as they load): a change is saved, and what it touches applies at once — the GPU budget to a
// running engine, another coordinator's run described afresh, the pause rules looked at again.
// The desktop app's own settings exist only there (desktop.ts). Part of the one store
// (store.ts composes the slices).
import type { DesktopSettings } from '../../electron/contract.ts';
import { DEFAULT_SETTINGS, type LogLevel, type Settings } from './db.ts';
import { onlyInDesktopNotice } from './human.ts';
import type { SliceContext } from './store.ts';

export interface SettingsState {
  settings: Settings;
}

export interface SettingsActions {
  updateSettings(patch: Partial<Settings>): Promise<void>;
  /** Desktop app only: settings that exist only there (start at login, idle pause, GPU mode…). */
  updateDesktopSettings(patch: Partial<Omit<DesktopSettings, 'schemaVersion'>>): Promise<void>;
  /** Desktop app only: the user read the plain-text warning and stores the wallet secret anyway. */
  allowPlainTextSecret(): Promise<void>;
}

export interface SettingsContext extends SliceContext {
  log(level: LogLevel, text: string): void;
  /** Describes the chosen run afresh (network.ts). */
  readRun(): Promise<unknown>;
  /** Holds or resumes a running engine as the pause rules now say (training.ts). */
  applyPause(): Promise<unknown>;
}

export function settingsStarting(): SettingsState {
  return { settings: structuredClone(DEFAULT_SETTINGS) as Settings };
}

export function settingsActions(c: SettingsContext): SettingsActions {
  const { get, set } = c;
  const notDesktop = async () => set({ notice: onlyInDesktopNotice() });
  return {
    async updateSettings(patch) {
      const settings: Settings = { ...get().settings, ...patch, schedule: { ...get().settings.schedule, ...(patch.schedule ?? {}) } };
      set({ settings });
      await c.deps.db.saveSettings(settings).catch((e: Error) => c.log('warn', `could not save the settings: ${e.message}`));
      if (patch.dutyCycle !== undefined && get().run.activity !== 'idle') await c.deps.engine.call('setDutyCycle', { percent: settings.dutyCycle }).catch(() => {});
      // Another coordinator chosen in Settings: another run to describe (the first run's network step checks the GPU next anyway).
      if ((patch.network !== undefined || patch.coordinatorUrl !== undefined) && get().screen === 'main') void c.readRun();
      await c.applyPause();
    },
    updateDesktopSettings: notDesktop,
    allowPlainTextSecret: notDesktop,
  };
}
