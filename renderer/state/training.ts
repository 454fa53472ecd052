// The store's slice for training in this tab: Contribute, Pause and Resume, Finish the round
// or Stop now; the live run status folded from the engine's events; and when to hold training
// (the user's pause, a hidden tab, the battery, the schedule: rules.ts, on the store's clock).
// The engine's failures and retries become notices here. Part of the one store (store.ts
// composes the slices; in the desktop app desktop.ts replaces these actions).
import type { EngineEvent } from '../engine/messages.ts';
import type { LogLevel } from './db.ts';
import { blockedPeerNotice, noCoordinatorChosenNotice, noticeFor, retryNotice } from './human.ts';
import { IDLE, foldEvent, type RunStatus } from './run-status.ts';
import { shouldPause, type Environment } from './rules.ts';
import type { SliceContext } from './store.ts';

export interface TrainingState {
  env: Environment;
  userPaused: boolean;
  run: RunStatus;
}

export interface TrainingActions {
  contribute(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  finishRoundThenStop(): Promise<void>;
  stopNow(): Promise<void>;
  setEnvironment(patch: Partial<Environment>): void;
}

export interface TrainingContext extends SliceContext {
  log(level: LogLevel, text: string): void;
  coordinatorUrl(): string | null;
}

export function trainingStarting(): TrainingState {
  return { env: { hidden: false, onBattery: false }, userPaused: false, run: IDLE };
}

export function trainingSlice(c: TrainingContext) {
  const { get, set } = c;
  const { engine, db } = c.deps;
  const pausedNow = () => shouldPause(get().settings, get().env, get().userPaused, new Date(c.now()));

  /** Tells a running engine to hold or go on, as the rules say now; returns whether it holds. */
  const applyPause = async () => {
    const paused = pausedNow();
    if (get().run.activity !== 'idle' && paused !== get().run.paused) await engine.call('setPaused', { paused }).catch(() => {});
    return paused;
  };

  const actions: TrainingActions = {
    async contribute() {
      const url = c.coordinatorUrl();
      if (!url) return set({ notice: noCoordinatorChosenNotice() });
      const paused = pausedNow();
      const r = await c.busy(() => engine.call('start', { coordinator: url, dutyCycle: get().settings.dutyCycle, paused }));
      if (!r) return;
      set({ run: { ...foldEvent(get().run, { event: 'connecting', url, attempt: 0 }), paused } });
      await db.saveSession({ contributing: true }, get().walletName).catch(() => {});
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
      await db.saveSession({ contributing: false }, get().walletName).catch(() => {});
      await c.busy(() => engine.call('stop', { mode: 'after-round' }));
    },
    async stopNow() {
      await db.saveSession({ contributing: false }, get().walletName).catch(() => {});
      set({ run: { ...get().run, activity: 'stopping' } });
      await c.busy(() => engine.call('stop', { mode: 'now' }));
    },
    setEnvironment(patch) {
      set({ env: { ...get().env, ...patch } });
      void applyPause();
    },
  };

  return {
    actions,
    applyPause,
    /** The event into the live status, first of all. */
    fold(e: EngineEvent) {
      set({ run: foldEvent(get().run, e) });
    },
    /** The notices an event brings (and clears), and the ends of a contribution. */
    onEvent(e: EngineEvent) {
      switch (e.event) {
        case 'joined':
          if (get().notice?.kind === 'unreachable') set({ notice: null });
          break;
        case 'retrying':
          set({ notice: retryNotice(e.attempt, e.inMs, e.reason) });
          c.log('warn', `coordinator unreachable: ${e.reason}; retry ${e.attempt} in ${e.inMs} ms`);
          break;
        case 'link':
          if (!e.up && get().run.blocked[e.peer]) set({ notice: blockedPeerNotice(e.peer, e.reason) });
          break;
        case 'ended':
          if (e.error) {
            set({ notice: noticeFor(e.error) });
            // Ended by a failure: a reload should not walk into it again by itself.
            void db.saveSession({ contributing: false }, get().walletName).catch(() => {});
          }
          c.log(e.error ? 'error' : 'info', e.error ? `stopped: ${e.error.message}` : 'stopped');
          break;
        default:
          break;
      }
    },
  };
}
