// What a contributor tells its shell (`tessera contribute`, `tessera swarm`, the page, the
// desktop app): one event stream, folded into views by each. Fields added to an event after
// its first version are optional in the types: views also fold recorded events.
import type { Standing } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { ProgressPhase } from './progress.ts';
import type { LinkPath } from '../net/link-path.ts';

export type ContributorEvent =
  | ({ event: 'joined'; address: string; run: string; round: number; model: string; stage: number; stages: number } & Partial<RunDescription>)
  /** Start-up work under way: compiling kernels, fetching the data shard (bytes), syncing weights, waiting for peers. */
  | { event: 'progress'; phase: ProgressPhase; done: number; total: number; text: string }
  | { event: 'stage'; stage: number; reason: string }
  | { event: 'synced'; round: number; source: string; weightsHash: string }
  /** Round `round` of the run's `plannedRounds` starts with us and `members` − 1 others; `tokensTrained`: the whole swarm's, before it. */
  | { event: 'round'; round: number; members: number; plannedRounds?: number; tokensTrained?: number }
  | { event: 'step'; round: number; step: number; loss: number; tokensPerSecond: number; busy?: number; rerouted?: number; dropped?: number }
  | { event: 'exchange'; round: number; bytes: number; peers: number }
  /** The store accepted our update of `round`; `delivered`: neighbours told we hold it (`failed`: always 0 since protocol 2). */
  | { event: 'sent'; round: number; bytes: number; delivered: number; failed: number }
  /**
   * Round `round`'s commit applied: `included` updates (of `delivered` the store had), `fromPeers`
   * gathered from neighbours and `fetched` from the store; `served`: updates we sent neighbours
   * this round (`refusedBusy`: wants refused once our cap was spent); `held`: updates in memory;
   * bytes in all and this round's (`roundBytesUp`/`roundBytesDown`); `tokensContributed`: tokens
   * of this contributor's updates committed so far (this session).
   */
  | {
      event: 'commit'; round: number; trained: boolean; loss: number | null; included: number; delivered?: number; fromPeers: number; fetched: number;
      served?: number; refusedBusy?: number; held?: number; bytesUp: number; bytesDown: number; roundBytesUp?: number; roundBytesDown?: number;
      peers: number; rejected: Record<string, number>; weightsHash: string; tokensContributed?: number;
    }
  /** We uploaded the run's checkpoint of `round` (the commit asked us to): `bytes` sent. */
  | { event: 'checkpoint'; round: number; bytes: number }
  | { event: 'rejected'; from: string; reason: string; message: string }
  /** A link came up or went down; once up, `path` says whether it is direct or relayed (TURN), `route` the candidate types (local/remote, e.g. srflx/srflx). */
  | { event: 'link'; peer: string; up: boolean; reason: string; path?: LinkPath; route?: string }
  /** An open link's path as it stands now, when it differs from what was told (ICE moved to another candidate pair): read a few seconds after link-up, then every 30 s and before stopping. */
  | { event: 'path'; peer: string; path: LinkPath; route: string }
  | { event: 'reward'; round: number; standing: Standing }
  | { event: 'warning'; text: string }
  /** `longestStallMs`: the longest this process went without running a timer (heartbeats stop meanwhile). */
  | { event: 'stopped'; round: number; saved: boolean; longestStallMs?: number };

/** What a volunteer is told about the run on joining (from its run config). */
export type RunDescription = Pick<RunConfig, 'name' | 'description' | 'owner' | 'homepage' | 'rewardUnit' | 'rewardNote' | 'plannedRounds' | 'plannedTokens'>;

/** 'now': at the next step, the round's work dropped; 'after-round': after the round's commit. */
export type StopMode = 'now' | 'after-round';

export type OnEvent = (e: ContributorEvent) => void;
