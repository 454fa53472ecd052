// The store's slice for what this device has seen of its run: the loss and reward history
// (each wallet's own, saved to IndexedDB after every change, one save at a time) and the log
// (each engine event in words, at the chosen level, the last LOG_LIMIT lines). Part of the one
// store (store.ts composes the slices).
import type { EngineEvent } from '../engine/messages.ts';
import { PATH_WORDS } from '../../src/net/link-path.ts';
import { DEFAULT_RUN } from '../../src/protocol/run-config.ts';
import { HISTORY_LIMIT, LOG_LEVELS, type LogLevel, type LossPoint, type RewardPoint } from './db.ts';
import { logLineOf, rewardPointOf } from './event-log.ts';
import { IDLE } from './run-status.ts';
import type { SliceContext } from './store.ts';

export interface LogLine {
  at: number;
  level: LogLevel;
  text: string;
}

export interface HistoryState {
  losses: LossPoint[];
  rewards: RewardPoint[];
  log: LogLine[];
}

const LOG_LIMIT = 300;

export function historyStarting(): HistoryState {
  return { losses: [], rewards: [], log: [] };
}

export function historySlice(c: SliceContext) {
  /** The run the history belongs to ('' before the first join): another run starts it afresh. */
  let historyRun = '';
  /** Each peer's last link state, so a link redialled every second is logged once, not each time. */
  const linkState = new Map<string, string>();
  let saveQueue: Promise<void> = Promise.resolve();

  const log = (level: LogLevel, text: string) => {
    if (LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(c.get().settings.logLevel)) return;
    c.set({ log: [...c.get().log, { at: c.now(), level, text }].slice(-LOG_LIMIT) });
  };

  const persistHistory = () => {
    const { losses, rewards } = c.get();
    const wallet = c.get().walletName;
    saveQueue = saveQueue.then(() => c.deps.db.saveHistory({ run: historyRun, losses, rewards }, wallet)).catch((e: Error) => log('warn', `could not save the history: ${e.message}`));
  };

  /** Wallet `name`'s stored history (empty when there is none or it cannot be read), now this store's run. */
  const read = async (name: string): Promise<Pick<HistoryState, 'losses' | 'rewards'>> => {
    const history = await c.deps.db.loadHistory(name).catch(() => ({ run: '', losses: [], rewards: [] }));
    historyRun = history.run;
    return { losses: history.losses, rewards: history.rewards };
  };

  return {
    log,
    persistHistory,
    read,

    /** This tab's wallet is now `name`: its own history (and, in the worker, its own checkpoints). */
    async useWalletHistory(name: string) {
      await saveQueue;
      const { losses, rewards } = await read(name);
      linkState.clear();
      c.set({ walletName: name, losses, rewards, run: IDLE });
    },

    /** The event's log line, before anything else hears of the event. */
    logEvent(e: EngineEvent) {
      const line = logLineOf(e, c.get().runInfo?.rewardUnit ?? DEFAULT_RUN.rewardUnit);
      if (line) log(line.level, line.text);
    },

    /** The history's part of an event: another run, a loss, a reward, a link's change. */
    onEvent(e: EngineEvent) {
      switch (e.event) {
        case 'joined':
          if (historyRun !== e.run) {
            // Another run: its losses and rewards are not this history's.
            if (historyRun !== '') c.set({ losses: [], rewards: [] });
            historyRun = e.run;
            persistHistory();
          }
          break;
        case 'step':
          c.set({ losses: [...c.get().losses, { round: e.round, step: e.step, loss: e.loss, at: c.now() }].slice(-HISTORY_LIMIT) });
          persistHistory();
          break;
        case 'reward':
          c.set({ rewards: [...c.get().rewards.filter((r) => r.round !== e.round), rewardPointOf(e.round, e.standing)].slice(-HISTORY_LIMIT) });
          persistHistory();
          break;
        case 'link':
          if (linkState.get(e.peer) !== (e.up ? 'up' : e.reason)) log(e.up ? 'info' : 'warn', `peer ${e.peer} ${e.up ? `linked${e.path ? `, ${PATH_WORDS[e.path]}` : ''}` : `unlinked: ${e.reason}`}`);
          linkState.set(e.peer, e.up ? 'up' : e.reason);
          break;
        case 'path':
          log('info', `peer ${e.peer}: the link now goes ${PATH_WORDS[e.path]}`);
          break;
        default:
          break;
      }
    },
  };
}
