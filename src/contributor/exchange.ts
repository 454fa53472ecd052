// One contributor's rounds, as a state machine. For each round r (we hold θ_start(r)):
//
//   waiting   until the coordinator announces round r with us among its members, or commits
//             r without us (we only apply it), or we are asked to stop after the round;
//   training  H inner steps (a pipelined run: H steps of the whole swarm's pipeline);
//             dropped when it is moot — stopping now, r closed without us, coordinator gone;
//   sending   our compressed update to the coordinator, then, once it confirms (or after
//             COORDINATOR_FIRST_MS), to the other members of our stage;
//   collecting the members' updates as the inbox admits them (admitUpdate), until the commit;
//   applying  the commit: the listed updates from peers where they arrived intact (after
//             PEER_UPDATE_GRACE_MS for linked senders), the rest fetched from the coordinator;
//             then we hold θ_start(r+1), tell the coordinator, report the round.
//
// The coordinator's messages move it (announce, commitHeard, confirmed); waits run on the
// host's clock and wake on its changes. Environment-free.
import { openEnvelope, peekEnvelope, sealEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import type { CoordinatorClient } from '../net/signaling.ts';
import { toHex } from '../base/hex.ts';
import type { CommitEntry, ServerMessage } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { ModelReplica } from '../round/replica.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { OnEvent, StopMode } from './events.ts';
import type { Refusal, Refusals } from './inbox.ts';
import { SyncError, type CommitInfo } from './sync.ts';
import type { Traffic } from './traffic.ts';
import type { Changes, Clock } from './waiting.ts';

/** How long a wait for a round to start goes unreported (between rounds it is a moment). */
export const WAIT_REPORT_MS = 2000;
/**
 * How long our update waits for the coordinator's receipt before going to peers anyway. Peers
 * get it after the coordinator holds it, so a copier re-signing our update always delivers
 * after us (the validator's copy check goes by delivery order); a refusal or a slow
 * coordinator does not hold the round up for longer than this.
 */
export const COORDINATOR_FIRST_MS = 10_000;
/**
 * The last update often reaches the coordinator (and closes the round) a moment before its
 * copy reaches us peer to peer: linked senders get this long before we fetch theirs.
 */
export const PEER_UPDATE_GRACE_MS = 3000;
/** Receipts for our own updates kept at most (one a round; a bound against a coordinator flooding them). */
export const MAX_RECEIPTS = 64;

/** What the exchange asks of a replica (ModelReplica; a test's double). */
export type ExchangeReplica = Pick<ModelReplica, 'trainStep' | 'discardRound' | 'compress' | 'apply' | 'weightsHash' | 'checkUpdate'>;
export type ExchangeMesh = Pick<PeerMesh, 'sendAll' | 'isConnected' | 'stats'>;
export type CoordinatorLink = Pick<CoordinatorClient, 'send' | 'sendBinary'>;

export type Announcement = Omit<Extract<ServerMessage, { type: 'round' }>, 'type' | 'seed'>;

export interface ExchangeHost {
  key: Hotkey;
  clock: Clock;
  changes: Changes;
  http: HttpClient;
  /** The coordinator's HTTP address (http://host:port). */
  httpBase: string;
  config(): RunConfig;
  /** Our pipeline stage (0 in a run of one stage). */
  stage(): number;
  /** Null while it is being built. */
  replica(): ExchangeReplica | null;
  mesh(): ExchangeMesh;
  coordinator(): CoordinatorLink;
  /** The run's peers, as the coordinator last listed them. */
  peers(): readonly string[];
  stopMode(): StopMode | null;
  /** The coordinator is gone (a closed socket, a failed request). */
  disconnected(): boolean;
  /** The coordinator moved us to another stage: the rounds stop here so the replica can be rebuilt. */
  moving(): boolean;
  /** A pipelined run's round: H steps of the swarm's pipeline (Handoffs.train); the mean loss, or null if it could not run or was cut short. */
  trainPipelined(r: number, members: readonly string[], stages: readonly number[]): Promise<number | null>;
  /** Commit r is applied and reported (`ours`: our stage's entries): upload the checkpoint if it is ours to, keep our state. */
  committed(commit: CommitInfo, ours: readonly CommitEntry[]): Promise<void>;
  /** Runs replica work one piece at a time. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T>;
  onEvent: OnEvent;
  refusals: Refusals;
  traffic: Traffic;
}

interface Received {
  hash: string;
  payload: Uint8Array;
}

export class Exchange {
  /** The round whose θ_start the replica holds; −1 before sync. */
  held = -1;
  /** The round the coordinator is in, as last heard. */
  coordRound = 0;
  private announced: Announcement | null = null;
  private readonly commits = new Map<number, CommitInfo>();
  /** Our updates the coordinator confirmed ("round/hash"). */
  private readonly receipts = new Set<string>();
  /** Updates of each round by sender, ours included, as admitted. */
  private readonly received = new Map<number, Map<string, Received>>();
  /** Tokens of our updates that commits included (this session). */
  private tokensContributed = 0;
  private waitReported = '';

  constructor(private readonly h: ExchangeHost) {}

  private get address(): string {
    return this.h.key.address;
  }

  private get replica(): ExchangeReplica {
    const replica = this.h.replica();
    if (!replica) throw new Error('Exchange: no replica');
    return replica;
  }

  // ---- the coordinator's messages ----

  /** (Re)joined with the coordinator at `round`: any earlier announcement is void. */
  joined(round: number): void {
    this.coordRound = round;
    this.announced = null;
  }

  announce(m: Announcement): void {
    this.coordRound = m.round;
    this.announced = { round: m.round, members: m.members, stages: m.stages, deadline: m.deadline, tokensTrained: m.tokensTrained };
  }

  commitHeard(m: CommitInfo): void {
    this.coordRound = m.round + 1;
    if (m.round >= this.held) this.commits.set(m.round, { round: m.round, included: m.included, checkpointBy: m.checkpointBy });
  }

  /** The coordinator holds our update of `round` with this payload hash. */
  confirmed(round: number, hash: string): void {
    if (this.receipts.size < MAX_RECEIPTS) this.receipts.add(`${round}/${hash}`);
  }

  /** A commit already heard live, if any (sync replays it without fetching). */
  commitFor(round: number): CommitInfo | null {
    return this.commits.get(round) ?? null;
  }

  /** We now hold θ_start of `round` (synced), or nothing (−1: a new stage's replica). */
  hold(round: number): void {
    this.held = round;
    for (const k of [...this.commits.keys()]) if (k < round) this.commits.delete(k);
  }

  // ---- a member's update, admitted by the inbox ----

  admitUpdate(from: string, header: EnvelopeHeader, payload: Uint8Array): Refusal | null {
    const { round, stage } = header;
    if (round !== this.held && round !== this.coordRound) return { reason: 'stale-round', message: `update for round ${round}; we are at round ${this.held}` };
    if (stage !== this.h.stage()) return { reason: 'wrong-stage', message: `an update of stage ${stage}; we hold stage ${this.h.stage()}` };
    const byRound = this.received.get(round) ?? new Map<string, Received>();
    if (byRound.has(from)) return { reason: 'duplicate', message: `a second update for round ${round}` };
    const problem = this.h.replica()?.checkUpdate(payload, round);
    if (problem) return { reason: `update-${problem.reason}`, message: problem.message };
    byRound.set(from, { hash: toHex(header.payloadHash), payload });
    this.received.set(round, byRound);
    return null;
  }

  // ---- the rounds ----

  /** Round after round until stopped, moved to another stage, or the coordinator is gone. */
  async run(): Promise<void> {
    const { changes } = this.h;
    while (this.h.stopMode() !== 'now' && !this.h.disconnected() && !this.h.moving()) {
      const r = this.held;
      const member = () => this.announced?.round === r && this.announced.members.includes(this.address);
      const waitingSince = this.h.clock.now();
      const started = () => member() || this.commits.has(r) || this.h.stopMode() === 'after-round';
      if (!(await changes.until(() => started() || this.reportWaiting(waitingSince)))) break;
      this.waitReported = '';
      if (this.h.stopMode() === 'after-round' && !member() && !this.commits.has(r)) break;
      let trained = false;
      let loss: number | null = null;
      if (!this.commits.has(r) && member()) {
        const a = this.announced!;
        this.h.onEvent({ event: 'round', round: r, members: a.members.length, plannedRounds: this.h.config().plannedRounds, tokensTrained: a.tokensTrained });
        loss = await this.trainRound(r, a);
        trained = loss !== null;
      }
      if (!(await changes.until(() => this.commits.has(r)))) break;
      await this.applyCommit(r, trained, loss);
      if (this.h.stopMode() === 'after-round' || this.h.moving()) break;
    }
  }

  /** After a moment's wait for a round to start, says how many contributors are here (a round needs minMembers); false. */
  private reportWaiting(since: number): false {
    if (this.h.clock.now() - since < WAIT_REPORT_MS) return false;
    const here = this.h.peers().length;
    const need = this.h.config().minMembers;
    const text = here < need ? `waiting for peers: ${here} of the ${need} contributors a round needs are connected` : `waiting for the next round to start (${here} contributor${here === 1 ? '' : 's'} connected)`;
    if (text !== this.waitReported) this.h.onEvent({ event: 'progress', phase: 'peers', done: Math.min(here, need), total: need, text });
    this.waitReported = text;
    return false;
  }

  /** H inner steps, then the update out to the coordinator and the members; the mean loss, or null if cut short. */
  private async trainRound(r: number, a: Announcement): Promise<number | null> {
    const loss = this.h.config().stages > 1 ? await this.h.trainPipelined(r, a.members, a.stages) : await this.trainSteps(r);
    if (loss === null || (await this.droppedAsMoot(r))) return null;
    return this.sendUpdate(r, loss);
  }

  /** A data-parallel round's H inner steps on the whole model; the mean loss, or null if it went moot. */
  private async trainSteps(r: number): Promise<number | null> {
    const H = this.h.config().innerSteps;
    let sum = 0;
    for (let i = 0; i < H; i++) {
      if (await this.droppedAsMoot(r)) return null;
      const s = await this.replica.trainStep(r, i);
      sum += s.loss;
      this.h.onEvent({ event: 'step', round: r, step: i + 1, loss: s.loss, tokensPerSecond: (s.tokens * 1000) / s.ms });
    }
    return sum / H;
  }

  /**
   * When round r's work is moot — stopping now, r closed without us (late), or the
   * coordinator gone — drops it (θ back to θ_start) and says true; else false.
   */
  private async droppedAsMoot(r: number): Promise<boolean> {
    if (this.h.stopMode() !== 'now' && !this.commits.has(r) && !this.h.disconnected()) return false;
    const replica = this.replica;
    await this.h.exclusive(() => replica.discardRound());
    return true;
  }

  /** Compresses the round's update and sends it to the coordinator and to our stage's members. */
  private async sendUpdate(r: number, loss: number): Promise<number> {
    const replica = this.replica;
    const config = this.h.config();
    const payload = await this.h.exclusive(() => replica.compress(r));
    const envelope = sealEnvelope(this.h.key, { kind: 'update', run: config.run, round: r, stage: this.h.stage() }, payload);
    const hash = toHex(peekEnvelope(envelope).payloadHash);
    const own = this.received.get(r) ?? new Map<string, Received>();
    own.set(this.address, { hash, payload });
    this.received.set(r, own);
    const others = this.stageMembers().filter((a) => a !== this.address);
    this.h.onEvent({ event: 'exchange', round: r, bytes: envelope.length, peers: others.length });
    if (this.h.coordinator().sendBinary(envelope)) this.h.traffic.sent(envelope.length);
    await this.h.changes.until(() => this.receipts.has(`${r}/${hash}`) || this.commits.has(r), COORDINATOR_FIRST_MS);
    this.receipts.delete(`${r}/${hash}`);
    const { sent, failed } = await this.h.mesh().sendAll(others, envelope);
    this.h.onEvent({ event: 'sent', round: r, bytes: envelope.length, delivered: sent.length, failed: failed.length });
    return loss;
  }

  /** The announced round's members of our stage (everyone in a run of one stage). */
  private stageMembers(): string[] {
    const a = this.announced;
    if (!a) return [];
    return a.members.filter((_, i) => (a.stages[i] ?? 0) === this.h.stage());
  }

  /** Applies commit r: the listed updates, from peers where they arrived intact, else from the coordinator. */
  private async applyCommit(r: number, trained: boolean, loss: number | null): Promise<void> {
    const config = this.h.config();
    const stage = this.h.stage();
    const all = this.commits.get(r)!;
    const commit = { ...all, included: all.included.filter((e) => (e.stage ?? 0) === stage) };
    const arrived = (e: CommitEntry) => this.received.get(r)?.get(e.sender)?.hash === e.hash;
    const mesh = this.h.mesh();
    const expected = commit.included.filter((e) => e.sender === this.address || mesh.isConnected(e.sender));
    await this.h.changes.until(() => expected.every(arrived), PEER_UPDATE_GRACE_MS);
    const got = this.received.get(r) ?? new Map<string, Received>();
    const payloads: Uint8Array[] = [];
    let fromPeers = 0;
    let fetched = 0;
    for (const e of commit.included) {
      let u = got.get(e.sender);
      if (u && u.hash === e.hash) fromPeers++;
      else {
        u = await this.fetchUpdate(r, e.sender, e.hash);
        fetched++;
      }
      payloads.push(u.payload);
    }
    const replica = this.replica;
    const report = await this.h.exclusive(() => replica.apply(payloads, r));
    for (const x of report.rejected) this.h.refusals.count('update-' + x.reason, commit.included[x.index]?.sender ?? '?', x.message);
    this.held = r + 1;
    if (commit.included.some((e) => e.sender === this.address)) this.tokensContributed += config.innerSteps * config.batch * config.seq;
    for (const k of [...this.received.keys()]) if (k <= r) this.received.delete(k);
    for (const k of [...this.commits.keys()]) if (k <= r) this.commits.delete(k);
    const weightsHash = await this.h.exclusive(() => replica.weightsHash());
    const coordinator = this.h.coordinator();
    coordinator.send({ type: 'synced', round: this.held, weightsHash, stage });
    const links = mesh.stats();
    const { bytesUp, bytesDown } = this.h.traffic.totals(links);
    const refusals = this.h.refusals;
    if (loss !== null && Number.isFinite(loss)) coordinator.send({ type: 'report', round: r, loss, bytesUp, bytesDown, rejected: refusals.total + links.dropped, peers: links.links });
    this.h.onEvent({ event: 'commit', round: r, trained, loss, included: commit.included.length, fromPeers, fetched, bytesUp, bytesDown, peers: links.links, rejected: { ...refusals.byReason, frames: links.dropped }, weightsHash, tokensContributed: this.tokensContributed });
    await this.h.committed(all, commit.included);
  }

  /** A committed update that did not reach us intact, from the coordinator's copy (checked against the commit). */
  private async fetchUpdate(r: number, sender: string, hash: string): Promise<Received> {
    const config = this.h.config();
    const bytes = await this.h.http.get(`${this.h.httpBase}/update/${r}/${sender}`);
    if (!bytes) throw new SyncError(`the coordinator no longer has ${sender}'s update of round ${r}`);
    this.h.traffic.received(bytes.length);
    const { header, payload } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
    if (header.sender !== sender || header.round !== r || toHex(header.payloadHash) !== hash) throw new SyncError(`the coordinator's copy of ${sender}'s round-${r} update does not match its commit`);
    return { hash, payload };
  }
}
