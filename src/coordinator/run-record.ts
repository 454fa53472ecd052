// What a run has recorded, over its saved state (state-store.ts): the next round, the commits
// of recent rounds and the updates they include, members' reports, the tokens trained, and
// the accepted checkpoint of each stage (checkpoint-intake.ts). Loaded when the coordinator starts (a restart resumes
// the run), saved after every change, keeping every round the validator has still to score.
import { openEnvelope } from '../net/envelope.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { CommitView } from '../protocol/messages.ts';
import { tokensOfCommit } from './round-clock.ts';
import type { CommitRecord, CoordinatorStore, MemberReport, PersistedState } from './state-store.ts';
import type { ClosedRound } from './validator.ts';
import { FORGED_PAYLOAD } from '../protocol/messages.ts';
import type { UnreadableReason } from './validator-reads.ts';

/** How far the validator got through the closed rounds. */
export interface ScoringProgress {
  /** Rounds it scored. */
  scoredRounds: number;
  /** The last round it scored or skipped (with the reason recorded), −1 before any. */
  decidedThrough: number;
  /** Rounds it recorded as never to be scored (their data gone), with the reason in its ledger. */
  skippedRounds?: number;
  /**
   * The oldest round whose commit it may replay to rebuild its weights after a restart (that
   * of its own saved weights): kept with the rest. Absent: the first round not decided.
   */
  rebuildFrom?: number;
}

/** A reader of stored updates' payloads (the validator's on-demand reads, on any thread). */
export function storedPayloads(store: CoordinatorStore, config: RunConfig): (round: number, sender: string) => Uint8Array | null {
  return (round, sender) => {
    const bytes = store.loadUpdate(round, sender);
    return bytes ? openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes }).payload : null;
  };
}

/** Reports older than this many rounds (or more than one ahead) are not kept. */
const REPORT_ROUNDS_BACK = 5;

export class RunRecord {
  readonly state: PersistedState;

  constructor(
    private readonly config: RunConfig,
    readonly store: CoordinatorStore,
    /** The validator's progress; undefined when nobody validates. */
    private readonly scoring: () => ScoringProgress | undefined,
    private readonly log: (line: string) => void,
  ) {
    const saved = store.load();
    if (saved && saved.run !== config.run) throw new Error(`the state in ${store.dir} belongs to run '${saved.run}', not '${config.run}': use another --state folder`);
    this.state = saved ?? { format: 1, run: config.run, round: 0, checkpointRound: -1, commits: [], reports: {}, tokensTrained: 0 };
    if (saved) log(`resuming run '${config.run}' at round ${saved.round}`);
    if (saved && saved.tokensTrained === undefined) {
      // A state saved before the count existed: only the commits still kept can be counted.
      this.state.tokensTrained = saved.commits.reduce((n, c) => n + tokensOfCommit(config, c.included), 0);
      log(`tokens trained before round ${saved.commits[0]?.round ?? saved.round} were not recorded by the version that saved this state: counting from there`);
    }
  }

  /** Saves the state, keeping every round the validator has still to score, and the commits it replays to get there. */
  save(): void {
    const scoring = this.scoring();
    const keepFrom = scoring ? scoring.decidedThrough + 1 : Infinity;
    this.store.save(this.state, keepFrom, Math.min(keepFrom, scoring?.rebuildFrom ?? Infinity));
  }

  /** Tokens trained in the committed updates so far (all rounds before the current one). */
  get tokensTrained(): number {
    return this.state.tokensTrained ?? 0;
  }

  commit(round: number): CommitRecord | null {
    return this.state.commits.find((c) => c.round === round) ?? null;
  }

  private payloadOf(envelope: Uint8Array): Uint8Array {
    return openEnvelope(envelope, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes }).payload;
  }

  /**
   * What the validator needs to score a closed round, rebuilt from the saved state (after a
   * restart, or when it fell behind): or why that is no longer possible.
   */
  closedRound(round: number, unreadable: ReadonlyMap<string, UnreadableReason> = new Map()): { ok: true; closed: ClosedRound } | { ok: false; reason: string } {
    const c = this.commit(round);
    if (!c) return { ok: false, reason: `the commit of round ${round} is no longer kept (the state keeps ${this.store.keepRounds} rounds and those the validator has not scored)` };
    const included: ClosedRound['included'] = [];
    const invalid = { ...(c.invalid ?? {}) };
    // A forged body, or a piece root its author signed that is not its body's (validator-reads.ts): invalid.
    for (const [sender, why] of unreadable) if (why === 'forged' || why === 'root') invalid[sender] = Math.max(1, invalid[sender] ?? 0);
    for (const [i, e] of c.included.entries()) {
      const deliveredAt = c.deliveredAt?.[e.sender] ?? c.closedAt + i;
      // A body that does not match its signed hash is applied as nothing, as every replica does (store-read.ts), and scored invalid.
      if (unreadable.get(e.sender) === 'forged') {
        included.push({ sender: e.sender, payload: FORGED_PAYLOAD, deliveredAt });
        continue;
      }
      const bytes = this.store.loadUpdate(round, e.sender);
      if (!bytes) return { ok: false, reason: `the update of ${e.sender} in round ${round} is gone from ${this.store.dir}` };
      // A state saved before delivery times were kept: commit order (by sender) stands in.
      included.push({ sender: e.sender, payload: this.payloadOf(bytes), deliveredAt });
    }
    // The delivered updates not committed: named here, read from the store when the validator needs them.
    const committed = new Set(c.included.map((e) => e.sender));
    const others = (c.delivered ?? []).filter((e) => !committed.has(e.sender)).map((e, i) => ({ sender: e.sender, deliveredAt: c.deliveredAt?.[e.sender] ?? c.closedAt + c.included.length + i }));
    const reports = this.state.reports[round] ?? {};
    const reportedHashes = Object.fromEntries(c.members.map((a) => [a, reports[a]?.weightsHash ?? '']));
    return { ok: true, closed: { round, members: c.members, included, others, missing: c.missing, invalid, reportedHashes, startedAt: c.startedAt, ...(c.clipFloor ? { clipFloor: c.clipFloor } : {}) } };
  }

  /** Whether a closed round's record still names the update of `sender` (committed, or delivered and not yet pruned: state-store.ts). */
  keepsUpdate(round: number, sender: string): boolean {
    const c = this.commit(round);
    return !!c && (c.included.some((e) => e.sender === sender) || !!c.delivered?.some((e) => e.sender === sender));
  }

  /** A stored update's payload (committed or not), or null when it is not stored. */
  storedPayload(round: number, sender: string): Uint8Array | null {
    return storedPayloads(this.store, this.config)(round, sender);
  }

  /** Committed payloads of a round in commit order, or null when not all are stored. */
  commitPayloads(round: number, unreadable: ReadonlyMap<string, UnreadableReason> = new Map()): Uint8Array[] | null {
    const c = this.commit(round);
    if (!c) return null;
    const out: Uint8Array[] = [];
    for (const e of c.included) {
      if (unreadable.get(e.sender) === 'forged') {
        out.push(FORGED_PAYLOAD);
        continue;
      }
      const bytes = this.store.loadUpdate(round, e.sender);
      if (!bytes) return null;
      out.push(this.payloadOf(bytes));
    }
    return out;
  }

  /** Merges what a member reported about a recent round (its loss, bytes, weights hash). */
  noteReport(round: number, address: string, r: Partial<MemberReport>): void {
    if (round > this.state.round + 1 || round < this.state.round - REPORT_ROUNDS_BACK) return;
    const byRound = (this.state.reports[round] ??= {});
    byRound[address] = { ...(byRound[address] ?? { loss: NaN, bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0 }), ...r };
  }
}

/** A commit record as replicas get it: the committed entries and counts, not the member list and delivery times (O(K), not O(N)). */
export function commitView(c: CommitRecord): CommitView {
  // The checkpoint's trust anchors (who was asked, the consensus fingerprint) are O(stages): a late joiner needs them.
  return { round: c.round, included: c.included, members: c.members.length, delivered: c.delivered?.length ?? c.included.length, missing: c.missing.length, ...(c.checkpointBy ? { checkpointBy: c.checkpointBy } : {}), ...(c.weightsAfter ? { weightsAfter: c.weightsAfter } : {}), ...(c.stageWeightsAfter ? { stageWeightsAfter: c.stageWeightsAfter } : {}), ...(c.clipFloor ? { clipFloor: c.clipFloor } : {}) };
}
