// What the log says of each engine event, and a scored round as a history point: pure, so
// the store stays small and the words are tested without it.
import type { EngineEvent } from '../engine/messages.ts';
import type { Standing } from '../../src/protocol/messages.ts';
import { formatBytes } from '../engine/memory.ts';
import type { LogLevel, RewardPoint } from './db.ts';
import { progressText, rewardText } from './human.ts';

/** The log line of an event, or null for those the store logs itself (links, retries, the end) or not at all. */
export function logLineOf(ev: EngineEvent, rewardUnit: string): { level: LogLevel; text: string } | null {
  // Events of a newer contributor than these types (start-up progress, checkpoint uploads), read structurally.
  const x = ev as unknown as { event: string; round?: unknown; bytes?: unknown; phase?: unknown; done?: unknown; total?: unknown; text?: unknown };
  if (x.event === 'checkpoint' && typeof x.bytes === 'number') return { level: 'info', text: `uploaded a checkpoint of round ${String(x.round)} (${formatBytes(x.bytes)}: the whole model, so newcomers can start from it)` };
  if (x.event === 'progress' && typeof x.phase === 'string') {
    const text = progressText({ phase: x.phase, done: Number(x.done), total: Number(x.total) });
    return { level: 'debug', text: typeof x.text === 'string' && x.text ? `${text} — ${x.text}` : text };
  }
  const e = ev;
  switch (e.event) {
    case 'joined':
      return { level: 'info', text: `joined run ${e.run} (${e.model}) at round ${e.round} as ${e.address}` };
    case 'synced':
      return { level: 'info', text: `holding the weights of round ${e.round} (from ${e.source})` };
    case 'step':
      return { level: 'debug', text: `round ${e.round} step ${e.step}: loss ${e.loss.toFixed(4)}, ${e.tokensPerSecond.toFixed(0)} tokens/s` };
    case 'commit':
      return { level: 'info', text: `round ${e.round} committed: ${e.included}${e.delivered !== undefined ? ` of ${e.delivered}` : ''} update(s), ${e.fromPeers} from peers, ${e.fetched} from the coordinator` };
    case 'reward':
      return { level: 'info', text: `round ${e.round} scored: rank ${e.standing.rank} of ${e.standing.of}, reward ${rewardText(e.standing.totalReward, rewardUnit)} in total` };
    case 'warning':
      return { level: 'warn', text: e.text };
    case 'rejected':
      return { level: 'warn', text: `refused a message from ${e.from}: ${e.reason}` };
    default:
      return null;
  }
}

/** A standing as a point of the reward history (with the rounds not yet scored and the escrow, when the coordinator says). */
export function rewardPointOf(round: number, st: Standing): RewardPoint {
  const pending = (st as { pendingRounds?: unknown }).pendingRounds;
  const point: RewardPoint = { round, score: st.ema, rank: st.rank, of: st.of, share: st.share, epoch: st.epoch, epochReward: st.epochReward, totalReward: st.totalReward };
  for (const k of ['pendingReward', 'forfeitedReward'] as const) if (typeof st[k] === 'number' && Number.isFinite(st[k])) point[k] = st[k];
  return typeof pending === 'number' && Number.isInteger(pending) && pending >= 0 ? { ...point, pendingRounds: pending } : point;
}
