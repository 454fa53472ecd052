// What a coordinator keeps on disk so a restart resumes the run: state.json (the round,
// recent commits, per-round reports), the committed updates of recent rounds (late joiners
// and peers that missed one fetch them), and the latest checkpoint. Every file is written
// atomically (temporary file, fsync, rename), so a crash leaves the old or the new version.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CommitEntry } from '../protocol/messages.ts';
import { writeFileAtomic } from '../node/files.ts';

export interface CommitRecord {
  round: number;
  members: string[];
  included: CommitEntry[];
  /** Members that were in the round but delivered nothing in time. */
  missing: string[];
  closedAt: number;
  /** When each included update reached the coordinator (the validator's copy check orders by it). */
  deliveredAt?: Record<string, number>;
  /** Invalid updates refused in the round, by sender (a validator penalty). */
  invalid?: Record<string, number>;
}

export interface MemberReport {
  loss: number;
  bytesUp: number;
  bytesDown: number;
  rejected: number;
  peers: number;
  weightsHash?: string;
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
}

const ADDRESS = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/;

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
   * Writes the state, pruning commits, reports and updates older than keepRounds — but none
   * from `keepFrom` on (the first round the validator has not scored yet: it needs them).
   */
  save(s: PersistedState, keepFrom = Infinity): void {
    const oldest = Math.min(s.round - this.keepRounds, keepFrom);
    s.commits = s.commits.filter((c) => c.round >= oldest);
    for (const r of Object.keys(s.reports)) if (Number(r) < oldest) delete s.reports[r];
    writeFileAtomic(join(this.dir, 'state.json'), new TextEncoder().encode(JSON.stringify(s)));
    this.prune(oldest);
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

  saveCheckpoint(envelope: Uint8Array, stage = 0): void {
    writeFileAtomic(join(this.dir, checkpointFile(stage)), envelope);
  }

  loadCheckpoint(stage = 0): Uint8Array | null {
    const file = join(this.dir, checkpointFile(stage));
    return existsSync(file) ? new Uint8Array(readFileSync(file)) : null;
  }

  private prune(oldest: number): void {
    const dir = join(this.dir, 'updates');
    for (const name of readdirSync(dir)) {
      if (/^\d+$/.test(name) && Number(name) < oldest) rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}

function checkpointFile(stage: number): string {
  if (!Number.isInteger(stage) || stage < 0 || stage > 0xffff) throw new RangeError(`stage must be a u16, got ${stage}`);
  return stage === 0 ? 'checkpoint.bin' : `checkpoint-stage${stage}.bin`;
}
