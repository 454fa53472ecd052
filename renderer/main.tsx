// The page's entry: the engine worker, the store over it and IndexedDB, the browser signals
// that may hold training (tab hidden, battery), and the React tree. In the desktop app's
// hidden training window (window.tesseraTraining) the page hosts only the engine instead;
// in its UI window (window.tessera) the store drives training through the main process.
import { StrictMode } from 'react';
import type { TesseraTrainingApi } from '../electron/contract.ts';
import { createRoot } from 'react-dom/client';
import { TrainingHost } from './desktop/training-host.ts';
import { desktopApiOf, trainingApiOf } from './desktop/window-apis.ts';
import { startEngineWorker } from './engine/client.ts';
import { UiDb } from './state/db.ts';
import { coordinatorHttpUrl } from './state/rules.ts';
import { runInfoOf } from './state/run-info.ts';
import { swarmProgressOf } from './state/runs.ts';
import { createAppStore } from './state/store.ts';
import { sessionTabWallet } from './state/tab-wallet.ts';
import { App } from './ui/App.tsx';
import { StoreProvider } from './ui/context.tsx';
import './ui/styles.css';

/** The embedded coordinator of `npm run web`, announced at /local.json; null elsewhere. */
async function localCoordinator(): Promise<string | null> {
  const r = await fetch('/local.json', { cache: 'no-store' }).catch(() => null);
  if (!r?.ok) return null;
  const body = (await r.json().catch(() => null)) as { coordinator?: unknown } | null;
  return typeof body?.coordinator === 'string' ? body.coordinator : null;
}

/** The run from its coordinator: its model and batch, so the GPU check sizes what will be trained, and what it is. */
async function runShape(coordinator: string) {
  const r = await fetch(`${coordinatorHttpUrl(coordinator)}/run`, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
  return r.ok ? runInfoOf(await r.json()) : null;
}

/** The swarm's progress from the coordinator's GET /status. */
async function swarmProgress(coordinator: string) {
  const r = await fetch(`${coordinatorHttpUrl(coordinator)}/status`, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
  return r.ok ? swarmProgressOf(await r.json()) : null;
}

function startUi(): void {
  const desktop = desktopApiOf(window);
  // A browser tab remembers its wallet choice for its reloads; the desktop app has one wallet.
  const tabWallet = desktop ? undefined : sessionTabWallet(sessionStorage);
  const store = createAppStore({ engine: startEngineWorker(), db: new UiDb(indexedDB), localCoordinator, runShape, swarmProgress, tabWallet, desktop: desktop ?? undefined });

  const visibility = () => store.getState().setEnvironment({ hidden: document.visibilityState === 'hidden' });
  document.addEventListener('visibilitychange', visibility);
  visibility();

  // Battery status exists in Chromium only; elsewhere "on battery" stays unknown (false).
  interface Battery extends EventTarget {
    charging: boolean;
  }
  const nav = navigator as Navigator & { getBattery?: () => Promise<Battery> };
  void nav.getBattery?.().then((b) => {
    const update = () => store.getState().setEnvironment({ onBattery: !b.charging });
    b.addEventListener('chargingchange', update);
    update();
  }).catch(() => {});

  // The schedule is a matter of the clock: look again every minute.
  setInterval(() => store.getState().setEnvironment({}), 60_000);

  void store.getState().init();

  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <StoreProvider store={store}>
        <App />
      </StoreProvider>
    </StrictMode>,
  );
}

/** The training window: the engine, its orders from the main process, no UI. */
function startTrainingPage(api: TesseraTrainingApi): void {
  document.getElementById('root')!.textContent = 'This hidden window trains for Tessera; the Tessera window shows what it does.';
  const host = new TrainingHost({ api, engine: startEngineWorker(), log: (text) => console.info(`[training] ${text}`) });
  void host.start().catch((e: unknown) => console.error('[training] could not start:', e));
}

const trainingApi = trainingApiOf(window);
if (trainingApi) startTrainingPage(trainingApi);
else startUi();
