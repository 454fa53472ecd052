// The round clock of one run: when a round starts, which updates it collects, when it closes
// and what its commit says. The coordinator (coordinator.ts) owns the connections and feeds
// this class what they say; it never touches a socket itself.
//
// Round r starts once `minMembers` joined peers hold θ_start(r) (a pipelined run also needs a
// ready peer in every stage), after a short grace so one fast peer does not start — and
// finish — a round alone. Peers that sync later join it while it runs (not in a pipelined
// run: its steps are shared by the whole pipeline). It closes when every member has
// delivered or been refused (an invalid update, envelope or a stale round's update from a
// member ends its turn: waiting for it would only hold the round to its deadline), when no
// member is left, or at the deadline; the commit names at most gatherK of
// the stored updates (gather.ts), sorted by sender, so every replica applies the same set in
// the same order.
//
// What it sends stays bounded per peer: `round` only to the round's members (a late member
// gets its own; nobody else hears of it), with a member count (the member list only in a
// pipelined run); `commit` with ≤ gatherK entries. Each accepted update is written to the
// store at once (one taken in from a bucket stays there, unread: offerSignedEnds) and only its
// hash, piece root, arrival time and stage are kept here: nothing holds all N updates. How an
// update is opened, and where its piece root comes from, is update-intake.ts.
import { parameterLayout } from '../model/config.ts';
import type { EnvelopeHeader } from '../net/envelope.ts';
import { toHex } from '../base/hex.ts';
import type { CommitEntry, RunState, ServerMessage } from '../protocol/messages.ts';
import { runModel, stageBounds, type RunConfig } from '../protocol/run-config.ts';
import { UpdateError, decodeUpdate } from '../sparseloco/wire.ts';
import { FLOORED_BELOW } from '../sparseloco/aggregate.ts';
import { configHash } from '../model/identity.ts';
import { gatherK } from './gather.ts';
import type { StageBalancer } from './stages.ts';
import type { CommitRecord, CoordinatorStore, PersistedState } from './state-store.ts';
import { checkpointAsks } from './checkpoint-intake.ts';
import { openSignedEnds, openUpdateEnvelope, type Refusal } from './update-intake.ts';
import type { SignedEnds } from './bucket-updates.ts';

/** The peers as the coordinator's membership sees them. */
export interface RoundPeers {
  /** Joined peers, in the order they joined. */
  addresses(): string[];
  /** Joined peers holding θ_start(round) of the stage they are placed in. */
  readyFor(round: number): string[];
  /** To every joined peer (a commit: it is bounded by gatherK). */
  broadcast(m: ServerMessage): void;
  /** To one peer, if still joined. */
  sendTo(address: string, m: ServerMessage): void;
  /** Tells a peer it now holds another stage; it is not ready until it has that stage's weights. */
  moveStage(address: string, stage: number, reason: string): void;
}

/** What the round clock needs from the coordinator. */
export interface RoundClockContext {
  readonly config: RunConfig;
  /** The run's saved state, shared with the coordinator: the clock advances round, commits and tokensTrained. */
  readonly state: PersistedState;
  readonly store: CoordinatorStore;
  readonly stages: StageBalancer;
  readonly peers: RoundPeers;
  readonly now: () => number;
  readonly log: (line: string) => void;
  /** After a commit, wait this long at most for last round's members to sync before starting. */
  readonly syncGraceMs: number;
  /** Start no round numbered this or higher. */
  readonly roundLimit?: number;
  /** Called after each commit (the round is in the saved state: the validator reads it from there). */
  readonly onRoundClosed?: (round: number) => void;
  /** A sender's standing with the validator (higher is better), undefined for a newcomer: gather-K ranks by it. */
  readonly standing: (address: string) => number | undefined;
  /** Whether the validator bars the sender from commits (its last evaluated update was harmful, invalid or a copy). */
  readonly barred?: (address: string) => boolean;
  /** The commit's clip floor (the validator's reference norm per tensor: aggregate.ts), or undefined for none. */
  readonly clipFloor?: () => number[] | undefined;
  /** The waiting counts changed (a round started or closed): the coordinator tells the swarm. */
  readonly onPhase?: () => void;
  /** Round `round` was announced to a member (a bucket store hands it an upload URL). */
  readonly onAnnounced?: (address: string, round: number, deadline: number) => void;
  /** Saves the state (the coordinator knows which rounds the validator still needs). */
  save(): void;
}

/** An update accepted into the round in progress (its bytes are in the store, not here). */
interface Delivery {
  hash: string;
  at: number;
  stage: number;
  /**
   * Root of the envelope's piece hashes (src/net/pieces.ts): committed with it, so neighbours'
   * pieces can be checked one by one. Computed here for an envelope sent over the WebSocket,
   * the author's signed root for one from a bucket (update-intake.ts); undefined for a bucket's
   * update announced without one: replicas read it whole.
   */
  pieces: string | undefined;
  /** With a bucket's root: the bucket's MD5 of the body (update-intake.ts), committed beside it. */
  bodyMd5?: string;
}

export type { Refusal };

/** Tokens a commit's updates trained: innerSteps × batch × seq per stage-0 update. */
export function tokensOfCommit(config: RunConfig, included: readonly CommitEntry[]): number {
  const perUpdate = config.innerSteps * config.batch * config.seq;
  return included.filter((e) => e.stage === 0).length * perUpdate;
}

export class RoundClock {
  private phase: RunState['phase'] = 'waiting';
  private members = new Set<string>();
  private delivered = new Map<string, Delivery>();
  /** Invalid updates refused in the round in progress, by sender (a validator penalty). */
  private invalid: Record<string, number> = {};
  /** Members whose update the round in progress refused: their turn is over, as if delivered. */
  private refused = new Set<string>();
  private deadline = 0;
  /** When the round running started (its duration tells the validator how soon the next may close). */
  private startedAt = 0;
  private waitingSince: number;
  private readySince: number | null = null;
  /** Parameter layout of each stage (one stage: the whole model), to decode updates against. */
  private readonly layouts: { name: string; shape: readonly number[] }[][];
  private readonly hash: number;

  constructor(private readonly ctx: RoundClockContext) {
    const cfg = runModel(ctx.config);
    this.layouts = stageBounds(ctx.config).map((r) => parameterLayout(cfg, r.from, r.to).map((s) => ({ name: s.name, shape: s.shape })));
    this.hash = configHash(cfg);
    this.waitingSince = ctx.now();
    // Updates stored for the current round before a restart belong to a round that never closed.
    ctx.store.dropRound(ctx.state.round);
  }

  get currentPhase(): RunState['phase'] {
    return this.phase;
  }

  /** Members of the round in progress (or of none), sorted. */
  memberList(): string[] {
    return [...this.members].sort();
  }

  get memberCount(): number {
    return this.members.size;
  }

  /** Joined peers ready for the round awaited (the swarm's counts). */
  readyCount(): number {
    return this.ctx.peers.readyFor(this.ctx.state.round).length;
  }

  /** Senders whose update the round in progress has accepted, sorted. */
  deliveredSenders(): string[] {
    return [...this.delivered.keys()].sort();
  }

  /** When the round in progress closes at the latest; null while waiting. */
  deadlineIfTraining(): number | null {
    return this.phase === 'training' ? this.deadline : null;
  }

  /** Whether `round` is the round in progress (its updates are not committed yet). */
  isInProgress(round: number): boolean {
    return round === this.ctx.state.round && this.phase === 'training';
  }

  /** Counts an invalid update (or envelope) from a member against the round in progress; it ends the member's turn. */
  countInvalid(address: string): void {
    this.invalid[address] = (this.invalid[address] ?? 0) + 1;
    this.endTurn(address);
    this.maybeClose();
  }

  /** A member of the round in training that sent something refused is done (the caller calls maybeClose). */
  private endTurn(address: string): void {
    if (this.phase === 'training' && this.members.has(address)) this.refused.add(address);
  }

  /** The refusal of a member's update, which ends its turn. */
  private turnEnded(sender: string, r: Refusal): { ok: false } & Refusal {
    this.endTurn(sender);
    return { ok: false, ...r };
  }

  /** A peer now holds θ_start(round): it joins the round in progress, or one may start. */
  peerSynced(address: string, round: number): void {
    // A pipelined round's steps involve every stage at once: a late peer waits for the next.
    if (this.phase === 'training' && round === this.ctx.state.round && !this.members.has(address) && this.ctx.config.stages === 1) {
      this.members.add(address); // joins the round in progress: only it is told
      this.announceRound(address);
    }
    this.maybeStart();
  }

  /** A peer left; true when it was a member of the round (the caller then calls maybeClose). */
  removeMember(address: string): boolean {
    return this.members.delete(address);
  }

  /** Opens a member's update envelope (update-intake.ts) and offers it; the caller calls maybeClose. */
  offerEnvelope(sender: string, envelope: Uint8Array): { ok: true; round: number; hash: string } | ({ ok: false } & Refusal) {
    const opened = openUpdateEnvelope(this.ctx.config, sender, envelope);
    if (!opened.ok) return opened;
    const { header, payload } = opened;
    const refused = this.admit(sender, header);
    if (refused) return refused;
    try {
      // The frame only (checksum, config, round, layout): a full decode costs ~60× more and
      // every replica and the validator decode what they use (an undecodable body is refused
      // there alike, and the validator counts it as invalid).
      decodeUpdate(payload, { configHash: this.hash, round: header.round, layout: this.layouts[header.stage], maxBytes: this.ctx.config.maxMessageBytes, structureOnly: true });
    } catch (e) {
      if (e instanceof UpdateError) return this.turnEnded(sender, { what: `update-${e.reason}`, reason: e.message });
      throw e;
    }
    // Stored at once: the round keeps a hash per sender, not N updates.
    this.ctx.store.saveUpdate(header.round, sender, envelope);
    return { ...this.keep(sender, header, opened.pieces()), round: header.round };
  }

  /**
   * A bucket's update by the two ends of its envelope and its author's signed piece root
   * (bucket-updates.ts, update-intake.ts), not its body: the same checks of round, membership
   * and stage, then kept by its payload hash with the author's root (none when it sent none:
   * replicas then read it whole from the bucket). Whoever reads the body checks it against the
   * signed hash (store-read.ts, validator-reads.ts); the caller calls maybeClose.
   */
  offerSignedEnds(sender: string, ends: SignedEnds): { ok: true; round: number; hash: string } | ({ ok: false } & Refusal) {
    const opened = openSignedEnds(this.ctx.config, sender, ends);
    if (!opened.ok) return opened;
    const refused = this.admit(sender, opened.header);
    return refused ?? { ...this.keep(sender, opened.header, opened.pieces, opened.bodyMd5), round: opened.header.round };
  }

  /** Why the round in progress refuses `sender`'s update with this header, or null. */
  private admit(sender: string, header: EnvelopeHeader): ({ ok: false } & Refusal) | null {
    const round = this.ctx.state.round;
    // A member's update for another round: its round r−1 update would have arrived before it
    // synced θ_start(r) (one ordered socket), so this is a replay, not a slow peer.
    if (this.phase !== 'training' || header.round !== round) return this.turnEnded(sender, { what: 'stale-round', reason: `update for round ${header.round}; round ${round} is ${this.phase}` });
    if (!this.members.has(sender)) return { ok: false, what: 'unknown-member', reason: `${sender} is not a member of round ${header.round}` };
    if (this.delivered.has(sender)) return { ok: false, what: 'duplicate', reason: `a second update for round ${header.round}` };
    const stage = this.ctx.stages.stageOf(sender) ?? 0;
    if (header.stage !== stage) return this.turnEnded(sender, { what: 'wrong-stage', reason: `an update of stage ${header.stage} from a peer of stage ${stage}` });
    return null;
  }

  private keep(sender: string, header: EnvelopeHeader, pieces: string | undefined, bodyMd5?: string): { ok: true; hash: string } {
    const hash = toHex(header.payloadHash);
    this.delivered.set(sender, { hash, at: this.ctx.now(), stage: header.stage, pieces, ...(bodyMd5 ? { bodyMd5 } : {}) });
    return { ok: true, hash };
  }

  /** Whether the round in progress accepted an update from `sender`. */
  hasDelivered(sender: string): boolean {
    return this.phase === 'training' && this.delivered.has(sender);
  }

  /** One beat of the clock: close a round past its deadline, or start one if it can. */
  tick(now: number): void {
    if (this.phase === 'training' && now >= this.deadline) this.closeRound('deadline');
    else this.maybeStart();
  }

  maybeStart(): void {
    const { config, state, stages } = this.ctx;
    if (this.phase !== 'waiting') return;
    if (this.ctx.roundLimit !== undefined && state.round >= this.ctx.roundLimit) return;
    const r = state.round;
    if (config.stages > 1) this.moveToStarvedStages();
    const ready = this.ctx.peers.readyFor(r);
    const covered = stages.counts(ready).every((n) => n > 0);
    if (ready.length < config.minMembers || !covered) {
      this.readySince = null; // the grace period counts from when enough peers are ready
      return;
    }
    // Give the other peers (last round's members applying the commit, newcomers syncing) a
    // moment, so one fast peer does not start — and finish — a round alone.
    const awaited = this.ctx.peers.addresses().filter((a) => !ready.includes(a));
    if (awaited.length > 0 && this.ctx.now() - this.firstReadyAt(ready) < this.ctx.syncGraceMs) return;
    this.members = new Set(ready);
    this.delivered = new Map();
    this.invalid = {};
    this.refused = new Set();
    this.readySince = null;
    this.phase = 'training';
    this.startedAt = this.ctx.now();
    this.deadline = this.startedAt + config.roundSeconds * 1000;
    this.ctx.log(`round ${r} started with ${ready.length} member(s)`);
    for (const a of this.members) this.announceRound(a);
    this.ctx.onPhase?.();
  }

  /** When the wait for round r began: the later of the last commit and the first peer ready. */
  private firstReadyAt(ready: string[]): number {
    if (ready.length > 0 && this.readySince === null) this.readySince = this.ctx.now();
    return Math.max(this.waitingSince, this.readySince ?? this.ctx.now());
  }

  /** The round, to one member. A pipelined round lists its members and their stages (they link for activations). */
  private announceRound(to: string): void {
    const { state, config } = this.ctx;
    const members = config.stages > 1 ? [...this.members].sort() : [];
    const stages = members.map((a) => this.ctx.stages.stageOf(a) ?? 0);
    this.ctx.peers.sendTo(to, { type: 'round', round: state.round, memberCount: this.members.size, members, stages, seed: config.seed, deadline: this.deadline, tokensTrained: state.tokensTrained ?? 0 });
    this.ctx.onAnnounced?.(to, state.round, this.deadline);
  }

  /** Before a pipelined round: no stage may be without a peer while another has two. */
  private moveToStarvedStages(): void {
    for (const move of this.ctx.stages.rebalance(this.ctx.peers.addresses())) {
      this.ctx.log(`moved ${move.address} from stage ${move.from} to starved stage ${move.to}`);
      this.ctx.peers.moveStage(move.address, move.to, `stage ${move.to} has no peer`);
    }
  }

  maybeClose(): void {
    if (this.phase !== 'training') return;
    if (this.members.size > 0 && [...this.members].every((a) => this.delivered.has(a) || this.refused.has(a))) this.closeRound(this.refused.size ? 'all delivered or refused' : 'all delivered');
    else if (this.members.size === 0) this.closeRound('no members left');
  }

  private closeRound(why: string): void {
    const { state, config } = this.ctx;
    const round = state.round;
    const delivered: CommitEntry[] = [...this.delivered.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([sender, d]) => ({ sender, hash: d.hash, stage: d.stage }));
    // The piece roots go to the committed entries only (what replicas gather), not to the whole delivered list.
    const included = gatherK({ delivered, k: config.gatherK, standing: this.ctx.standing, barred: this.ctx.barred, seed: config.seed, round }).map((e) => {
      const { pieces, bodyMd5 } = this.delivered.get(e.sender)!;
      return pieces === undefined ? e : { ...e, pieces, ...(bodyMd5 ? { bodyMd5 } : {}) };
    });
    const members = [...this.members].sort();
    const deliveredAt = Object.fromEntries([...this.delivered].map(([a, d]) => [a, d.at]));
    const record: CommitRecord = { round, members, included, delivered, missing: members.filter((a) => !this.delivered.has(a)), startedAt: this.startedAt, closedAt: this.ctx.now(), deliveredAt, invalid: { ...this.invalid } };
    const asks = checkpointAsks(config, round, included);
    if (asks) record.checkpointBy = asks;
    // Only a commit of fewer than three updates per tensor uses it (aggregate.ts FLOORED_BELOW); one stage's tensors.
    const clipFloor = config.stages === 1 && included.length < FLOORED_BELOW ? this.ctx.clipFloor?.() : undefined;
    if (clipFloor?.length) record.clipFloor = clipFloor;
    state.commits.push(record);
    // Tokens trained count what replicas apply: the committed updates.
    state.tokensTrained = (state.tokensTrained ?? 0) + tokensOfCommit(config, included);
    state.round = round + 1;
    this.ctx.save();
    const checkpointBy = asks?.[0] ?? null;
    this.ctx.log(`round ${round} closed (${why}): ${included.length} committed of ${delivered.length} delivered by ${members.length} member(s)`);
    this.members = new Set();
    this.delivered = new Map();
    this.refused = new Set();
    this.phase = 'waiting';
    this.waitingSince = this.ctx.now();
    this.ctx.peers.broadcast({ type: 'commit', round, included, delivered: delivered.length, checkpointBy, ...(record.clipFloor ? { clipFloor: record.clipFloor } : {}) });
    this.ctx.onRoundClosed?.(round);
    this.ctx.onPhase?.();
    this.maybeStart();
  }
}
