// What `tessera swarm` keeps of a run: each contributor process's record (PeerProcess, filled
// from its JSON events), the summary built from them and the coordinator's status at the end
// (SwarmSummary: printed with --json, kept as summary.json), and the final weights copied
// into --out. swarm-report.ts turns the summary into words.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { localCheckpointName } from '../contributor/sync.ts';
import type { Coordinator } from '../coordinator/coordinator.ts';
import { FileCheckpointStore } from '../node/checkpoint-files.ts';
import type { Standing } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { LinkTally } from './swarm-links.ts';

/** One `tessera contribute` process of the swarm and what its events told. */
export interface PeerProcess {
  name: string;
  address: string;
  child: ChildProcess;
  rounds: number[];
  /** The pipeline stage it holds (0 in a run of one stage). */
  stage: number;
  busy: number[];
  rerouted: number;
  dropped: number;
  bytesUp: number;
  bytesDown: number;
  /** Committed updates it gathered from neighbours and from the store, and served to neighbours (all rounds). */
  gathered: GatherCounts;
  rejected: Record<string, number>;
  exit: Promise<number | null>;
  killed: boolean;
  source?: string;
  /** The validator's latest verdict on it. */
  standing?: Standing;
  /** Started in place of a killed one. */
  replacement: boolean;
  /** The round whose θ_start it holds, as last reported; −1 before it synced. */
  reached: number;
  peakRssBytes: number | null;
  longestStallMs: number | null;
  /** The start-up phase it last reported, and the kernels it compiled ahead. */
  phase: string;
  kernelsCompiled: number;
}

/**
 * A peer's gather exchange over the run: updates from neighbours / the store, served; its
 * largest round's bytes, the most updates it held after a commit, its largest update envelope.
 */
export interface GatherCounts {
  fromPeers: number;
  fromStore: number;
  served: number;
  maxRoundBytesUp: number;
  maxRoundBytesDown: number;
  maxHeld: number;
  maxUpdateBytes: number;
}

export function newGatherCounts(): GatherCounts {
  return { fromPeers: 0, fromStore: 0, served: 0, maxRoundBytesUp: 0, maxRoundBytesDown: 0, maxHeld: 0, maxUpdateBytes: 0 };
}

export interface SwarmSummary {
  run: string;
  model: string;
  peers: number;
  rounds: number;
  lossPerRound: { round: number; loss: number | null; members: number; included: number; missing: number }[];
  weightsIdentical: boolean;
  weightsHashes: Record<number, Record<string, string>>;
  stages: number;
  peersDetail: { name: string; address: string; stage: number; busyFraction: number | null; rerouted: number; droppedMicroBatches: number; roundsCompleted: number; bytesUp: number; bytesDown: number; gathered: GatherCounts; rejected: Record<string, number>; killed: boolean; syncedFrom?: string; share?: number; reward?: number; pendingReward?: number; peakRssBytes: number | null; longestStallMs: number | null; kernelsCompiled: number }[];
  /** Contributors the coordinator dropped for missing heartbeats. */
  heartbeatDrops: number;
  rewardUnit: string;
  /** The final weights (one file per stage) and the summary's JSON, kept after the swarm ends. */
  out: { dir: string; weights: string[] };
  bytesMoved: number;
  /** Pairs of neighbours by how they exchanged updates: direct link, TURN relay, or the store (never linked). */
  links: LinkTally;
  rejected: { coordinator: Record<string, number>; peers: Record<string, number> };
  seconds: number;
}

/** What the peers reported at each round's commit, by round then by peer name. */
export interface RoundRecord {
  losses: Record<number, number[]>;
  /** Weight fingerprints after the round. */
  hashes: Record<number, Record<string, string>>;
  /** The stage each peer held then (replicas of one stage must agree). */
  stageAt: Record<number, Record<string, number>>;
}

export interface SummaryInput {
  config: RunConfig;
  /** N and R as asked. */
  peers: number;
  rounds: number;
  processes: readonly PeerProcess[];
  record: RoundRecord;
  status: ReturnType<Coordinator['status']>;
  /** The last round any peer trained (read before the coordinator stopped), −1 if none. */
  lastTrained: number;
  out: SwarmSummary['out'];
  seconds: number;
  links: LinkTally;
}

export function summarize(s: SummaryInput): SwarmSummary {
  const { config, processes: peers, status, record: { losses, hashes, stageAt }, rounds, lastTrained } = s;
  return {
    run: config.run,
    model: config.model,
    peers: s.peers,
    rounds,
    lossPerRound: status.commits.filter((c) => c.round < Math.max(rounds, lastTrained + 1)).map((c) => {
      const l = losses[c.round] ?? [];
      return { round: c.round, loss: l.length ? l.reduce((a, b) => a + b, 0) / l.length : null, members: c.members, included: c.included.length, missing: c.missing.length };
    }),
    stages: config.stages,
    // replicas of one stage hold the same layers: their fingerprints must agree
    weightsIdentical: Object.entries(hashes).every(([round, h]) => {
      const byStage = new Map<number, Set<string>>();
      for (const [name, hash] of Object.entries(h)) {
        const stage = stageAt[Number(round)]?.[name] ?? 0;
        byStage.set(stage, (byStage.get(stage) ?? new Set()).add(hash));
      }
      return [...byStage.values()].every((set) => set.size === 1);
    }),
    weightsHashes: hashes,
    peersDetail: peers.map((p) => ({ name: p.name, address: p.address, stage: p.stage, busyFraction: p.busy.length ? p.busy.reduce((a, b) => a + b, 0) / p.busy.length : null, rerouted: p.rerouted, droppedMicroBatches: p.dropped, roundsCompleted: p.rounds.length, bytesUp: p.bytesUp, bytesDown: p.bytesDown, gathered: p.gathered, rejected: p.rejected, killed: p.killed, syncedFrom: p.source, share: p.standing?.share, reward: p.standing?.totalReward, pendingReward: p.standing?.pendingReward, peakRssBytes: p.peakRssBytes, longestStallMs: p.longestStallMs, kernelsCompiled: p.kernelsCompiled })),
    heartbeatDrops: status.heartbeatDrops,
    rewardUnit: config.rewardUnit,
    out: s.out,
    bytesMoved: peers.reduce((sum, p) => sum + p.bytesUp, 0),
    links: s.links,
    rejected: {
      coordinator: status.rejected,
      peers: peers.reduce<Record<string, number>>((acc, p) => {
        for (const [k, v] of Object.entries(p.rejected)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {}),
    },
    seconds: s.seconds,
  };
}

/**
 * Copies θ_start after the last round (parameters only) from a contributor's saved state into
 * `outDir`, one file per stage: weights.ckpt, or weights-stage<k>.ckpt in a pipelined run.
 * The peer that got furthest of each stage is taken (all replicas of a stage agree).
 */
export async function keepFinalWeights(peers: PeerProcess[], config: RunConfig, work: string, outDir: string): Promise<string[]> {
  const out = new FileCheckpointStore(outDir);
  const files: string[] = [];
  for (let stage = 0; stage < config.stages; stage++) {
    const holders = peers.filter((p) => p.stage === stage && !p.killed && p.reached >= 0).sort((a, b) => b.reached - a.reached);
    for (const p of holders) {
      const saved = await new FileCheckpointStore(join(work, p.name)).load(localCheckpointName(config.run, stage)).catch(() => null);
      if (!saved) continue;
      const tensors = new Map([...saved.tensors].filter(([name]) => name.startsWith('param/')));
      const name = config.stages === 1 ? 'weights' : `weights-stage${stage}`;
      await out.save(name, { ...saved, tensors, meta: { ...saved.meta, run: config.run, savedBy: 'tessera swarm', from: p.name } });
      files.push(join(outDir, `${name}.ckpt`));
      break;
    }
  }
  return files;
}
