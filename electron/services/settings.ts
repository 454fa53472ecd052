// Desktop settings: defaults, validation with messages that name the field, and a JSON
// file in the app's data folder written atomically (a crash mid-write keeps the old file).
import type { DesktopSettings, GpuMode } from '../contract.ts';
import { validateScheduleWindow } from '../../src/contributor/availability.ts';

export const DEFAULT_SETTINGS: DesktopSettings = {
  schemaVersion: 1,
  coordinatorUrl: 'ws://127.0.0.1:8787/ws',
  startAtLogin: false,
  pauseOnBattery: true,
  pauseWhenUserActive: false,
  userIdleMinutes: 5,
  pauseWhenFullscreen: true,
  schedule: { enabled: false, windows: [{ days: [0, 1, 2, 3, 4, 5, 6], start: '22:00', end: '07:00' }] },
  // As the page's default (renderer/state/db.ts DEFAULT_DUTY_CYCLE): a medium level, as
  // Folding@home starts, so the machine stays usable while it trains; the user raises it.
  gpuDutyCyclePercent: 60,
  gpuMode: 'auto',
  allowPlainTextSecrets: false,
};

const GPU_MODES: readonly GpuMode[] = ['auto', 'vulkan', 'x11-vulkan', 'no-vulkan'];
type Patch = Partial<Omit<DesktopSettings, 'schemaVersion'>>;

/** The coordinator URL, checked: ws:// or wss:// with a host. */
export function validateCoordinatorUrl(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new Error(`coordinatorUrl must be a URL like ws://host:8787/ws, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`coordinatorUrl must start with ws:// or wss://, got ${url.protocol}//`);
  if (!url.hostname) throw new Error('coordinatorUrl has no host');
  return url.toString();
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new Error(`${field} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function intIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${field} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Applies a patch from the UI to settings; unknown or bad fields throw, naming the field. */
export function applySettingsPatch(current: DesktopSettings, patch: unknown): DesktopSettings {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw new Error('settings patch must be an object');
  const next: DesktopSettings = structuredClone(current);
  for (const [key, value] of Object.entries(patch as Patch)) {
    switch (key as keyof Patch) {
      case 'coordinatorUrl': next.coordinatorUrl = validateCoordinatorUrl(value); break;
      case 'startAtLogin': next.startAtLogin = bool(value, key); break;
      case 'pauseOnBattery': next.pauseOnBattery = bool(value, key); break;
      case 'pauseWhenUserActive': next.pauseWhenUserActive = bool(value, key); break;
      case 'pauseWhenFullscreen': next.pauseWhenFullscreen = bool(value, key); break;
      case 'allowPlainTextSecrets': next.allowPlainTextSecrets = bool(value, key); break;
      case 'userIdleMinutes': next.userIdleMinutes = intIn(value, key, 1, 240); break;
      case 'gpuDutyCyclePercent': next.gpuDutyCyclePercent = intIn(value, key, 10, 100); break;
      case 'gpuMode':
        if (!GPU_MODES.includes(value as GpuMode)) throw new Error(`gpuMode must be one of ${GPU_MODES.join(', ')}, got ${JSON.stringify(value)}`);
        next.gpuMode = value as GpuMode;
        break;
      case 'schedule': {
        if (typeof value !== 'object' || value === null) throw new Error('schedule must be { enabled, windows }');
        const { enabled, windows } = value as Record<string, unknown>;
        if (!Array.isArray(windows)) throw new Error('schedule.windows must be a list');
        const checked = windows.map((w, i) => validateScheduleWindow(w, `schedule.windows[${i}]`));
        if (bool(enabled, 'schedule.enabled') && checked.length === 0) throw new Error('schedule is enabled but has no windows: training would never run');
        next.schedule = { enabled: enabled as boolean, windows: checked };
        break;
      }
      default:
        throw new Error(`unknown setting ${JSON.stringify(key)}`);
    }
  }
  return next;
}

/** The file operations the store needs (node:fs/promises satisfies it). */
export interface SettingsFiles {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string, options: { mode: number }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
}

/** Parses the settings file's text; throws a message naming what is wrong. */
export function parseSettingsFile(text: string): DesktopSettings {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if (parsed.schemaVersion !== 1) throw new Error(`schemaVersion ${JSON.stringify(parsed.schemaVersion)} is not 1`);
  const { schemaVersion: _version, ...fields } = parsed;
  return applySettingsPatch(DEFAULT_SETTINGS, fields);
}

export interface LoadedSettings {
  settings: DesktopSettings;
  /** Set when the file was unreadable and defaults were used; the old file is kept aside. */
  problem: string | null;
}

export class SettingsStore {
  private settings: DesktopSettings = structuredClone(DEFAULT_SETTINGS);

  constructor(private readonly files: SettingsFiles, private readonly path: string) {}

  get current(): DesktopSettings {
    return structuredClone(this.settings);
  }

  /** Reads the file; a missing file gives defaults; a broken one is renamed aside, not lost. */
  async load(): Promise<LoadedSettings> {
    let text: string;
    try {
      text = await this.files.readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { settings: this.current, problem: null };
      throw error;
    }
    try {
      this.settings = parseSettingsFile(text);
      return { settings: this.current, problem: null };
    } catch (error) {
      const aside = `${this.path}.broken-${Date.now()}`;
      await this.files.rename(this.path, aside);
      this.settings = structuredClone(DEFAULT_SETTINGS);
      return { settings: this.current, problem: `settings file was unreadable (${(error as Error).message}); defaults in use, old file kept as ${aside}` };
    }
  }

  async update(patch: unknown): Promise<DesktopSettings> {
    const next = applySettingsPatch(this.settings, patch);
    const temporary = `${this.path}.tmp`;
    await this.files.writeFile(temporary, JSON.stringify(next, null, 2), { mode: 0o600 });
    await this.files.rename(temporary, this.path);
    this.settings = next;
    return this.current;
  }
}
