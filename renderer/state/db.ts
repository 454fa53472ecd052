// What the UI keeps in IndexedDB (through idb): settings, the loss and reward history of the
// run, whether the user was contributing (so a reload resumes), and the list of known runs
// last fetched from the user's list URL. Settings are the browser
// profile's; history and session are each wallet's (two tabs contributing with two wallets
// must not overwrite each other's): the default wallet keeps the 'current' record it always
// had, another wallet has records keyed by its name, so no upgrade step is needed. Versioned twice over: the
// database version creates object stores step by step (upgrade), and the settings record has
// its own `schema` number, migrated on read by SETTINGS_MIGRATIONS and validated field by
// field (a bad or missing field gets its default, never a crash). A record written by a newer
// Tessera is left untouched and the defaults are used for this session.
import { wrap, type IDBPDatabase } from 'idb';
import { isClockTime, MAX_DUTY_CYCLE_PERCENT, MIN_DUTY_CYCLE_PERCENT } from '../../src/contributor/availability.ts';
import { parseKnownRuns, type KnownRun, type KnownRunList } from './known-runs.ts';

export const UI_DATABASE = 'tessera-ui';
export const DB_VERSION = 2;
export const SETTINGS_SCHEMA = 1;

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface Settings {
  schema: number;
  /** 'local': the coordinator `npm run web` started; 'custom': coordinatorUrl. */
  network: 'local' | 'custom';
  coordinatorUrl: string;
  /** Percent of the time the GPU may train (10..100: src/contributor/availability.ts says why). */
  dutyCycle: number;
  pauseWhenHidden: boolean;
  pauseOnBattery: boolean;
  /** Train only between these local times (HH:MM; from > to wraps past midnight). */
  schedule: { enabled: boolean; from: string; to: string };
  logLevel: LogLevel;
  /** Where the list of known runs is refreshed from (http(s)), or '' for the shipped list only. */
  runListUrl: string;
}

/**
 * The GPU budget a new user starts with. Not 100%: a GPU busy all the time makes the
 * computer sluggish (video stutters, the fans run), and a volunteer who notices stops.
 * Folding@home likewise starts at a medium level; 60% leaves the GPU idle 4 s in 10 for the
 * desktop and other apps, and the slider goes to 100% for a machine left alone.
 */
export const DEFAULT_DUTY_CYCLE = 60;

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  schema: SETTINGS_SCHEMA,
  network: 'local',
  coordinatorUrl: '',
  dutyCycle: DEFAULT_DUTY_CYCLE,
  pauseWhenHidden: false,
  pauseOnBattery: true,
  schedule: Object.freeze({ enabled: false, from: '22:00', to: '07:00' }),
  logLevel: 'info',
  runListUrl: '',
}) as Settings;

export class SettingsVersionError extends Error {
  override name = 'SettingsVersionError';
}

/** schema n → n+1, by the version they start from. None yet: schema 1 is the first. */
export const SETTINGS_MIGRATIONS: Record<number, (old: Record<string, unknown>) => Record<string, unknown>> = {};

/** Any stored value → valid Settings of the current schema (defaults where a field is missing or bad). */
export function migrateSettings(stored: unknown): Settings {
  if (stored === undefined || stored === null || typeof stored !== 'object') return structuredClone(DEFAULT_SETTINGS) as Settings;
  let raw = { ...(stored as Record<string, unknown>) };
  let schema = typeof raw.schema === 'number' && Number.isInteger(raw.schema) ? raw.schema : 1;
  if (schema > SETTINGS_SCHEMA) throw new SettingsVersionError(`these settings were saved by a newer Tessera (schema ${schema}; this one reads up to ${SETTINGS_SCHEMA}): defaults are used and the saved settings are kept`);
  while (schema < SETTINGS_SCHEMA) {
    const step = SETTINGS_MIGRATIONS[schema];
    if (!step) throw new SettingsVersionError(`no migration from settings schema ${schema}`);
    raw = step(raw);
    schema++;
  }
  const d = DEFAULT_SETTINGS;
  const sched = (raw.schedule ?? {}) as Record<string, unknown>;
  return {
    schema: SETTINGS_SCHEMA,
    network: raw.network === 'custom' ? 'custom' : 'local',
    coordinatorUrl: typeof raw.coordinatorUrl === 'string' ? raw.coordinatorUrl : d.coordinatorUrl,
    dutyCycle: typeof raw.dutyCycle === 'number' && raw.dutyCycle >= MIN_DUTY_CYCLE_PERCENT && raw.dutyCycle <= MAX_DUTY_CYCLE_PERCENT ? Math.round(raw.dutyCycle) : d.dutyCycle,
    pauseWhenHidden: typeof raw.pauseWhenHidden === 'boolean' ? raw.pauseWhenHidden : d.pauseWhenHidden,
    pauseOnBattery: typeof raw.pauseOnBattery === 'boolean' ? raw.pauseOnBattery : d.pauseOnBattery,
    schedule: {
      enabled: typeof sched.enabled === 'boolean' ? sched.enabled : d.schedule.enabled,
      from: isClockTime(sched.from) ? sched.from : d.schedule.from,
      to: isClockTime(sched.to) ? sched.to : d.schedule.to,
    },
    logLevel: LOG_LEVELS.includes(raw.logLevel as LogLevel) ? (raw.logLevel as LogLevel) : d.logLevel,
    runListUrl: typeof raw.runListUrl === 'string' && raw.runListUrl.length <= 2048 ? raw.runListUrl : d.runListUrl,
  };
}

export interface LossPoint {
  round: number;
  step: number;
  loss: number;
  /** ms since epoch. */
  at: number;
}

export interface RewardPoint {
  round: number;
  score: number;
  rank: number;
  of: number;
  share: number;
  epoch: number;
  /** Earned: rounds whose escrow window has passed. */
  epochReward: number;
  totalReward: number;
  /** Held in escrow, and lost from it to an invalid or copied update (absent: a coordinator without escrow). */
  pendingReward?: number;
  forfeitedReward?: number;
  /** Closed rounds the validator had not scored yet at this standing (absent: the coordinator did not say). */
  pendingRounds?: number;
}

export interface History {
  /** The run this history belongs to ('' before the first join). */
  run: string;
  losses: LossPoint[];
  rewards: RewardPoint[];
}

/** The known-runs list last fetched from the settings' URL, and how the last try went. */
export interface StoredRunList {
  url: string;
  runs: KnownRun[];
  dropped: string[];
  /** When the list was last fetched successfully (ms since epoch; 0: never). */
  fetchedAt: number;
  /** Why the last refresh failed (the list above is the older one), or null. */
  error: string | null;
  errorAt: number;
}

export interface Session {
  /** The user pressed Contribute and did not stop: a reload carries on. */
  contributing: boolean;
}

/** Most points kept per series (older ones are dropped first). */
export const HISTORY_LIMIT = 5000;

/** The keystore name of the first wallet of a browser (src/wallet/keystore-idb.ts). */
export const DEFAULT_WALLET = 'default';

/** The record key of a wallet's history and session ('current' for the default wallet, as before). */
export function walletRecordKey(wallet: string): string {
  return wallet === DEFAULT_WALLET ? 'current' : `wallet:${wallet}`;
}

export class UiDb {
  private db: Promise<IDBPDatabase> | null = null;
  /** Set when the stored settings were not readable by this version (kept, not overwritten). */
  settingsLocked = false;

  constructor(
    private readonly factory: IDBFactory,
    private readonly name = UI_DATABASE,
  ) {}

  private open(): Promise<IDBPDatabase> {
    this.db ??= openWith(this.factory, this.name);
    return this.db;
  }

  /** The settings; throws SettingsVersionError (after which save refuses) for a newer schema. */
  async loadSettings(): Promise<Settings> {
    const db = await this.open();
    try {
      return migrateSettings(await db.get('settings', 'current'));
    } catch (e) {
      if (e instanceof SettingsVersionError) this.settingsLocked = true;
      throw e;
    }
  }

  async saveSettings(s: Settings): Promise<void> {
    if (this.settingsLocked) return;
    const db = await this.open();
    await db.put('settings', migrateSettings(s), 'current');
  }

  async loadHistory(wallet = DEFAULT_WALLET): Promise<History> {
    const db = await this.open();
    const h = (await db.get('history', walletRecordKey(wallet))) as History | undefined;
    if (!h || !Array.isArray(h.losses) || !Array.isArray(h.rewards)) return { run: '', losses: [], rewards: [] };
    return { run: typeof h.run === 'string' ? h.run : '', losses: h.losses, rewards: h.rewards };
  }

  async saveHistory(h: History, wallet = DEFAULT_WALLET): Promise<void> {
    const db = await this.open();
    await db.put('history', { run: h.run, losses: h.losses.slice(-HISTORY_LIMIT), rewards: h.rewards.slice(-HISTORY_LIMIT) }, walletRecordKey(wallet));
  }

  async loadSession(wallet = DEFAULT_WALLET): Promise<Session> {
    const db = await this.open();
    const s = (await db.get('session', walletRecordKey(wallet))) as Session | undefined;
    return { contributing: s?.contributing === true };
  }

  async saveSession(s: Session, wallet = DEFAULT_WALLET): Promise<void> {
    const db = await this.open();
    await db.put('session', { contributing: s.contributing }, walletRecordKey(wallet));
  }

  /** The stored list, checked again as it is read (null when none was fetched). */
  async loadRunList(): Promise<StoredRunList | null> {
    const db = await this.open();
    const r = (await db.get('known-runs', 'current')) as Partial<StoredRunList> | undefined;
    if (!r || typeof r.url !== 'string') return null;
    let checked: KnownRunList = { runs: [], dropped: [] };
    try {
      checked = parseKnownRuns({ runs: r.runs });
    } catch {
      // A record not of this shape: its runs are not used.
    }
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    return { url: r.url, runs: checked.runs, dropped: Array.isArray(r.dropped) ? r.dropped.filter((d) => typeof d === 'string') : [], fetchedAt: num(r.fetchedAt), error: typeof r.error === 'string' ? r.error : null, errorAt: num(r.errorAt) };
  }

  async saveRunList(list: StoredRunList): Promise<void> {
    const db = await this.open();
    await db.put('known-runs', structuredClone(list), 'current');
  }

  async close(): Promise<void> {
    const db = await this.db?.catch(() => null);
    this.db = null;
    db?.close();
  }
}

/** idb's openDB on a given factory (openDB itself uses the global indexedDB). */
function openWith(factory: IDBFactory, name: string): Promise<IDBPDatabase> {
  const request = factory.open(name, DB_VERSION);
  request.onupgradeneeded = (ev) => {
    const db = request.result;
    // One step per database version, in order, so any older database reaches this one.
    if (ev.oldVersion < 1) {
      db.createObjectStore('settings');
      db.createObjectStore('history');
      db.createObjectStore('session');
    }
    if (ev.oldVersion < 2) db.createObjectStore('known-runs');
  };
  return wrap(request) as unknown as Promise<IDBPDatabase>;
}
