// The store's slice for where this device contributes: the network chosen (the local run of
// `npm run web`, or a coordinator's address), what that run is (its GET /run: shape, inner
// steps, description) and whether this GPU can train it. Part of the one store (store.ts
// composes the slices; runs.ts offers the known runs to choose from).
import type { GpuReport } from '../engine/messages.ts';
import { noLocalCoordinatorNotice, notACoordinatorNotice, noticeFor, noticeOfError } from './human.ts';
import { runInfoOf, type RunShape } from './run-info.ts';
import { coordinatorSocketUrl } from './rules.ts';
import type { SliceContext } from './store.ts';

export interface NetworkState {
  gpu: GpuReport | null;
  /** Inner steps per round of the chosen run, when its coordinator said. */
  innerSteps: number | null;
  /** ws:// address of the coordinator `npm run web` embeds, or null when there is none. */
  localCoordinator: string | null;
}

export interface NetworkActions {
  chooseNetwork(network: 'local' | 'custom', url?: string): Promise<void>;
  checkGpu(): Promise<void>;
  enterMain(): void;
}

/** What the GPU check sizes when the run's own shape is unknown: the local run's. */
const DEFAULT_SHAPE: RunShape = { model: 'tiny', batch: 2, seq: 32 };

export function networkStarting(): NetworkState {
  return { gpu: null, innerSteps: null, localCoordinator: null };
}

export function networkSlice(c: SliceContext) {
  const { get, set } = c;

  /** The chosen coordinator's ws(s):// address, or null when none is chosen. */
  const coordinatorUrl = (): string | null => {
    const s = get().settings;
    return s.network === 'local' ? get().localCoordinator : coordinatorSocketUrl(s.coordinatorUrl);
  };

  /** The chosen run from its coordinator (GET /run): its shape and what it is; null when unknown. */
  const readRun = async () => {
    const url = coordinatorUrl();
    const known = url ? await c.deps.runShape?.(url).catch(() => null) : null;
    set({ innerSteps: known?.innerSteps ?? null, runInfo: known ? runInfoOf(known) : null });
    return known ?? null;
  };

  const actions: NetworkActions = {
    async chooseNetwork(network, url = '') {
      if (network === 'custom' && !coordinatorSocketUrl(url)) return set({ notice: notACoordinatorNotice() });
      if (network === 'local' && !get().localCoordinator) return set({ notice: noLocalCoordinatorNotice() });
      await get().updateSettings({ network, coordinatorUrl: network === 'custom' ? url.trim() : get().settings.coordinatorUrl });
      set({ screen: 'gpu', notice: null });
      await get().checkGpu();
    },
    async checkGpu() {
      const { model, batch, seq } = (await readRun()) ?? DEFAULT_SHAPE;
      const gpu = await c.deps.engine.call('checkGpu', { model, batch, seq }).catch((e: unknown) => {
        set({ notice: noticeOfError(e) });
        return null;
      });
      set({ gpu });
      if (gpu && !gpu.available) set({ notice: noticeFor({ kind: 'no-webgpu', message: gpu.problem ?? 'no WebGPU adapter' }) });
    },
    enterMain() {
      set({ screen: 'main', notice: null });
    },
  };
  return { coordinatorUrl, readRun, actions };
}
