// The coordinator of one run: membership (a hotkey signs a challenge to join; heartbeats),
// signaling relay between peers, and the round clock. Transport-free: server.ts feeds it
// WebSocket messages and HTTP requests, tests can feed it directly.
//
// Round r: it starts once `minMembers` peers hold θ_start(r) (they say so with `synced`);
// peers that sync later join it while it runs. Each member sends its signed update here
// (the validator's copy) and to the other members. The round closes when every member has
// delivered or at the deadline; the commit lists the updates everyone must apply — the same
// set, in the same order, so every replica ends with the same weights. Updates that fail any
// check (signature, run, round, sender, SparseLoCo decode) are refused and counted.
//
// Pipelined runs (stages > 1): each joining peer is placed in a stage (stages.ts); a round
// starts only when every stage has a ready peer (moving one from a crowded stage to a
// starved one if need be), nobody joins a round in progress (its steps are shared by the
// whole pipeline), updates are checked against the sender's stage, the commit tags each
// entry with its stage and checkpoints are kept per stage.
import { randomBytes } from 'node:crypto';
import { parameterLayout } from '../model/config.ts';
import { EnvelopeError, openEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import { PROTOCOL_VERSION, joinChallenge, parseClientMessage, fromHex, toHex, type ClientMessage, type CommitEntry, type RunState, type ServerMessage, type Standing } from '../protocol/messages.ts';
import type { ClosedRound } from './validator.ts';
import { runModel, stageBounds, stageMemoryBytes, type RunConfig } from '../protocol/run-config.ts';
import { StageBalancer } from './stages.ts';
import { UpdateError, configHash, decodeUpdate } from '../sparseloco/wire.ts';
import { isValidAddress, verifySignature } from '../wallet/keys.ts';
import type { CommitRecord, CoordinatorStore, MemberReport, PersistedState } from './state-store.ts';

/** A tick this late means this process stalled (ticks come every 250 ms). */
const STALL_MS = 5000;

/** One client connection, as the server gives it. */
export interface Connection {
  send(text: string): void;
  close(code: number, reason: string): void;
}

interface Session {
  id: number;
  conn: Connection;
  nonce: string;
  address: string | null;
  lastSeen: number;
  /** The round whose θ_start this peer holds, or -1. */
  synced: number;
  /** The stage of those weights. */
  syncedStage: number;
}

export interface CoordinatorOptions {
  now?: () => number;
  log?: (line: string) => void;
  /** After a commit, wait this long at most for last round's members to sync before starting. */
  syncGraceMs?: number;
  /** Called after each commit with what the validator needs to score the round. */
  onRoundClosed?: (round: ClosedRound) => void;
  /** The validator's progress, for the status and standings; absent when nobody validates. */
  scoring?: () => ScoringProgress;
  /** Start no round numbered this or higher (`tessera swarm --rounds R` runs exactly R). */
  roundLimit?: number;
}

/** How far the validator got through the closed rounds. */
export interface ScoringProgress {
  /** Rounds it scored. */
  scoredRounds: number;
  /** The last round it scored or skipped (with the reason recorded), −1 before any. */
  decidedThrough: number;
}

export class Coordinator {
  readonly config: RunConfig;
  private readonly sessions = new Map<number, Session>();
  private readonly byAddress = new Map<string, Session>();
  /** Parameter layout of each stage (one stage: the whole model). */
  private readonly layouts: { name: string; shape: readonly number[] }[][];
  readonly stages: StageBalancer;
  private readonly hash: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly syncGraceMs: number;
  private nextId = 1;
  /** Peers dropped for missing heartbeats (a sign that a peer, or this machine, is overloaded). */
  private heartbeatDrops = 0;
  private state: PersistedState;
  private phase: RunState['phase'] = 'waiting';
  private members = new Set<string>();
  private delivered = new Map<string, { hash: string; envelope: Uint8Array; payload: Uint8Array; at: number; stage: number }>();
  /** Invalid updates refused in the round in progress, by sender (a validator penalty). */
  private invalid: Record<string, number> = {};
  private deadline = 0;
  private waitingSince = 0;
  private readySince: number | null = null;
  private stopping = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Refusals by reason, for the status page and the swarm summary. */
  readonly rejected: Record<string, number> = {};

  constructor(
    config: RunConfig,
    private readonly store: CoordinatorStore,
    private readonly options: CoordinatorOptions = {},
  ) {
    this.config = config;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
    this.syncGraceMs = options.syncGraceMs ?? Math.min(15_000, config.roundSeconds * 250);
    const cfg = runModel(config);
    const ranges = stageBounds(config);
    this.layouts = ranges.map((r) => parameterLayout(cfg, r.from, r.to).map((s) => ({ name: s.name, shape: s.shape })));
    this.stages = new StageBalancer(ranges, ranges.map((_, i) => stageMemoryBytes(config, i)));
    this.hash = configHash(cfg);
    const saved = store.load();
    if (saved && saved.run !== config.run) throw new Error(`the state in ${store.dir} belongs to run '${saved.run}', not '${config.run}': use another --state folder`);
    this.state = saved ?? { format: 1, run: config.run, round: 0, checkpointRound: -1, commits: [], reports: {}, tokensTrained: 0 };
    if (saved) this.log(`resuming run '${config.run}' at round ${saved.round}`);
    if (saved && saved.tokensTrained === undefined) {
      // A state saved before the count existed: only the commits still kept can be counted.
      this.state.tokensTrained = saved.commits.reduce((n, c) => n + this.tokensOf(c.included), 0);
      this.log(`tokens trained before round ${saved.commits[0]?.round ?? saved.round} were not recorded by the version that saved this state: counting from there`);
    }
    this.waitingSince = this.now();
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
    for (const s of this.sessions.values()) s.conn.close(1001, 'coordinator stopping');
  }

  get round(): number {
    return this.state.round;
  }

  runState(): RunState {
    const oldest = this.state.commits.length ? this.state.commits[0].round : this.state.round;
    return { round: this.state.round, phase: this.phase, members: [...this.members].sort(), checkpointRound: this.state.checkpointRound, oldestCommit: oldest };
  }

  /** Saves the state, keeping every round the validator has still to score. */
  private save(): void {
    const scoring = this.options.scoring?.();
    this.store.save(this.state, scoring ? scoring.decidedThrough + 1 : Infinity);
  }

  /**
   * What the validator needs to score a closed round, rebuilt from the saved state (after a
   * restart, or when it fell behind): or why that is no longer possible.
   */
  closedRound(round: number): { ok: true; closed: ClosedRound } | { ok: false; reason: string } {
    const c = this.commit(round);
    if (!c) return { ok: false, reason: `the commit of round ${round} is no longer kept (the state keeps ${this.store.keepRounds} rounds and those the validator has not scored)` };
    const included: ClosedRound['included'] = [];
    for (const [i, e] of c.included.entries()) {
      const bytes = this.store.loadUpdate(round, e.sender);
      if (!bytes) return { ok: false, reason: `the update of ${e.sender} in round ${round} is gone from ${this.store.dir}` };
      // A state saved before delivery times were kept: commit order (by sender) stands in.
      included.push({ sender: e.sender, payload: openEnvelope(bytes, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes }).payload, deliveredAt: c.deliveredAt?.[e.sender] ?? c.closedAt + i });
    }
    const reports = this.state.reports[round] ?? {};
    const reportedHashes = Object.fromEntries(c.members.map((a) => [a, reports[a]?.weightsHash ?? '']));
    return { ok: true, closed: { round, members: c.members, included, missing: c.missing, invalid: c.invalid ?? {}, reportedHashes } };
  }

  /** Tokens trained in the committed updates so far (all rounds before the current one). */
  get tokensTrained(): number {
    return this.state.tokensTrained ?? 0;
  }

  /** Tokens a commit's updates trained: innerSteps × batch × seq per stage-0 update. */
  private tokensOf(included: readonly CommitEntry[]): number {
    const perUpdate = this.config.innerSteps * this.config.batch * this.config.seq;
    return included.filter((e) => e.stage === 0).length * perUpdate;
  }

  /** The run's progress: rounds done of those planned, tokens, and how far scoring got. */
  progress(): { round: number; plannedRounds: number; tokensTrained: number; validating: boolean; scoredRounds: number; pendingRounds: number } {
    const scoring = this.options.scoring?.();
    // Rounds 0 … round−1 are closed; those after the last one decided wait for the validator.
    const pendingRounds = scoring ? Math.max(0, this.state.round - 1 - scoring.decidedThrough) : 0;
    return { round: this.state.round, plannedRounds: this.config.plannedRounds, tokensTrained: this.tokensTrained, validating: !!scoring, scoredRounds: scoring?.scoredRounds ?? 0, pendingRounds };
  }

  status() {
    return {
      run: this.config.run,
      ...this.runState(),
      ...this.progress(),
      peers: this.peerList(),
      delivered: [...this.delivered.keys()].sort(),
      deadline: this.phase === 'training' ? this.deadline : null,
      rejected: { ...this.rejected },
      heartbeatDrops: this.heartbeatDrops,
      commits: this.state.commits.map((c) => ({ round: c.round, members: c.members.length, included: c.included.map((e) => e.sender), missing: c.missing })),
      reports: this.state.reports,
    };
  }

  // ---- connections ----

  connect(conn: Connection): { onText(text: string): void; onBinary(bytes: Uint8Array): void; onClose(): void } {
    const s: Session = { id: this.nextId++, conn, nonce: toHex(randomBytes(16)), address: null, lastSeen: this.now(), synced: -1, syncedStage: -1 };
    this.sessions.set(s.id, s);
    return {
      onText: (text) => this.onText(s, text),
      onBinary: (bytes) => this.onBinary(s, bytes),
      onClose: () => this.drop(s, 'disconnected'),
    };
  }

  private send(s: Session, m: ServerMessage): void {
    try {
      s.conn.send(JSON.stringify(m));
    } catch {
      this.drop(s, 'send failed');
    }
  }

  private broadcast(m: ServerMessage): void {
    for (const s of this.byAddress.values()) this.send(s, m);
  }

  private refuse(s: Session | null, what: string, reason: string): void {
    this.rejected[what] = (this.rejected[what] ?? 0) + 1;
    if (s?.address && (what.startsWith('update-') || what.startsWith('envelope-') || what === 'wrong-sender')) this.invalid[s.address] = (this.invalid[s.address] ?? 0) + 1;
    this.log(`refused ${what} from ${s?.address ?? `connection ${s?.id}`}: ${reason}`);
    if (s) this.send(s, { type: 'rejected', what, reason });
  }

  private onText(s: Session, text: string): void {
    // A session already dropped or replaced (its close still under way) must not act, nor
    // join again: it would come back into byAddress and never leave.
    if (!this.sessions.has(s.id)) return;
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
    const old = this.byAddress.get(m.address);
    if (old && old !== s) {
      // The same hotkey reconnected: the newer connection wins.
      this.byAddress.delete(m.address);
      old.address = null;
      this.sessions.delete(old.id);
      old.conn.close(4002, 'replaced by a newer connection of the same hotkey');
    }
    s.address = m.address;
    this.byAddress.set(m.address, s);
    const placed = this.stages.assign(m.address, m.capacity ?? { memoryBytes: 0, tokensPerSecond: 0 });
    if (placed.warning) this.log(placed.warning);
    this.log(`joined: ${m.address}${this.config.stages > 1 ? ` (stage ${placed.stage})` : ''}`);
    this.send(s, { type: 'welcome', address: m.address, config: this.config, state: this.runState(), stage: placed.stage });
    this.broadcast({ type: 'peers', peers: this.peerList() });
  }

  private handleMember(s: Session, m: ClientMessage): void {
    const address = s.address!;
    switch (m.type) {
      case 'heartbeat':
        return;
      case 'signal': {
        const to = this.byAddress.get(m.to);
        if (!to) return this.refuse(s, 'signal-unknown-peer', `no peer ${m.to} in this run`);
        return this.send(to, { type: 'signal', from: address, data: m.data });
      }
      case 'synced':
        s.synced = m.round;
        s.syncedStage = m.stage;
        this.noteReport(m.round, address, { weightsHash: m.weightsHash });
        // A pipelined round's steps involve every stage at once: a late peer waits for the next.
        if (this.phase === 'training' && m.round === this.state.round && !this.members.has(address) && this.config.stages === 1) {
          this.members.add(address); // joins the round in progress
          this.announceRound();
        }
        return this.maybeStart();
      case 'report':
        return this.noteReport(m.round, address, { loss: m.loss, bytesUp: m.bytesUp, bytesDown: m.bytesDown, rejected: m.rejected, peers: m.peers });
      default:
        return this.refuse(s, 'malformed-control', `unexpected '${m.type}'`);
    }
  }

  private noteReport(round: number, address: string, r: Partial<MemberReport>): void {
    if (round > this.state.round + 1 || round < this.state.round - 5) return;
    const byRound = (this.state.reports[round] ??= {});
    byRound[address] = { ...(byRound[address] ?? { loss: NaN, bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0 }), ...r };
  }

  private peerList(): string[] {
    return [...this.byAddress.keys()].sort();
  }

  private drop(s: Session, why: string): void {
    if (!this.sessions.delete(s.id)) return;
    const address = s.address;
    if (!address || this.byAddress.get(address) !== s) return;
    this.byAddress.delete(address);
    this.stages.remove(address);
    this.log(`left: ${address} (${why})`);
    if (this.members.delete(address) && !this.stopping) this.maybeClose();
    this.broadcast({ type: 'peers', peers: this.peerList() });
  }

  // ---- updates (the validator's copy) ----

  private onBinary(s: Session, bytes: Uint8Array): void {
    if (!this.sessions.has(s.id)) return;
    s.lastSeen = this.now();
    if (!s.address) return this.refuse(s, 'unknown-member', 'an update before joining');
    let header: EnvelopeHeader;
    let payload: Uint8Array;
    try {
      ({ header, payload } = openEnvelope(bytes, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes }));
    } catch (e) {
      if (e instanceof EnvelopeError) return this.refuse(s, `envelope-${e.reason}`, e.message);
      throw e;
    }
    if (header.kind !== 'update') return this.refuse(s, 'unexpected-kind', `'${header.kind}' is not sent to the coordinator`);
    if (header.sender !== s.address) return this.refuse(s, 'wrong-sender', `signed by ${header.sender}, not by this connection's hotkey`);
    if (this.phase !== 'training' || header.round !== this.state.round) return this.refuse(s, 'stale-round', `update for round ${header.round}; round ${this.state.round} is ${this.phase}`);
    if (!this.members.has(s.address)) return this.refuse(s, 'unknown-member', `${s.address} is not a member of round ${header.round}`);
    if (this.delivered.has(s.address)) return this.refuse(s, 'duplicate', `a second update for round ${header.round}`);
    const stage = this.stages.stageOf(s.address) ?? 0;
    if (header.stage !== stage) return this.refuse(s, 'wrong-stage', `an update of stage ${header.stage} from a peer of stage ${stage}`);
    try {
      decodeUpdate(payload, { configHash: this.hash, round: header.round, layout: this.layouts[stage], maxBytes: this.config.maxMessageBytes });
    } catch (e) {
      if (e instanceof UpdateError) return this.refuse(s, `update-${e.reason}`, e.message);
      throw e;
    }
    const hash = toHex(header.payloadHash);
    this.delivered.set(s.address, { hash, envelope: bytes, payload, at: this.now(), stage });
    this.send(s, { type: 'accepted', round: header.round, hash });
    this.maybeClose();
  }

  /** A committed update (as its sender signed it), for peers that missed it. */
  committedUpdate(round: number, sender: string): Uint8Array | null {
    if (round === this.state.round && this.phase === 'training') return null; // not committed yet
    return this.store.loadUpdate(round, sender);
  }

  /** The validator's verdict on a round, to each member still connected. */
  sendScores(round: number, standings: ReadonlyMap<string, Standing>): void {
    for (const [address, standing] of standings) {
      const s = this.byAddress.get(address);
      if (s) this.send(s, { type: 'scores', round, standing });
    }
  }

  /** Committed payloads of a round in commit order, or null when not all are stored. */
  commitPayloads(round: number): Uint8Array[] | null {
    const c = this.commit(round);
    if (!c) return null;
    const out: Uint8Array[] = [];
    for (const e of c.included) {
      const bytes = this.store.loadUpdate(round, e.sender);
      if (!bytes) return null;
      out.push(openEnvelope(bytes, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes }).payload);
    }
    return out;
  }

  commit(round: number): CommitRecord | null {
    return this.state.commits.find((c) => c.round === round) ?? null;
  }

  // ---- checkpoints ----

  /** A member's signed θ_start; accepted from a peer of this run for a committed round. */
  acceptCheckpoint(envelope: Uint8Array): { ok: true; round: number } | { ok: false; status: number; reason: string } {
    let header: EnvelopeHeader;
    try {
      ({ header } = openEnvelope(envelope, { run: this.config.run, maxPayloadBytes: 2 ** 31 }));
    } catch (e) {
      if (e instanceof EnvelopeError) {
        this.rejected[`checkpoint-${e.reason}`] = (this.rejected[`checkpoint-${e.reason}`] ?? 0) + 1;
        return { ok: false, status: 400, reason: e.message };
      }
      throw e;
    }
    if (header.kind !== 'weights') return { ok: false, status: 400, reason: `a checkpoint is a 'weights' envelope, not '${header.kind}'` };
    if (!this.byAddress.has(header.sender)) return { ok: false, status: 403, reason: `${header.sender} is not a peer of this run` };
    const stage = header.stage;
    if (stage !== (this.stages.stageOf(header.sender) ?? 0)) return { ok: false, status: 403, reason: `${header.sender} does not hold stage ${stage}` };
    const held = this.checkpointRoundOf(stage);
    if (header.round > this.state.round || header.round <= held) {
      return { ok: false, status: 409, reason: `checkpoint of round ${header.round}; the run is at round ${this.state.round} with a checkpoint of round ${held}` };
    }
    this.store.saveCheckpoint(envelope, stage);
    if (stage === 0) this.state.checkpointRound = header.round;
    else this.state.stageCheckpoints = { ...this.state.stageCheckpoints, [stage]: header.round };
    this.save();
    this.log(`checkpoint of round ${header.round}${this.config.stages > 1 ? ` (stage ${stage})` : ''} from ${header.sender}`);
    return { ok: true, round: header.round };
  }

  checkpoint(stage = 0): Uint8Array | null {
    if (!Number.isInteger(stage) || stage < 0 || stage >= this.config.stages) return null;
    return this.checkpointRoundOf(stage) >= 0 ? this.store.loadCheckpoint(stage) : null;
  }

  private checkpointRoundOf(stage: number): number {
    return stage === 0 ? this.state.checkpointRound : (this.state.stageCheckpoints?.[stage] ?? -1);
  }

  // ---- the round clock ----

  tick(stalledMs = 0): void {
    const now = this.now();
    const silent = this.config.heartbeatSeconds * this.config.heartbeatMisses * 1000;
    // After a stall of our own (this process busy), heartbeats wait unread in the sockets: read
    // them (the next tick comes after) before calling anyone silent.
    if (stalledMs > 0) this.log(`the coordinator was unresponsive for ${(stalledMs / 1000).toFixed(0)} s: heartbeats are checked at the next tick`);
    for (const s of stalledMs > 0 ? [] : [...this.sessions.values()]) {
      if (now - s.lastSeen > silent) {
        if (s.address && this.byAddress.get(s.address) === s) this.heartbeatDrops++;
        this.drop(s, `no heartbeat for ${Math.round((now - s.lastSeen) / 1000)} s`);
        s.conn.close(4003, 'heartbeat timeout');
      }
    }
    if (this.phase === 'training' && now >= this.deadline) this.closeRound('deadline');
    else this.maybeStart();
  }

  private maybeStart(): void {
    if (this.phase !== 'waiting') return;
    if (this.options.roundLimit !== undefined && this.state.round >= this.options.roundLimit) return;
    const r = this.state.round;
    if (this.config.stages > 1) this.moveToStarvedStages();
    const ready = [...this.byAddress.values()].filter((s) => s.synced === r && s.syncedStage === (this.stages.stageOf(s.address!) ?? 0)).map((s) => s.address!);
    const covered = this.stages.counts(ready).every((n) => n > 0);
    if (ready.length < this.config.minMembers || !covered) {
      this.readySince = null; // the grace period counts from when enough peers are ready
      return;
    }
    // Give the other peers (last round's members applying the commit, newcomers syncing) a
    // moment, so one fast peer does not start — and finish — a round alone.
    const awaited = [...this.byAddress.keys()].filter((a) => !ready.includes(a));
    if (awaited.length > 0 && this.now() - this.firstReadyAt(ready) < this.syncGraceMs) return;
    this.members = new Set(ready);
    this.delivered = new Map();
    this.invalid = {};
    this.readySince = null;
    this.phase = 'training';
    this.deadline = this.now() + this.config.roundSeconds * 1000;
    this.log(`round ${r} started with ${ready.length} member(s)`);
    this.announceRound();
  }

  /** When the wait for round r began: the later of the last commit and the first peer ready. */
  private firstReadyAt(ready: string[]): number {
    if (ready.length > 0 && this.readySince === null) this.readySince = this.now();
    return Math.max(this.waitingSince, this.readySince ?? this.now());
  }

  private announceRound(): void {
    const members = [...this.members].sort();
    const stages = members.map((a) => this.stages.stageOf(a) ?? 0);
    this.broadcast({ type: 'round', round: this.state.round, members, stages, seed: this.config.seed, deadline: this.deadline, tokensTrained: this.tokensTrained });
  }

  /** Before a pipelined round: no stage may be without a peer while another has two. */
  private moveToStarvedStages(): void {
    for (const move of this.stages.rebalance([...this.byAddress.keys()])) {
      const s = this.byAddress.get(move.address)!;
      s.synced = -1; // it must fetch the new stage's weights first
      this.log(`moved ${move.address} from stage ${move.from} to starved stage ${move.to}`);
      this.send(s, { type: 'stage', stage: move.to, reason: `stage ${move.to} has no peer` });
    }
  }

  private maybeClose(): void {
    if (this.phase !== 'training') return;
    if (this.members.size > 0 && [...this.members].every((a) => this.delivered.has(a))) this.closeRound('all delivered');
    else if (this.members.size === 0) this.closeRound('no members left');
  }

  private closeRound(why: string): void {
    const round = this.state.round;
    const included: CommitEntry[] = [...this.delivered.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([sender, d]) => ({ sender, hash: d.hash, stage: d.stage }));
    for (const [sender, d] of this.delivered) this.store.saveUpdate(round, sender, d.envelope);
    const members = [...this.members].sort();
    const deliveredAt = Object.fromEntries([...this.delivered].map(([a, d]) => [a, d.at]));
    const record: CommitRecord = { round, members, included, missing: members.filter((a) => !this.delivered.has(a)), closedAt: this.now(), deliveredAt, invalid: { ...this.invalid } };
    this.state.commits.push(record);
    this.state.tokensTrained = this.tokensTrained + this.tokensOf(included);
    this.state.round = round + 1;
    this.save();
    const checkpointBy = included.length > 0 && (round + 1) % this.config.checkpointEvery === 0 ? included[0].sender : null;
    this.log(`round ${round} closed (${why}): ${included.length}/${members.length} updates`);
    const delivered = this.delivered;
    this.members = new Set();
    this.delivered = new Map();
    this.phase = 'waiting';
    this.waitingSince = this.now();
    this.broadcast({ type: 'commit', round, included, checkpointBy });
    const reports = this.state.reports[round] ?? {};
    const closed: ClosedRound = {
      round,
      members,
      included: included.map((e) => ({ sender: e.sender, payload: delivered.get(e.sender)!.payload, deliveredAt: delivered.get(e.sender)!.at })),
      missing: record.missing,
      invalid: { ...this.invalid },
      reportedHashes: Object.fromEntries(members.map((a) => [a, reports[a]?.weightsHash ?? ''])),
    };
    this.options.onRoundClosed?.(closed);
    this.maybeStart();
  }
}
