// One contributor's rounds, as a state machine. For each round r (we hold θ_start(r)):
//
//   waiting   until the coordinator sends us round r (a `round` message goes to members only),
//             or commits r without us (we only apply it), or we are asked to stop after the
//             round; the wait reports the swarm's counts (`swarm`);
//   training  H inner steps (a pipelined run: H steps of the whole swarm's pipeline);
//             dropped when it is moot — stopping now, r closed without us, coordinator gone;
//   sending   our compressed update, once, to the coordinator (the run's update store); when
//             it confirms (`accepted`), the gather offers it to our neighbours (`have`), so a
//             copier re-signing it always delivers after us;
//   applying  the commit: exactly its K updates, gathered (gather.ts) from what we hold, from
//             neighbours that have them, else from the store; then we hold θ_start(r+1), tell
//             the coordinator, report the round.
//
// The coordinator's messages move it (announce, commitHeard, confirmed); waits run on the
// host's clock and wake on its changes. Environment-free.
import { peekEnvelope, sealEnvelope } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import type { CoordinatorClient } from '../net/signaling.ts';
import { toHex } from '../base/hex.ts';
import { FORGED_PAYLOAD, type CommitEntry, type ServerMessage } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { ModelReplica } from '../round/replica.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { OnEvent, StopMode } from './events.ts';
import { Gather, type GatherMesh } from './gather.ts';
import type { Refusals } from './inbox.ts';
import { UpdateUploads } from './update-store-client.ts';
import type { CommitInfo } from './sync.ts';
import type { Traffic } from './traffic.ts';
import type { Changes, Clock } from './waiting.ts';

/** How long a wait for a round to start goes unreported (between rounds it is a moment). */
export const WAIT_REPORT_MS = 2000;

/** What the exchange asks of a replica (ModelReplica; a test's double). */
export type ExchangeReplica = Pick<ModelReplica, 'trainStep' | 'discardRound' | 'compress' | 'apply' | 'weightsHash' | 'checkUpdate'>;
export type ExchangeMesh = GatherMesh & Pick<PeerMesh, 'stats'>;
export type CoordinatorLink = Pick<CoordinatorClient, 'send' | 'sendBinary'>;

export type Announcement = Omit<Extract<ServerMessage, { type: 'round' }>, 'type' | 'seed'>;
/** The swarm's counts while no round runs (the coordinator's `swarm` message). */
export type SwarmCounts = Omit<Extract<ServerMessage, { type: 'swarm' }>, 'type'>;
/** The commit as the exchange keeps it: what sync replays, and how many updates the store had. */
export type HeardCommit = CommitInfo & { delivered?: number };

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
  /** The swarm's counts as the coordinator last sent them (null before any). */
  swarm(): SwarmCounts | null;
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

export class Exchange {
  /** The round whose θ_start the replica holds; −1 before sync. */
  held = -1;
  /** The round the coordinator is in, as last heard. */
  coordRound = 0;
  private announced: Announcement | null = null;
  private readonly commits = new Map<number, HeardCommit>();
  /** Our update of the round we train: its hash and size, until the store accepts it. */
  private sentUpdate: { round: number; hash: string; bytes: number } | null = null;
  /** Tokens of our updates that commits included (this session). */
  private tokensContributed = 0;
  private waitReported = '';
  /** Traffic totals at the last commit, so each commit reports its round's bytes. */
  private lastTotals = { bytesUp: 0, bytesDown: 0 };
  /** The gather exchange with our neighbours (the inbox hands it their messages). */
  readonly gather: Gather;
  /** Our update into the store: the coordinator's socket, or a bucket's presigned URL. */
  readonly uploads: UpdateUploads;

  constructor(private readonly h: ExchangeHost) {
    this.uploads = new UpdateUploads({ key: h.key, http: h.http, clock: h.clock, refusals: h.refusals, traffic: h.traffic, coordinator: () => h.coordinator() });
    this.gather = new Gather({
      key: h.key, clock: h.clock, changes: h.changes, http: h.http, httpBase: h.httpBase, traffic: h.traffic,
      config: () => h.config(),
      stage: () => h.stage(),
      mesh: () => h.mesh(),
      held: () => this.held,
      coordRound: () => this.coordRound,
    });
  }

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
    this.announced = { round: m.round, memberCount: m.memberCount, members: m.members, stages: m.stages, deadline: m.deadline, tokensTrained: m.tokensTrained };
  }

  commitHeard(m: HeardCommit): void {
    this.coordRound = m.round + 1;
    if (m.round >= this.held) this.commits.set(m.round, { round: m.round, included: m.included, checkpointBy: m.checkpointBy, delivered: m.delivered, ...(m.clipFloor ? { clipFloor: m.clipFloor } : {}) });
  }

  /** The coordinator (the run's store) holds our update of `round`: offer it to our neighbours. */
  confirmed(round: number, hash: string): void {
    const sent = this.sentUpdate;
    if (!sent || sent.round !== round || sent.hash !== hash) return;
    this.sentUpdate = null;
    this.uploads.accepted(round);
    const told = this.gather.accepted(round, hash);
    this.h.onEvent({ event: 'sent', round, bytes: sent.bytes, delivered: told, failed: 0 });
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

  // ---- the rounds ----

  /** Round after round until stopped, moved to another stage, or the coordinator is gone. */
  async run(): Promise<void> {
    const { changes } = this.h;
    while (this.h.stopMode() !== 'now' && !this.h.disconnected() && !this.h.moving()) {
      const r = this.held;
      // A `round` message goes to the round's members only: hearing it is being one.
      const member = () => this.announced?.round === r;
      const waitingSince = this.h.clock.now();
      const started = () => member() || this.commits.has(r) || this.h.stopMode() === 'after-round';
      if (!(await changes.until(() => started() || this.reportWaiting(waitingSince)))) break;
      this.waitReported = '';
      if (this.h.stopMode() === 'after-round' && !member() && !this.commits.has(r)) break;
      let trained = false;
      let loss: number | null = null;
      if (!this.commits.has(r) && member()) {
        const a = this.announced!;
        this.h.onEvent({ event: 'round', round: r, members: a.memberCount, plannedRounds: this.h.config().plannedRounds, tokensTrained: a.tokensTrained });
        loss = await this.trainRound(r, a);
        trained = loss !== null;
      }
      if (!(await changes.until(() => this.commits.has(r)))) break;
      await this.applyCommit(r, trained, loss);
      if (this.h.stopMode() === 'after-round' || this.h.moving()) break;
    }
  }

  /** After a moment's wait for a round to start, says how many contributors are here and ready (a round needs `need`); false. */
  private reportWaiting(since: number): false {
    if (this.h.clock.now() - since < WAIT_REPORT_MS) return false;
    const swarm = this.h.swarm();
    const need = swarm?.need ?? this.h.config().minMembers;
    const ready = swarm?.ready ?? 0;
    const connected = swarm ? ` (${swarm.peers} contributor${swarm.peers === 1 ? '' : 's'} connected)` : '';
    const text = ready < need ? `waiting for peers: ${ready} of the ${need} contributors a round needs are ready${connected}` : `waiting for the next round to start${connected}`;
    if (text !== this.waitReported) this.h.onEvent({ event: 'progress', phase: 'peers', done: Math.min(ready, need), total: need, text });
    this.waitReported = text;
    return false;
  }

  /** H inner steps, then the update out to the store; the mean loss, or null if cut short. */
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

  /** Compresses the round's update and sends it, once, to the coordinator (the run's update store). */
  private async sendUpdate(r: number, loss: number): Promise<number> {
    const replica = this.replica;
    const config = this.h.config();
    const payload = await this.h.exclusive(() => replica.compress(r));
    const envelope = sealEnvelope(this.h.key, { kind: 'update', run: config.run, round: r, stage: this.h.stage() }, payload);
    const hash = toHex(peekEnvelope(envelope).payloadHash);
    const list = this.gather.own(r, hash, envelope);
    this.sentUpdate = { round: r, hash, bytes: envelope.length };
    this.h.onEvent({ event: 'exchange', round: r, bytes: envelope.length, peers: this.h.mesh().connectedPeers.length });
    await this.uploads.send(r, envelope, list);
    return loss;
  }

  /** Applies commit r: exactly its updates of our stage, gathered from what we hold, our neighbours, or the store. */
  private async applyCommit(r: number, trained: boolean, loss: number | null): Promise<void> {
    const config = this.h.config();
    const stage = this.h.stage();
    const all = this.commits.get(r)!;
    const commit = { ...all, included: all.included.filter((e) => (e.stage ?? 0) === stage) };
    const { payloads, fromPeers, fromStore, badRoots } = await this.gather.collect(r, commit.included);
    // Its author's piece root is not its envelope in the store's: applied all the same (the payload its signed hash names), as on every replica.
    for (const sender of badRoots) this.h.refusals.count('update-root-mismatch', sender, "its envelope in the store does not have the piece root its author signed: applied (its payload is the signed one), not served to neighbours");
    const replica = this.replica;
    const report = await this.h.exclusive(() => replica.apply(payloads, r, all.clipFloor));
    for (const x of report.rejected) {
      const forged = payloads[x.index] === FORGED_PAYLOAD; // its body in the store does not match its signed hash (gather.ts)
      this.h.refusals.count(forged ? 'update-forged' : 'update-' + x.reason, commit.included[x.index]?.sender ?? '?', forged ? 'its body in the store does not match its signed hash: applied as nothing, as on every replica' : x.message);
    }
    if (report.notApplied) this.h.refusals.count('aggregate-nonfinite', 'the commit', report.notApplied); // every replica skips it alike
    this.held = r + 1;
    if (commit.included.some((e) => e.sender === this.address)) this.tokensContributed += config.innerSteps * config.batch * config.seq;
    for (const k of [...this.commits.keys()]) if (k <= r) this.commits.delete(k);
    const weightsHash = await this.h.exclusive(() => replica.weightsHash());
    const coordinator = this.h.coordinator();
    coordinator.send({ type: 'synced', round: this.held, weightsHash, stage });
    const links = this.h.mesh().stats();
    const { bytesUp, bytesDown } = this.h.traffic.totals(links);
    const round = { bytesUp: bytesUp - this.lastTotals.bytesUp, bytesDown: bytesDown - this.lastTotals.bytesDown };
    this.lastTotals = { bytesUp, bytesDown };
    const refusals = this.h.refusals;
    if (loss !== null && Number.isFinite(loss)) coordinator.send({ type: 'report', round: r, loss, bytesUp, bytesDown, rejected: refusals.total + links.dropped, peers: links.links });
    const { served, refusedBusy } = this.gather.servedIn(r);
    this.h.onEvent({
      event: 'commit', round: r, trained, loss, included: commit.included.length, delivered: all.delivered, fromPeers, fetched: fromStore,
      served, refusedBusy, held: this.gather.heldCount, bytesUp, bytesDown, roundBytesUp: round.bytesUp, roundBytesDown: round.bytesDown,
      peers: links.links, rejected: { ...refusals.byReason, frames: links.dropped }, weightsHash, tokensContributed: this.tokensContributed,
    });
    await this.h.committed(all, commit.included);
  }
}
