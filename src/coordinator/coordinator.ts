// The coordinator of one run: membership (a hotkey signs a challenge to join; heartbeats),
// signaling relay between peers, the intake of updates and checkpoints, and the saved record
// of closed rounds. Transport-free: server.ts feeds it WebSocket messages and HTTP requests,
// tests can feed it directly. The round clock (when a round starts and closes, what its
// commit says) is round-clock.ts; stage placement is stages.ts; the state on disk is
// state-store.ts.
//
// Round r: it starts once `minMembers` peers hold θ_start(r) (they say so with `synced`);
// peers that sync later join it while it runs. Each member uploads its signed update here
// once, or to the run's bucket (bucket-updates.ts), and offers it to its neighbours. The round
// closes when every member has delivered or at the deadline; the commit names the ≤ gatherK
// updates everyone must apply (gather.ts) — the same set, in the same order, so every
// replica ends with the same weights. Updates that fail any check (signature, run, round,
// sender, SparseLoCo decode) are refused and counted.
//
// The control plane stays bounded per peer: joins and leaves tell only the peers whose
// neighbour set changed, signaling is relayed only between neighbours, the swarm's counts are
// coalesced (control-plane.ts); `round` goes to members only (round-clock.ts).
//
// Pipelined runs (stages > 1): each joining peer is placed in a stage (stages.ts); a round
// starts only when every stage has a ready peer (moving one from a crowded stage to a
// starved one if need be), nobody joins a round in progress (its steps are shared by the
// whole pipeline), updates are checked against the sender's stage, the commit tags each
// entry with its stage and checkpoints are kept per stage.
import { fromHex } from '../base/hex.ts';
import { PROTOCOL_VERSION, joinChallenge, parseClientMessage, type ClientMessage, type RunState, type ServerMessage, type Standing } from '../protocol/messages.ts';
import type { ClosedRound } from './validator.ts';
import { stageBounds, stageMemoryBytes, type RunConfig } from '../protocol/run-config.ts';
import { RoundClock } from './round-clock.ts';
import { ControlPlane, type ControlPlaneContext } from './control-plane.ts';
import { StageBalancer } from './stages.ts';
import { isValidAddress, verifySignature } from '../wallet/keys.ts';
import { RunRecord, type ScoringProgress } from './run-record.ts';
import type { CommitRecord, CoordinatorStore, PersistedState } from './state-store.ts';
import { CheckpointIntake } from './checkpoint-intake.ts';
import { PieceStore, type CheckpointPieces } from './checkpoint-pieces.ts';
import { BucketPieceStore } from './checkpoint-bucket-pieces.ts';
import { Sessions, type Connection, type Session } from './sessions.ts';
import { BucketUpdates, type SignedEnds } from './bucket-updates.ts';
import { ValidatorReads } from './validator-reads.ts';
import type { ObjectStore } from './object-store.ts';

export type { ScoringProgress } from './run-record.ts';
export type { Connection } from './sessions.ts';

/** A tick this late means this process stalled (ticks come every 250 ms). */
const STALL_MS = 5000;

export interface CoordinatorOptions extends Pick<ControlPlaneContext, 'turn'> {
  now?: () => number;
  log?: (line: string) => void;
  /** After a commit, wait this long at most for last round's members to sync before starting. */
  syncGraceMs?: number;
  /** Called after each commit with what the validator needs to score the round. */
  onRoundClosed?: (round: ClosedRound) => void;
  /**
   * A peer's standing with the validator (its moving average of scores), undefined for a
   * newcomer: gather-K ranks by it. Default: the standings this coordinator last sent (sendScores).
   */
  standing?: (address: string) => number | undefined;
  /** Whether the validator bars a sender from commits (its ledger, kept across restarts). Default: the bars sendScores carried. */
  barred?: (address: string) => boolean;
  /** The clip floor a commit of fewer than three updates carries (the validator's reference norms: scoring.ts normReference); absent: none. */
  clipFloor?: () => number[] | undefined;
  /** The validator's progress, for the status and standings; absent when nobody validates. */
  scoring?: () => ScoringProgress;
  /** Start no round numbered this or higher (`tessera swarm --rounds R` runs exactly R). */
  roundLimit?: number;
  /** An S3-compatible bucket for the updates and checkpoints (bucket-updates.ts, checkpoint-bucket-pieces.ts); absent: they go through this coordinator. */
  bucket?: ObjectStore;
}

export class Coordinator {
  readonly config: RunConfig;
  /** Connections, the hotkey each joined as, and sending to them (sessions.ts). */
  private readonly sessions: Sessions;
  readonly stages: StageBalancer;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  /** Peers dropped for missing heartbeats (a sign that a peer, or this machine, is overloaded). */
  private heartbeatDrops = 0;
  /** The saved state: round, commits, reports, checkpoints (run-record.ts). */
  private readonly record: RunRecord;
  private readonly state: PersistedState;
  /** The round in progress or awaited: its members, the updates it accepted, its deadline. */
  private readonly rounds: RoundClock;
  private stopping = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Refusals by reason, for the status page and the swarm summary. */
  readonly rejected: Record<string, number> = {};
  /** Neighbours, the signaling rule, the swarm's counts. */
  private readonly control: ControlPlane;
  /** The validator's latest standing (ema) of each peer it scored, and whether it bars it from commits: for gather-K. */
  private readonly standings = new Map<string, { ema: number; barred: boolean }>();
  /** The run's checkpoints: asks, signed uploads, the checks before one replaces another (checkpoint-intake.ts). */
  readonly checkpoints: CheckpointIntake;
  /** Checkpoint pieces: in the state folder, or with a bucket in the bucket (uploaded and fetched there directly). */
  readonly checkpointPieces: CheckpointPieces;
  /** Updates through a bucket (presigned URLs: GET /update redirects there), when the run has one. */
  readonly bucket: BucketUpdates | null;
  /** What the validator scores, from the record (and with a bucket read from there: validator-reads.ts). */
  readonly validatorInput: ValidatorReads;

  constructor(
    config: RunConfig,
    private readonly store: CoordinatorStore,
    private readonly options: CoordinatorOptions = {},
  ) {
    this.config = config;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
    this.sessions = new Sessions(this.now, (s) => this.drop(s, 'send failed'));
    const ranges = stageBounds(config);
    this.stages = new StageBalancer(ranges, ranges.map((_, i) => stageMemoryBytes(config, i)));
    this.record = new RunRecord(config, store, () => this.options.scoring?.(), this.log);
    this.state = this.record.state;
    this.checkpointPieces = options.bucket ? new BucketPieceStore(options.bucket, config.run, Object.values(this.state.checkpointManifests ?? {}), this.log, store.dir) : new PieceStore(store.dir);
    this.checkpoints = new CheckpointIntake({
      config, state: this.state, pieces: this.checkpointPieces, save: () => this.record.save(), log: this.log,
      count: (what) => void (this.rejected[what] = (this.rejected[what] ?? 0) + 1),
    });
    this.bucket = options.bucket ? new BucketUpdates(options.bucket, config, { now: this.now, log: this.log, sendTo: (a, m) => this.sessions.sendTo(a, m), refuse: (a, what, why) => this.refuse(this.sessions.member(a) ?? null, what, why), accept: (a, ends) => !!this.sessions.member(a) && this.onSignedEnds(this.sessions.member(a)!, ends) }) : null;
    this.validatorInput = new ValidatorReads({ config, record: this.record, disk: store, read: this.bucket ? (r, sender) => this.bucket!.read(r, sender) : null, log: this.log });
    this.rounds = new RoundClock({
      config,
      state: this.state,
      store,
      stages: this.stages,
      now: this.now,
      log: this.log,
      syncGraceMs: options.syncGraceMs ?? Math.min(15_000, config.roundSeconds * 250),
      roundLimit: options.roundLimit,
      onRoundClosed: (round) => this.roundClosed(round),
      standing: options.standing ?? ((address) => this.standings.get(address)?.ema),
      barred: options.barred ?? ((address) => this.standings.get(address)?.barred ?? false),
      clipFloor: options.clipFloor,
      onPhase: () => this.control.countsChanged(),
      onAnnounced: (address, round, deadline) => this.bucket?.announced(address, round, deadline),
      save: () => this.record.save(),
      peers: {
        addresses: () => this.sessions.addresses(),
        readyFor: (round) => this.sessions.members().filter((s) => s.synced === round && s.syncedStage === (this.stages.stageOf(s.address!) ?? 0)).map((s) => s.address!),
        broadcast: (m) => this.sessions.broadcast(m),
        sendTo: (address, m) => this.sessions.sendTo(address, m),
        moveStage: (address, stage, reason) => {
          const s = this.sessions.member(address)!;
          s.synced = -1; // it must fetch the new stage's weights first
          this.send(s, { type: 'stage', stage, reason });
        },
      },
    });
    this.control = new ControlPlane({
      config,
      now: this.now,
      send: (address, m) => this.sessions.sendTo(address, m),
      broadcast: (m) => this.sessions.broadcast(m),
      peerCount: () => this.sessions.memberCount,
      readyCount: () => this.rounds.readyCount(),
      waiting: () => this.rounds.currentPhase === 'waiting' && !this.stopping,
      turn: options.turn,
    });
  }

  /** Starts the clock (heartbeat checks, deadlines); tests may instead call tick(). */
  start(intervalMs = 250): void {
    let last = performance.now();
    this.timer ??= setInterval(() => {
      const late = performance.now() - last - intervalMs;
      last = performance.now();
      this.tick(late > STALL_MS ? late : 0);
    }, intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // Peers leaving because we stop must not close the round: it restarts on resume.
    this.stopping = true;
    for (const s of this.sessions.all()) s.conn.close(1001, 'coordinator stopping');
  }

  get round(): number {
    return this.state.round;
  }

  runState(): RunState {
    const oldest = this.state.commits.length ? this.state.commits[0].round : this.state.round;
    return { round: this.state.round, phase: this.rounds.currentPhase, memberCount: this.rounds.memberCount, checkpointRound: this.state.checkpointRound, oldestCommit: oldest };
  }

  /** A round closed: the validator gets it as the saved state has it (the committed payloads read back from the store, or from the bucket: validator-reads.ts). */
  private roundClosed(round: number): void {
    void this.bucket?.prune(this.state.round, (r, sender) => this.updateKept(r, sender));
    this.validatorInput.dropBefore(this.runState().oldestCommit);
    if (this.options.onRoundClosed) this.validatorInput.handOver(round, this.options.onRoundClosed);
  }

  /** Tokens trained in the committed updates so far (all rounds before the current one). */
  get tokensTrained(): number {
    return this.record.tokensTrained;
  }

  /** The run's progress: rounds done of those planned, tokens, and how far scoring got. */
  progress(): { round: number; plannedRounds: number; tokensTrained: number; validating: boolean; scoredRounds: number; pendingRounds: number; skippedRounds: number } {
    const scoring = this.options.scoring?.();
    // Rounds 0 … round−1 are closed; those after the last one decided wait for the validator.
    const pendingRounds = scoring ? Math.max(0, this.state.round - 1 - scoring.decidedThrough) : 0;
    return { round: this.state.round, plannedRounds: this.config.plannedRounds, tokensTrained: this.tokensTrained, validating: !!scoring, scoredRounds: scoring?.scoredRounds ?? 0, pendingRounds, skippedRounds: scoring?.skippedRounds ?? 0 };
  }

  status() {
    return {
      run: this.config.run,
      ...this.runState(),
      ...this.progress(),
      // Pulled by an operator, not pushed: the lists may be long.
      members: this.rounds.memberList(),
      peers: this.peerList(),
      delivered: this.rounds.deliveredSenders(),
      deadline: this.rounds.deadlineIfTraining(),
      rejected: { ...this.rejected },
      heartbeatDrops: this.heartbeatDrops,
      commits: this.state.commits.map((c) => ({ round: c.round, members: c.members.length, included: c.included.map((e) => e.sender), delivered: c.delivered?.length ?? c.included.length, missing: c.missing })),
      controlBytes: { ...this.sessions.controlBytes },
      reports: this.state.reports,
    };
  }

  // ---- connections ----

  connect(conn: Connection): { onText(text: string): void; onBinary(bytes: Uint8Array): void; onClose(): void } {
    const s = this.sessions.open(conn);
    return {
      onText: (text) => this.onText(s, text),
      onBinary: (bytes) => this.onBinary(s, bytes),
      onClose: () => this.drop(s, 'disconnected'),
    };
  }

  private send(s: Session, m: ServerMessage): void {
    this.sessions.send(s, m);
  }

  private refuse(s: Session | null, what: string, reason: string): void {
    this.rejected[what] = (this.rejected[what] ?? 0) + 1;
    if (s?.address && (what.startsWith('update-') || what.startsWith('envelope-') || what === 'wrong-sender')) this.rounds.countInvalid(s.address);
    this.log(`refused ${what} from ${s?.address ?? `connection ${s?.id}`}: ${reason}`);
    if (s) this.send(s, { type: 'rejected', what, reason });
  }

  private onText(s: Session, text: string): void {
    // A session already dropped or replaced (its close still under way) must not act, nor
    // join again: it would come back as a member and never leave.
    if (!this.sessions.isOpen(s)) return;
    const m = parseClientMessage(text);
    if (!m) return this.refuse(s, 'malformed-control', 'not a valid control message');
    s.lastSeen = this.now();
    if (m.type === 'hello') {
      if (m.version !== PROTOCOL_VERSION) {
        this.send(s, { type: 'error', message: `protocol version ${m.version} is not supported (this coordinator speaks ${PROTOCOL_VERSION}): update Tessera` });
        return s.conn.close(4000, 'protocol version');
      }
      return this.send(s, { type: 'challenge', run: this.config.run, nonce: s.nonce, version: PROTOCOL_VERSION });
    }
    if (m.type === 'join') return this.join(s, m);
    if (!s.address) return this.refuse(s, 'unknown-member', `'${m.type}' before joining`);
    this.handleMember(s, m);
  }

  private join(s: Session, m: Extract<ClientMessage, { type: 'join' }>): void {
    if (s.address !== null && s.address !== m.address) {
      // One connection, one hotkey: re-keying would leave the first address mapped to it.
      return this.refuse(s, 'bad-join', `this connection already joined as ${s.address}`);
    }
    const sig = fromHex(m.signature);
    if (!isValidAddress(m.address) || !sig || !verifySignature(joinChallenge(this.config.run, s.nonce), sig, m.address)) {
      this.refuse(s, 'bad-join', 'the join signature does not verify for that address');
      return s.conn.close(4001, 'bad join signature');
    }
    // The same hotkey reconnected: the newer connection wins.
    this.sessions.bind(s, m.address)?.conn.close(4002, 'replaced by a newer connection of the same hotkey');
    const placed = this.stages.assign(m.address, m.capacity ?? { memoryBytes: 0, tokensPerSecond: 0 });
    if (placed.warning) this.log(placed.warning);
    this.log(`joined: ${m.address}${this.config.stages > 1 ? ` (stage ${placed.stage})` : ''}`);
    this.send(s, { type: 'welcome', address: m.address, config: this.config, state: this.runState(), stage: placed.stage });
    this.control.joined(m.address);
  }

  private handleMember(s: Session, m: ClientMessage): void {
    const address = s.address!;
    switch (m.type) {
      case 'heartbeat':
        return;
      case 'signal': {
        const to = this.sessions.member(m.to);
        if (!to) return this.refuse(s, 'signal-unknown-peer', `no peer ${m.to} in this run`);
        // Links are only between neighbours: anything else is refused (and counted).
        if (!this.control.mayRelay(address, m.to)) return this.refuse(s, 'signal-not-neighbour', `${m.to} is not one of your neighbours`);
        if (!this.sessions.send(to, { type: 'signal', from: address, data: m.data })) this.refuse(s, 'signal-malformed', 'the signal data cannot be relayed: the sender is refused, not the recipient dropped');
        return;
      }
      case 'synced':
        s.synced = m.round;
        s.syncedStage = m.stage;
        this.record.noteReport(m.round, address, { weightsHash: m.weightsHash, stage: m.stage });
        this.checkpoints.noteSynced(m.round);
        this.rounds.peerSynced(address, m.round);
        return this.control.countsChanged();
      case 'report':
        return this.record.noteReport(m.round, address, { loss: m.loss, bytesUp: m.bytesUp, bytesDown: m.bytesDown, rejected: m.rejected, peers: m.peers });
      case 'uploaded':
        return this.bucket ? void this.bucket.uploaded(address, m) : this.refuse(s, 'bucket-none', 'this coordinator has no bucket: send the update over the WebSocket');
      default:
        return this.refuse(s, 'malformed-control', `unexpected '${m.type}'`);
    }
  }

  private peerList(): string[] {
    return this.sessions.addresses().sort();
  }

  private drop(s: Session, why: string): void {
    const address = s.address;
    if (!this.sessions.close(s) || !address) return;
    this.stages.remove(address);
    this.log(`left: ${address} (${why})`);
    if (this.rounds.removeMember(address) && !this.stopping) this.rounds.maybeClose();
    if (!this.stopping) this.control.left(address);
  }

  // ---- updates (the validator's copy) ----

  /** A member's update envelope over the WebSocket, checked by the round (its round, sender, stage): true when accepted. */
  private onBinary(s: Session, bytes: Uint8Array): boolean {
    return this.onOffer(s, (address) => this.rounds.offerEnvelope(address, bytes));
  }

  /** A member's update taken in from the bucket by the two ends of its envelope alone (bucket-updates.ts), checked by the round: true when accepted. */
  private onSignedEnds(s: Session, ends: SignedEnds): boolean {
    return this.onOffer(s, (address) => this.rounds.offerSignedEnds(address, ends));
  }

  private onOffer(s: Session, offer: (address: string) => ReturnType<RoundClock['offerEnvelope']>): boolean {
    if (!this.sessions.isOpen(s)) return false;
    s.lastSeen = this.now();
    if (!s.address) return (this.refuse(s, 'unknown-member', 'an update before joining'), false);
    const offered = offer(s.address);
    if (offered.ok) this.send(s, { type: 'accepted', round: offered.round, hash: offered.hash });
    else this.refuse(s, offered.what, offered.reason); // a member refused is done, as one delivered
    this.rounds.maybeClose();
    return offered.ok;
  }

  /** Whether the update of (round, sender) is kept: accepted in the round in progress, or named by a kept commit record (state-store.ts retention). */
  updateKept(round: number, sender: string): boolean {
    return this.rounds.isInProgress(round) ? this.rounds.hasDelivered(sender) : this.record.keepsUpdate(round, sender);
  }

  /** A stored update as signed, of a recent round, committed or not (the round in progress too: its sender already offers it). */
  storedUpdate(round: number, sender: string): Uint8Array | null {
    return this.store.loadUpdate(round, sender);
  }

  /** A stored update's payload (for the validator's on-demand reads), or null. */
  storedPayload(round: number, sender: string): Uint8Array | null {
    return this.record.storedPayload(round, sender);
  }

  /** The validator's verdict on a round, to each member still connected; its averages rank the next commits. */
  sendScores(round: number, standings: ReadonlyMap<string, Standing>): void {
    for (const [address, standing] of standings) {
      this.standings.set(address, { ema: standing.ema, barred: standing.barred ?? this.standings.get(address)?.barred ?? false });
      this.sessions.sendTo(address, { type: 'scores', round, standing });
    }
  }

  commit(round: number): CommitRecord | null {
    return this.record.commit(round);
  }

  // ---- the round clock (round-clock.ts) ----

  tick(stalledMs = 0): void {
    const now = this.now();
    const silent = this.config.heartbeatSeconds * this.config.heartbeatMisses * 1000;
    // After a stall of our own (this process busy), heartbeats wait unread in the sockets: read
    // them (the next tick comes after) before calling anyone silent.
    if (stalledMs > 0) this.log(`the coordinator was unresponsive for ${(stalledMs / 1000).toFixed(0)} s: heartbeats are checked at the next tick`);
    for (const s of stalledMs > 0 ? [] : this.sessions.all()) {
      if (now - s.lastSeen > silent) {
        if (this.sessions.isCurrent(s)) this.heartbeatDrops++;
        this.drop(s, `no heartbeat for ${Math.round((now - s.lastSeen) / 1000)} s`);
        s.conn.close(4003, 'heartbeat timeout');
      }
    }
    this.rounds.tick(now);
    this.control.tick();
  }
}
