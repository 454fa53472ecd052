// The live status of a contribution, folded from engine events: a pure function, so the store
// stays small and the tests can feed it event sequences.
import type { EngineEvent } from '../engine/messages.ts';
import type { Standing } from '../../src/protocol/messages.ts';
import { isBlockedLink } from '../engine/errors.ts';
import type { LinkPath } from '../../src/net/link-path.ts';

export type Activity = 'idle' | 'connecting' | 'retrying' | 'syncing' | 'waiting' | 'training' | 'exchanging' | 'stopping';

export interface RunStatus {
  activity: Activity;
  /** The engine holds training (user, hidden tab, battery or schedule). */
  paused: boolean;
  /** "Finish this round, then stop" was asked. */
  stopAfterRound: boolean;
  run: string | null;
  model: string | null;
  /** The pipeline stage this device holds (0-based) of how many; null before joining. */
  stage: number | null;
  stages: number | null;
  round: number | null;
  step: number;
  tokensPerSecond: number;
  /** Share of wall time the GPU was busy (0..1). */
  gpuShare: number;
  bytesUp: number;
  bytesDown: number;
  /** Peers with an open link, and the members of the current round. */
  linked: string[];
  members: number;
  /** Peers whose link never came up (address → reason). */
  blocked: Record<string, string>;
  /** How each open link travels: direct, or through the run's TURN relay (address → path). */
  paths: Record<string, LinkPath>;
  roundsDone: number;
  /** Inner steps this device trained since the page opened (its part of the run, in tokens with the run's shape). */
  stepsDone: number;
  lastLoss: number | null;
  standing: Standing | null;
  /** Tokens the whole swarm trained in committed updates before the current round (the coordinator's 'round'), or null when not told. */
  tokensTrained: number | null;
  /** Of bytesUp: checkpoints uploaded (the whole model, for late joiners), how many and in all. */
  checkpoints: number;
  checkpointBytes: number;
  /** A long start-up step under way (compiling kernels, fetching the shard, syncing, waiting for peers), or null. */
  progress: Progress | null;
}

export type ProgressPhase = 'compile' | 'shard' | 'sync' | 'peers';

export interface Progress {
  phase: ProgressPhase;
  done: number;
  total: number;
  text: string;
}

export const IDLE: Readonly<RunStatus> = Object.freeze({
  activity: 'idle',
  paused: false,
  stopAfterRound: false,
  run: null,
  model: null,
  stage: null,
  stages: null,
  round: null,
  step: 0,
  tokensPerSecond: 0,
  gpuShare: 0,
  bytesUp: 0,
  bytesDown: 0,
  linked: Object.freeze([]) as unknown as string[],
  members: 0,
  blocked: Object.freeze({}) as Record<string, string>,
  paths: Object.freeze({}) as Record<string, LinkPath>,
  roundsDone: 0,
  stepsDone: 0,
  lastLoss: null,
  standing: null,
  tokensTrained: null,
  checkpoints: 0,
  checkpointBytes: 0,
  progress: null,
}) as RunStatus;

export const ACTIVITY_LABEL: Record<Activity, string> = {
  idle: 'Not contributing',
  connecting: 'Connecting',
  retrying: 'Waiting to reconnect',
  syncing: 'Syncing weights',
  waiting: 'Waiting for the next round',
  training: 'Training',
  exchanging: 'Exchanging updates',
  stopping: 'Finishing',
};

const PHASES: readonly string[] = ['compile', 'shard', 'sync', 'peers'];
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The contributor's start-up progress and checkpoint uploads, read structurally (events of a newer contributor than these types). */
function foldExtra(s: RunStatus, e: { event: string; [k: string]: unknown }): RunStatus | null {
  if (e.event === 'progress' && typeof e.phase === 'string' && PHASES.includes(e.phase) && finite(e.done) && finite(e.total)) {
    return { ...s, progress: { phase: e.phase as ProgressPhase, done: e.done, total: e.total, text: typeof e.text === 'string' ? e.text : '' } };
  }
  if (e.event === 'checkpoint' && finite(e.bytes)) {
    // Counted in bytesUp at once (the contributor's own total says so at the next commit).
    return { ...s, checkpoints: s.checkpoints + 1, checkpointBytes: s.checkpointBytes + e.bytes, bytesUp: s.bytesUp + e.bytes };
  }
  return null;
}

/** The status after one event. */
export function foldEvent(s: RunStatus, e: EngineEvent): RunStatus {
  // Pipelined runs say which stage a contributor holds (on joining, and when reassigned);
  // read structurally, so a contributor without stages still fits.
  const staged = e as { event: string; stage?: unknown; stages?: unknown; tokensTrained?: unknown };
  if (staged.event === 'stage' && typeof staged.stage === 'number') return { ...s, stage: staged.stage };
  const extra = foldExtra(s, e as unknown as { event: string });
  if (extra) return extra;
  switch (e.event) {
    case 'connecting':
      // A new contributor: its byte counts start again.
      return { ...s, activity: 'connecting', bytesUp: 0, bytesDown: 0, checkpoints: 0, checkpointBytes: 0 };
    case 'retrying':
      return { ...s, activity: 'retrying' };
    case 'joined':
      return {
        ...s,
        activity: 'syncing',
        run: e.run,
        model: e.model,
        round: e.round,
        stage: typeof staged.stage === 'number' ? staged.stage : 0,
        stages: typeof staged.stages === 'number' ? staged.stages : 1,
      };
    case 'synced':
      return { ...s, activity: s.stopAfterRound ? 'stopping' : 'waiting', round: e.round, progress: s.progress?.phase === 'sync' ? null : s.progress };
    case 'round':
      return { ...s, activity: 'training', round: e.round, step: 0, members: e.members, progress: null, tokensTrained: finite(staged.tokensTrained) ? staged.tokensTrained : s.tokensTrained };
    case 'step':
      return { ...s, activity: 'training', round: e.round, step: e.step, tokensPerSecond: e.tokensPerSecond, lastLoss: e.loss, stepsDone: s.stepsDone + 1, progress: null };
    case 'exchange':
      return { ...s, activity: 'exchanging' };
    case 'sent':
      return { ...s, activity: 'waiting' };
    case 'commit':
      return {
        ...s,
        activity: s.stopAfterRound ? 'stopping' : 'waiting',
        round: e.round + 1,
        // The contributor's totals (a checkpoint, counted above at its upload, is in them from this commit on).
        bytesUp: e.bytesUp,
        bytesDown: e.bytesDown,
        roundsDone: s.roundsDone + (e.trained ? 1 : 0),
      };
    case 'link': {
      const blocked = { ...s.blocked };
      if (e.up) delete blocked[e.peer];
      else if (isBlockedLink(e.reason)) blocked[e.peer] = e.reason;
      const linked = s.linked.filter((p) => p !== e.peer);
      if (e.up) linked.push(e.peer);
      const paths = { ...s.paths };
      if (e.up && e.path) paths[e.peer] = e.path;
      else delete paths[e.peer];
      return { ...s, linked, blocked, paths };
    }
    case 'path':
      // The path an open link uses now (ICE moved to another candidate pair).
      return s.linked.includes(e.peer) ? { ...s, paths: { ...s.paths, [e.peer]: e.path } } : s;
    case 'reward':
      return { ...s, standing: e.standing };
    case 'paused':
      return { ...s, paused: e.paused };
    case 'gpu-share':
      return { ...s, gpuShare: e.share };
    case 'stopped':
    case 'ended':
      return { ...IDLE, ...kept(s) };
    default:
      return s;
  }
}

/** What a stopped contribution keeps showing: what this device did, and the run's last figures. */
export function kept(s: RunStatus): Partial<RunStatus> {
  const { standing, roundsDone, stepsDone, lastLoss, bytesUp, bytesDown, checkpoints, checkpointBytes, tokensTrained } = s;
  return { standing, roundsDone, stepsDone, lastLoss, bytesUp, bytesDown, checkpoints, checkpointBytes, tokensTrained };
}
