// What a coordinator keeps on disk so a restart resumes the run: state.json (the round,
// recent commits, per-round reports, the accepted checkpoint manifests), the updates of recent rounds
// (checkpoint pieces: checkpoint-pieces.ts). Every file is written atomically (temporary file, fsync, rename), so a crash
// leaves the old or the new version.
//
// Retention: every update is stored as it arrives (round-clock.ts). Committed updates and
// their commits are kept for keepRounds rounds and at least back to the oldest stage's latest
// checkpoint (a late joiner loads it and replays every commit since); the updates that were
// delivered but not committed only for DELIVERED_KEEP_ROUNDS (peers fetch them while the
// round runs; the copy check has them). Rounds the validator has not scored keep everything,
// and the commits before them back to the validator's own saved weights (it replays them after
// a restart: validator-restart.ts).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CommitEntry } from '../protocol/messages.ts';
import type { SignedManifest } from '../protocol/checkpoint-manifest.ts';
import { writeFileAtomic } from '../node/files.ts';

export interface CommitRecord {
  round: number;
  members: string[];
  /** The ≤ gatherK updates replicas apply (gather.ts), sorted by sender. */
  included: CommitEntry[];
  /**
   * Every update stored in the round, sorted by sender (absent in states saved before
   * gather-K, where all were included; dropped once the round is older than DELIVERED_KEEP_ROUNDS).
   */
  delivered?: CommitEntry[];
  /** Members that were in the round but delivered nothing in time. */
  missing: string[];
  /** When the round started (absent in states saved before it was kept). */
  startedAt?: number;
  closedAt: number;
  /** When each delivered update reached the coordinator (the validator's copy check orders by it). */
  deliveredAt?: Record<string, number>;
  /** Invalid updates refused in the round, by sender (a validator penalty). */
  invalid?: Record<string, number>;
  /** Who was asked to upload θ_start(round + 1), by stage (checkpoint-intake.ts). */
  checkpointBy?: Record<string, string>;
  /** The consensus weights fingerprint after this commit: what a majority of its members reported holding. */
  weightsAfter?: string;
  /** A pipelined run's consensus per stage: what a majority of the stage's replicas that delivered reported holding. */
  stageWeightsAfter?: Record<string, string>;
  /** Per tensor, the least clip bound when fewer than three updates are committed (aggregate.ts): every replica applies it. */
  clipFloor?: number[];
}

export interface MemberReport {
  loss: number;
  bytesUp: number;
  bytesDown: number;
  rejected: number;
  peers: number;
  weightsHash?: string;
  /** The stage whose weights weightsHash is (pipelined runs). */
  stage?: number;
}

export interface PersistedState {
  format: 1;
  run: string;
  /** The next round to run. */
  round: number;
  checkpointRound: number;
  /** Pipelined runs: the round of each stage's latest checkpoint (stage 0's is checkpointRound). */
  stageCheckpoints?: Record<string, number>;
  commits: CommitRecord[];
  reports: Record<string, Record<string, MemberReport>>;
  /** Tokens trained in all committed updates so far (see the round message's tokensTrained). */
  tokensTrained?: number;
  /** The accepted checkpoint of each stage: its signed manifest (pieces in checkpoint-pieces.ts). */
  checkpointManifests?: Record<string, SignedManifest>;
}

const ADDRESS = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/;

/** Rounds for which updates that were delivered but not committed stay stored. */
export const DELIVERED_KEEP_ROUNDS = 3;

/**
 * The oldest round late joiners replay from: that of the oldest stage's latest checkpoint,
 * less one (that commit names the checkpoint's uploader and weights fingerprint).
 * Before any checkpoint keepRounds alone decides (a run is not kept whole for want of one).
 */
function replayFrom(s: PersistedState): number {
  const rounds = [s.checkpointRound, ...Object.values(s.stageCheckpoints ?? {})];
  return rounds.some((r) => r < 0) ? Infinity : Math.min(...rounds) - 1;
}

export class CoordinatorStore {
  constructor(
    readonly dir: string,
    /** Rounds of commits and updates kept (older ones are pruned). */
    readonly keepRounds = 20,
  ) {
    mkdirSync(join(dir, 'updates'), { recursive: true });
  }

  /** The saved state, or null for a new run; throws with the file named when it is unreadable. */
  load(): PersistedState | null {
    const file = join(this.dir, 'state.json');
    if (!existsSync(file)) return null;
    let s: PersistedState;
    try {
      s = JSON.parse(readFileSync(file, 'utf8')) as PersistedState;
    } catch (e) {
      throw new Error(`coordinator state ${file} is unreadable (${(e as Error).message}): move it away to start the run afresh`, { cause: e });
    }
    if (s.format !== 1 || typeof s.round !== 'number' || !Array.isArray(s.commits)) throw new Error(`coordinator state ${file} is not a Tessera coordinator state: move it away to start afresh`);
    return s;
  }

  /**
   * Writes the state, pruning commits, reports and updates older than keepRounds (and than
   * the latest checkpoints), and the uncommitted updates older than DELIVERED_KEEP_ROUNDS —
   * but nothing from `keepFrom` on (the first round the validator has not scored yet: it
   * needs them), nor commits and committed updates from `rebuildFrom` on (those it replays).
   */
  save(s: PersistedState, keepFrom = Infinity, rebuildFrom = keepFrom): void {
    const oldest = Math.min(s.round - this.keepRounds, keepFrom, rebuildFrom, replayFrom(s));
    const oldestDelivered = Math.min(s.round - DELIVERED_KEEP_ROUNDS, keepFrom);
    s.commits = s.commits.filter((c) => c.round >= oldest);
    for (const c of s.commits) {
      if (c.round >= oldestDelivered || !c.delivered) continue;
      // Only the committed updates are kept from here on: the record says so too.
      this.pruneUncommitted(c);
      delete c.delivered;
      if (c.deliveredAt) c.deliveredAt = Object.fromEntries(c.included.map((e) => [e.sender, c.deliveredAt![e.sender]]));
    }
    for (const r of Object.keys(s.reports)) if (Number(r) < oldest) delete s.reports[r];
    writeFileAtomic(join(this.dir, 'state.json'), new TextEncoder().encode(JSON.stringify(s)));
    this.prune(oldest);
  }

  /** Removes the updates of a round that never closed (a restart begins it again). */
  dropRound(round: number): void {
    if (Number.isInteger(round) && round >= 0) rmSync(join(this.dir, 'updates', String(round)), { recursive: true, force: true });
  }

  private pruneUncommitted(c: CommitRecord): void {
    const committed = new Set(c.included.map((e) => e.sender));
    for (const e of c.delivered ?? []) if (!committed.has(e.sender)) rmSync(join(this.dir, 'updates', String(c.round), `${e.sender}.bin`), { force: true });
  }

  saveUpdate(round: number, sender: string, envelope: Uint8Array): void {
    if (!ADDRESS.test(sender)) throw new Error(`refusing to store an update for '${sender}': not an ss58 address`);
    const dir = join(this.dir, 'updates', String(round));
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, `${sender}.bin`), envelope);
  }

  loadUpdate(round: number, sender: string): Uint8Array | null {
    if (!ADDRESS.test(sender) || !Number.isInteger(round) || round < 0) return null;
    const file = join(this.dir, 'updates', String(round), `${sender}.bin`);
    return existsSync(file) ? new Uint8Array(readFileSync(file)) : null;
  }

  /** Whether the update of (round, sender) is still kept (a bucket's copy is dropped with it). */
  hasUpdate(round: number, sender: string): boolean {
    return ADDRESS.test(sender) && Number.isInteger(round) && round >= 0 && existsSync(join(this.dir, 'updates', String(round), `${sender}.bin`));
  }

  private prune(oldest: number): void {
    const dir = join(this.dir, 'updates');
    for (const name of readdirSync(dir)) {
      if (/^\d+$/.test(name) && Number(name) < oldest) rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}
