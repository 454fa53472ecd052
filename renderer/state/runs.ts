// The store's slice for what a volunteer contributes to: the chosen run's description (from
// its coordinator's GET /run), and the known runs the network step offers — the shipped list
// and the one refreshed from the user's list URL (kept in IndexedDB; a failed refresh keeps
// the older list and says why). Part of the one store (store.ts spreads runsActions).
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
}

export interface RunsContext {
  db: UiDb;
  fetch?: typeof fetch;
  now(): number;
  get(): AppState & AppActions;
  set(patch: Partial<AppState>): void;
}

/** A list fetched longer ago than this is fetched again when the page starts. */
export const REFRESH_AFTER_MS = 6 * 3600_000;

export function runsStarting(): RunsState {
  return { runInfo: null, knownRuns: { shipped: shippedRuns(), fetched: null, refreshing: false } };
}

/** The runs to offer: the fetched list's, then the shipped ones it does not repeat. */
export function offeredRuns(k: RunsState['knownRuns']): KnownRun[] {
  const fetched = k.fetched?.runs ?? [];
  const seen = new Set(fetched.map((r) => r.coordinator));
  return [...fetched, ...k.shipped.runs.filter((r) => !seen.has(r.coordinator))];
}

export function runsActions(c: RunsContext): RunsActions & { loadKnownRuns(): Promise<void> } {
  const known = () => c.get().knownRuns;
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

  return {
    async loadKnownRuns() {
      const stored = await c.db.loadRunList().catch(() => null);
      setKnown({ fetched: stored });
      const url = c.get().settings.runListUrl.trim();
      if (url && (!stored || stored.url !== url || c.now() - stored.fetchedAt > REFRESH_AFTER_MS)) void refreshKnownRuns();
    },
    refreshKnownRuns,
    async joinKnownRun(coordinator) {
      await c.get().chooseNetwork('custom', coordinator);
    },
  };
}
