// The store's slice for what a volunteer contributes to: the chosen run's description (from
// its coordinator's GET /run), and the known runs the network step offers — the shipped list
// and the one refreshed from the user's list URL (kept in IndexedDB; a failed refresh keeps
// the older list and says why). And the swarm's progress where the contributor's events do
// not carry it (the desktop UI window has none; a contributor whose 'round' event lacks
// tokensTrained): read from the coordinator's GET /status, at most once a minute. Part of the
// one store (store.ts spreads runsActions).
import type { EngineEvent } from '../engine/messages.ts';
import type { UiDb, StoredRunList } from './db.ts';
import { fetchKnownRuns, shippedRuns, type KnownRun, type KnownRunList } from './known-runs.ts';
import type { RunInfo } from './run-info.ts';
import type { AppActions, AppState } from './store.ts';

export interface RunsState {
  /** The chosen run as its coordinator describes it; null until read (or when it cannot be). */
  runInfo: RunInfo | null;
  knownRuns: {
    shipped: KnownRunList;
    /** The list from the settings' URL as last fetched, with the last refresh's failure. */
    fetched: StoredRunList | null;
    refreshing: boolean;
  };
}

export interface RunsActions {
  /** Fetches the list at the settings' runListUrl; a failure keeps the older list and says why. */
  refreshKnownRuns(): Promise<void>;
  /** Joins a listed run in one click: its coordinator becomes the network, then the GPU check. */
  joinKnownRun(coordinator: string): Promise<void>;
  /** The swarm's tokens trained from the coordinator, unless read less than a minute ago or the contributor's events carry them. */
  readSwarmProgress(): Promise<void>;
}

/** What GET /status says of the whole run (the fields the page shows). */
export interface SwarmProgress {
  round: number;
  tokensTrained: number;
  pendingRounds: number;
}

export interface RunsContext {
  db: UiDb;
  fetch?: typeof fetch;
  /** GET /status of the coordinator at `url` (ws://…/ws), or null. */
  swarmProgress?(url: string): Promise<SwarmProgress | null>;
  coordinatorUrl(): string | null;
  now(): number;
  get(): AppState & AppActions;
  set(patch: Partial<AppState>): void;
}

/** A list fetched longer ago than this is fetched again when the page starts. */
export const REFRESH_AFTER_MS = 6 * 3600_000;
/** GET /status is read at most this often (it is the whole run's status, not a small reply). */
export const PROGRESS_EVERY_MS = 60_000;

/** The fields of a GET /status body the page uses, or null. */
export function swarmProgressOf(body: unknown): SwarmProgress | null {
  const b = body as Partial<Record<keyof SwarmProgress, unknown>> | null;
  const n = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
  const round = n(b?.round);
  const tokensTrained = n(b?.tokensTrained);
  if (round === null || tokensTrained === null) return null;
  return { round, tokensTrained, pendingRounds: n(b?.pendingRounds) ?? 0 };
}

export function runsStarting(): RunsState {
  return { runInfo: null, knownRuns: { shipped: shippedRuns(), fetched: null, refreshing: false } };
}

/** The runs to offer: the fetched list's, then the shipped ones it does not repeat. */
export function offeredRuns(k: RunsState['knownRuns']): KnownRun[] {
  const fetched = k.fetched?.runs ?? [];
  const seen = new Set(fetched.map((r) => r.coordinator));
  return [...fetched, ...k.shipped.runs.filter((r) => !seen.has(r.coordinator))];
}

export function runsActions(c: RunsContext): RunsActions & { loadKnownRuns(): Promise<void>; onEvent(e: EngineEvent): void } {
  const known = () => c.get().knownRuns;
  let progressReadAt = -Infinity;
  let eventsCarryTokens = false;
  const setKnown = (p: Partial<RunsState['knownRuns']>) => c.set({ knownRuns: { ...known(), ...p } });

  const refreshKnownRuns = async () => {
    const url = c.get().settings.runListUrl.trim();
    if (!url || known().refreshing) return;
    setKnown({ refreshing: true });
    const old = known().fetched;
    let next: StoredRunList;
    try {
      const list = await fetchKnownRuns(url, c.fetch);
      next = { url, runs: list.runs, dropped: list.dropped, fetchedAt: c.now(), error: null, errorAt: 0 };
    } catch (e) {
      // The older list stays offered: a list server that is down must not empty the page.
      next = { ...(old ?? { url, runs: [], dropped: [], fetchedAt: 0 }), error: (e as Error).message, errorAt: c.now() };
    }
    setKnown({ fetched: next, refreshing: false });
    await c.db.saveRunList(next).catch(() => {});
  };

  const readSwarmProgress = async () => {
    const url = c.coordinatorUrl();
    if (!c.swarmProgress || !url || eventsCarryTokens || c.now() - progressReadAt < PROGRESS_EVERY_MS) return;
    progressReadAt = c.now();
    const p = await c.swarmProgress(url).catch(() => null);
    if (p && !eventsCarryTokens) c.set({ run: { ...c.get().run, tokensTrained: p.tokensTrained } });
  };

  return {
    async loadKnownRuns() {
      const stored = await c.db.loadRunList().catch(() => null);
      setKnown({ fetched: stored });
      const url = c.get().settings.runListUrl.trim();
      if (url && (!stored || stored.url !== url || c.now() - stored.fetchedAt > REFRESH_AFTER_MS)) void refreshKnownRuns();
    },
    refreshKnownRuns,
    readSwarmProgress,
    onEvent(e) {
      if (e.event === 'round' && typeof (e as { tokensTrained?: unknown }).tokensTrained === 'number') eventsCarryTokens = true;
      if (e.event === 'joined' || e.event === 'commit') void readSwarmProgress();
    },
    async joinKnownRun(coordinator) {
      await c.get().chooseNetwork('custom', coordinator);
    },
  };
}
