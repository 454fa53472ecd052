// The live status of a contribution, folded from engine events: a pure function, so the store
// stays small and the tests can feed it event sequences.
import type { EngineEvent } from '../engine/messages.ts';
import type { Standing } from '../../src/net/protocol.ts';
import { isBlockedLink } from '../engine/errors.ts';

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
  roundsDone: number;
  lastLoss: number | null;
  standing: Standing | null;
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
  roundsDone: 0,
  lastLoss: null,
  standing: null,
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

/** The status after one event. */
export function foldEvent(s: RunStatus, e: EngineEvent): RunStatus {
  // Pipelined runs say which stage a contributor holds (on joining, and when reassigned);
  // read structurally, so a contributor without stages still fits.
  const staged = e as { event: string; stage?: unknown; stages?: unknown };
  if (staged.event === 'stage' && typeof staged.stage === 'number') return { ...s, stage: staged.stage };
  switch (e.event) {
    case 'connecting':
      return { ...s, activity: 'connecting' };
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
      return { ...s, activity: s.stopAfterRound ? 'stopping' : 'waiting', round: e.round };
    case 'round':
      return { ...s, activity: 'training', round: e.round, step: 0, members: e.members };
    case 'step':
      return { ...s, activity: 'training', round: e.round, step: e.step, tokensPerSecond: e.tokensPerSecond, lastLoss: e.loss };
    case 'exchange':
      return { ...s, activity: 'exchanging' };
    case 'sent':
      return { ...s, activity: 'waiting' };
    case 'commit':
      return {
        ...s,
        activity: s.stopAfterRound ? 'stopping' : 'waiting',
        round: e.round + 1,
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
      return { ...s, linked, blocked };
    }
    case 'reward':
      return { ...s, standing: e.standing };
    case 'paused':
      return { ...s, paused: e.paused };
    case 'gpu-share':
      return { ...s, gpuShare: e.share };
    case 'stopped':
    case 'ended':
      return { ...IDLE, standing: s.standing, roundsDone: s.roundsDone, lastLoss: s.lastLoss, bytesUp: s.bytesUp, bytesDown: s.bytesDown };
    default:
      return s;
  }
}
