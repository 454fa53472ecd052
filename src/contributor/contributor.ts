// A contributor: joins a run, gets the current weights, and then round after round trains H
// inner steps, sends its SparseLoCo update to the coordinator and to the other members,
// and applies the commit — the set of updates the coordinator closed the round with, the
// same for everyone, so all replicas hold identical weights. Updates missing or altered on
// the way (hash ≠ commit) are fetched from the coordinator. Environment-free: a page, a
// worker and `tessera contribute` run this same class with their own sockets and WebRTC.
import type { Gpu } from '../gpu/gpu.ts';
import { splitShard } from '../train/sampler.ts';
import { decodeShard } from '../train/shards.ts';
import type { CheckpointStore } from '../train/checkpoint.ts';
import type { Hotkey } from '../wallet/keys.ts';
import { EnvelopeError, openEnvelope, peekEnvelope, sealEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import { PeerMesh } from '../net/mesh.ts';
import { toHex, type Capacity, type CommitEntry, type RunState, type ServerMessage, type Standing } from '../protocol/messages.ts';
import { SwarmStepError } from '../pipeline/swarm-peer.ts';
import { PipelinedRound, handoffKind } from './pipelined-round.ts';
import { measureCapacity } from './calibrate.ts';
import { PeerWeights } from './peer-weights.ts';
import { SwarmReplica } from '../round/replica.ts';
import { parseRunConfig, type RunConfig } from '../protocol/run-config.ts';
import { CoordinatorClient, CoordinatorError, type OpenSocket, type Welcome } from '../net/signaling.ts';
import { SyncError, syncWeights, type CommitInfo } from './sync.ts';
import { StallWatch, mib, throttled, type ProgressPhase } from './progress.ts';

export interface HttpClient {
  /** The body, or null on 404; throws on other failures. `onProgress` (optional to honour): bytes so far of the total (0: unknown). */
  get(url: string, onProgress?: (done: number, total: number) => void): Promise<Uint8Array | null>;
  put(url: string, body: Uint8Array): Promise<{ status: number; text: string }>;
}

export interface ContributorOptions {
  gpu: Gpu;
  key: Hotkey;
  /** ws://host:port/ws */
  coordinator: string;
  openSocket: OpenSocket;
  http: HttpClient;
  wrtc?: unknown;
  /** Where this contributor's own state is kept between runs (optional). */
  store?: CheckpointStore;
  onEvent: (e: ContributorEvent) => void;
  /** How long to wait for a peer to send weights before falling back to the coordinator. */
  peerSyncTimeoutMs?: number;
  /**
   * Train on the data assigned to this id instead of our own hotkey's — not something an
   * honest contributor does: simulations and tests use it to show the validator notices.
   */
  sampleAs?: string;
  /**
   * Memory this contributor gives the model, bytes (0: not limited). With the speed measured
   * by a short calibration it is reported on joining, so a pipelined run can place us in a stage.
   */
  memoryBytes?: number;
}

export type ContributorEvent =
  | ({ event: 'joined'; address: string; run: string; round: number; model: string; stage: number; stages: number } & Partial<RunDescription>)
  /** Start-up work under way: compiling kernels, fetching the data shard (bytes), syncing weights, waiting for peers. */
  | { event: 'progress'; phase: ProgressPhase; done: number; total: number; text: string }
  | { event: 'stage'; stage: number; reason: string }
  | { event: 'synced'; round: number; source: string; weightsHash: string }
  /** Round `round` of the run's `plannedRounds` starts with us; `tokensTrained`: the whole swarm's, before it. */
  | { event: 'round'; round: number; members: number; plannedRounds?: number; tokensTrained?: number }
  | { event: 'step'; round: number; step: number; loss: number; tokensPerSecond: number; busy?: number; rerouted?: number; dropped?: number }
  | { event: 'exchange'; round: number; bytes: number; peers: number }
  | { event: 'sent'; round: number; bytes: number; delivered: number; failed: number }
  /** `tokensContributed`: tokens of this contributor's updates committed so far (this session). */
  | { event: 'commit'; round: number; trained: boolean; loss: number | null; included: number; fromPeers: number; fetched: number; bytesUp: number; bytesDown: number; peers: number; rejected: Record<string, number>; weightsHash: string; tokensContributed?: number }
  /** We uploaded the run's checkpoint of `round` (the commit asked us to): `bytes` sent. */
  | { event: 'checkpoint'; round: number; bytes: number }
  | { event: 'rejected'; from: string; reason: string; message: string }
  | { event: 'link'; peer: string; up: boolean; reason: string }
  | { event: 'reward'; round: number; standing: Standing }
  | { event: 'warning'; text: string }
  /** `longestStallMs`: the longest this process went without running a timer (heartbeats stop meanwhile). */
  | { event: 'stopped'; round: number; saved: boolean; longestStallMs?: number };

/**
 * What a volunteer is told about the run on joining (from its run config). Fields added to
 * events after their first version are optional in the types: views also fold recorded events.
 */
export type RunDescription = Pick<RunConfig, 'name' | 'description' | 'owner' | 'homepage' | 'rewardUnit' | 'rewardNote' | 'plannedRounds' | 'plannedTokens'>;

export type StopMode = 'now' | 'after-round';

/** How long a wait for a round to start goes unreported (between rounds it is a moment). */
const WAIT_REPORT_MS = 2000;

interface Received {
  hash: string;
  payload: Uint8Array;
}

export class Contributor {
  private client!: CoordinatorClient;
  private mesh!: PeerMesh;
  private config!: RunConfig;
  private replica: SwarmReplica | null = null;
  /** The round whose θ_start the replica holds; −1 before sync. */
  private held = -1;
  /** The round the coordinator is in, as last heard. */
  private coordRound = 0;
  private announced: { round: number; members: string[]; stages: number[]; deadline: number; tokensTrained: number } | null = null;
  /** Our pipeline stage (0 in a run of one stage), and a move the coordinator asked for. */
  private stage = 0;
  private movedTo: { stage: number; reason: string } | null = null;
  private capacity: Capacity | undefined;
  private pipeline: PipelinedRound | null = null;
  /** Hand-offs for a round whose pipeline is not built yet (a quicker peer started it). */
  private early: { round: number; from: string; kind: 'activations' | 'grads' | 'control'; payload: Uint8Array }[] = [];
  private readonly commits = new Map<number, CommitInfo>();
  /** Our updates the coordinator confirmed ("round/hash"). */
  private readonly accepted = new Set<string>();
  private readonly received = new Map<number, Map<string, Received>>();
  private peers: string[] = [];
  private readonly earlySignals: { from: string; data: unknown }[] = [];
  private wakers: (() => void)[] = [];
  private stopMode: StopMode | null = null;
  private disconnected: string | null = null;
  private readonly weights = new PeerWeights({
    key: () => this.o.key,
    mesh: () => this.mesh,
    run: () => this.config.run,
    stage: () => this.stage,
    coordRound: () => this.coordRound,
    held: () => (this.replica ? this.held : -1),
    encodeHeld: () => this.exclusive(async () => ({ round: this.held, bytes: await this.replica!.encodeWeights(this.held) })),
    until: (ready, timeoutMs) => this.until(ready, timeoutMs),
  });
  private lock: Promise<unknown> = Promise.resolve();
  /** This process's responsiveness: while it runs no timer it sends no heartbeat. */
  private readonly stalls = new StallWatch((ms) =>
    this.o.onEvent({ event: 'warning', text: `this process was unresponsive for ${(ms / 1000).toFixed(0)} s (the coordinator drops a peer silent for ${this.config.heartbeatSeconds * this.config.heartbeatMisses} s): is the machine overloaded?` }),
  );
  /** Tokens of our updates that commits included (this session). */
  private tokensContributed = 0;
  private wsBytesUp = 0;
  private wsBytesDown = 0;
  /** Refused messages by reason. */
  readonly rejected: Record<string, number> = {};

  constructor(private readonly o: ContributorOptions) {}

  get address(): string {
    return this.o.key.address;
  }

  private get httpBase(): string {
    return this.o.coordinator.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');
  }

  /** Asks to stop: 'now' at the next step (the round's work is dropped), or after the round's commit. */
  stop(mode: StopMode = 'now'): void {
    if (this.stopMode !== 'now') this.stopMode = mode;
    if (this.stopMode === 'now') this.pipeline?.abort('stopping');
    this.wake();
  }

  /** Joins, syncs, and contributes until stopped or the coordinator goes away. */
  async run(): Promise<void> {
    this.stalls.start();
    try {
      await this.contribute();
    } finally {
      this.stalls.stop();
    }
  }

  private progress(phase: ProgressPhase, done: number, total: number, text: string): void {
    this.o.onEvent({ event: 'progress', phase, done, total, text });
  }

  private compileProgress(what: string): (done: number, total: number) => void {
    return (done, total) => {
      if (total > 0) this.progress('compile', done, total, done < total ? `compiling ${what}: ${done} of ${total}` : `compiled ${what} (${total})`);
    };
  }

  private async contribute(): Promise<void> {
    this.capacity = await measureCapacity(this.o.gpu, this.o.http, this.httpBase, this.o.memoryBytes ?? 0, this.compileProgress('the speed test’s kernels'));
    const welcome = await this.connect();
    this.config = parseRunConfig(welcome.config);
    // Warn of a stall long enough to risk the coordinator dropping us (half its limit).
    this.stalls.thresholdMs = (this.config.heartbeatSeconds * this.config.heartbeatMisses * 1000) / 2;
    this.stage = welcome.stage;
    const c = this.config;
    const description = { name: c.name, description: c.description, owner: c.owner, homepage: c.homepage, rewardUnit: c.rewardUnit, rewardNote: c.rewardNote, plannedRounds: c.plannedRounds, plannedTokens: c.plannedTokens };
    this.o.onEvent({ event: 'joined', address: this.address, run: c.run, round: welcome.state.round, model: c.model, stage: this.stage, stages: c.stages, ...description });
    this.mesh = new PeerMesh(this.address, {
      wrtc: this.o.wrtc,
      iceServers: this.config.iceServers,
      maxMessageBytes: this.config.maxMessageBytes + 64 * 1024,
      sendSignal: (to, data) => this.client.send({ type: 'signal', to, data }),
      onMessage: (from, m) => this.onPeerMessage(from, m),
      onLink: (peer, up, reason) => {
        if (!up) this.pipeline?.peerDown(peer);
        this.o.onEvent({ event: 'link', peer, up, reason });
      },
    });
    // The peer list (and a quick peer's first offer) can arrive with the welcome, before the
    // mesh existed: hand them over now.
    this.mesh.setPeers(this.peers);
    for (const s of this.earlySignals.splice(0)) this.mesh.signal(s.from, s.data);
    const heartbeat = setInterval(() => this.client.send({ type: 'heartbeat' }), this.config.heartbeatSeconds * 1000);
    try {
      const shard = await this.fetchShard();
      const { tokens } = decodeShard(shard, 'the run’s data shard');
      // The held-out 1% stays out of training, as in `tessera train`, for validation.
      const { train } = splitShard(tokens, { validFraction: 0.01 });
      this.trainTokens = train;
      await this.buildReplica();
      let state = welcome.state;
      for (;;) {
        try {
          await this.sync(state);
          await this.loop();
          if (this.movedTo && this.stopMode === null && !this.disconnected) {
            // The coordinator moved us to a starved stage: that stage's layers and weights.
            this.stage = this.movedTo.stage;
            this.o.onEvent({ event: 'stage', stage: this.stage, reason: this.movedTo.reason });
            this.movedTo = null;
            await this.saveLocal().catch(() => false);
            await this.buildReplica();
            this.held = -1;
            state = { ...state, round: this.coordRound };
            continue;
          }
        } catch (e) {
          // An HTTP request to the coordinator failing (it restarts, the network drops) is a
          // lost coordinator like a closed socket: rejoin and carry on from what we hold.
          if (!isRequestFailure(e) || this.stopMode !== null) throw e;
          this.disconnected ??= `request failed: ${(e as Error).message}`;
          this.client.close();
        }
        if (this.stopMode !== null || !this.disconnected) break;
        const again = await this.rejoin();
        if (!again) break;
        state = again.state;
      }
    } finally {
      clearInterval(heartbeat as never);
      const saved = await this.saveLocal().catch(() => false);
      this.o.onEvent({ event: 'stopped', round: this.held, saved, longestStallMs: Math.round(this.stalls.longestMs) });
      this.mesh.close();
      this.client.close();
      this.replica?.destroy();
      this.replica = null;
    }
  }

  /** Opens a connection to the coordinator and joins. */
  private async connect(): Promise<Welcome> {
    const client = new CoordinatorClient(this.o.coordinator, this.o.key, this.o.openSocket, this.capacity);
    client.onMessage((m) => this.onServer(m));
    client.onClose((reason) => {
      if (this.client !== client) return;
      this.disconnected = reason;
      this.wake();
    });
    const welcome = await client.connect();
    this.client = client;
    this.disconnected = null;
    this.announced = null;
    this.coordRound = welcome.state.round;
    if (this.config && welcome.stage !== this.stage) this.movedTo = { stage: welcome.stage, reason: 'placed anew after reconnecting' };
    return welcome;
  }

  private trainTokens: ArrayLike<number> = [];

  /** The run's data shard, with its download's progress. */
  private async fetchShard(): Promise<Uint8Array> {
    const text = (done: number, total: number) => `fetching the data shard: ${mib(done)}${total ? ` of ${mib(total)}` : ''} MiB`;
    this.progress('shard', 0, 0, 'fetching the data shard');
    const report = throttled((done, total) => this.progress('shard', done, total, text(done, total)));
    // The last report is ours, below (a client may not report at all).
    const shard = await this.o.http.get(`${this.httpBase}/shard`, (done, total) => done < total && report(done, total));
    if (!shard) throw new SyncError('the coordinator serves no data shard');
    this.progress('shard', shard.length, shard.length, `fetched the data shard (${mib(shard.length)} MiB)`);
    return shard;
  }

  /** The replica of our stage (the whole model in a run of one stage), kernels compiled. */
  private async buildReplica(): Promise<void> {
    this.replica?.destroy();
    this.replica = null;
    this.replica = new SwarmReplica(this.o.gpu, this.config, this.trainTokens, this.o.sampleAs ?? this.address, this.stage);
    // Compile every kernel now, off the event loop: drivers compile synchronously on first
    // use, which would stall this peer (heartbeats included) in its first round.
    await this.replica.warmUp({ onProgress: this.compileProgress("the model's kernels") });
  }

  /** After losing the coordinator: retries with backoff (1 s doubling to 30 s) until it answers or we are stopped. */
  private async rejoin(): Promise<Welcome | null> {
    const lost = this.disconnected;
    for (let attempt = 0; this.stopMode === null; attempt++) {
      const wait = Math.min(30_000, 1000 * 2 ** attempt);
      this.o.onEvent({ event: 'warning', text: `lost the coordinator (${lost}); reconnecting in ${wait / 1000} s` });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wakers.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      if (this.stopMode !== null) return null;
      try {
        return await this.connect();
      } catch (e) {
        if (e instanceof CoordinatorError && !e.retry) throw e;
      }
    }
    return null;
  }

  // ---- waiting ----

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  private async until(ready: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!ready()) {
      if (this.stopMode === 'now' || this.disconnected) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wakers.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }

  /** Runs replica work one piece at a time (a peer's weights request reads θ_start meanwhile). */
  private exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.lock.then(fn, fn);
    this.lock = next.catch(() => {});
    return next;
  }

  // ---- the round loop ----

  private async loop(): Promise<void> {
    while (this.stopMode !== 'now' && !this.disconnected && !this.movedTo) {
      const r = this.held;
      const member = () => this.announced?.round === r && this.announced.members.includes(this.address);
      const waitingSince = performance.now();
      const started = () => member() || this.commits.has(r) || this.stopMode === 'after-round';
      if (!(await this.until(() => started() || this.reportWaiting(waitingSince)))) break;
      this.waitReported = '';
      if (this.stopMode === 'after-round' && !member() && !this.commits.has(r)) break;
      let trained = false;
      let loss: number | null = null;
      if (!this.commits.has(r) && member()) {
        this.o.onEvent({ event: 'round', round: r, members: this.announced!.members.length, plannedRounds: this.config.plannedRounds, tokensTrained: this.announced!.tokensTrained });
        const result = await this.trainRound(r);
        trained = result !== null;
        loss = result;
      }
      if (!(await this.until(() => this.commits.has(r)))) break;
      await this.applyCommit(r, trained, loss);
      if (this.stopMode === 'after-round' || this.movedTo) break;
    }
  }

  private waitReported = '';

  /** After a moment's wait for a round to start, says how many contributors are here (a round needs minMembers); false. */
  private reportWaiting(since: number): false {
    if (performance.now() - since < WAIT_REPORT_MS) return false;
    const here = this.peers.length;
    const need = this.config.minMembers;
    const text = here < need ? `waiting for peers: ${here} of the ${need} contributors a round needs are connected` : `waiting for the next round to start (${here} contributor${here === 1 ? '' : 's'} connected)`;
    if (text !== this.waitReported) this.progress('peers', Math.min(here, need), need, text);
    this.waitReported = text;
    return false;
  }

  /** H inner steps, then the update out to the coordinator and the members; the mean loss, or null if cut short. */
  private async trainRound(r: number): Promise<number | null> {
    const rep = this.replica!;
    if (rep.stage) return this.trainPipelinedRound(r);
    let sum = 0;
    for (let i = 0; i < this.config.innerSteps; i++) {
      if (this.stopMode === 'now' || this.commits.has(r) || this.disconnected) {
        await this.exclusive(() => rep.discardRound());
        return null; // late: the round closed without us
      }
      const s = await rep.trainStep(r, i);
      sum += s.loss;
      this.o.onEvent({ event: 'step', round: r, step: i + 1, loss: s.loss, tokensPerSecond: (s.tokens * 1000) / s.ms });
    }
    if (this.stopMode === 'now' || this.commits.has(r) || this.disconnected) {
      await this.exclusive(() => rep.discardRound());
      return null;
    }
    return this.sendUpdate(r, sum / this.config.innerSteps);
  }

  /** A pipelined round: H steps of the whole swarm's pipeline, this peer holding its stage. */
  private async trainPipelinedRound(r: number): Promise<number | null> {
    const rep = this.replica!;
    const a = this.announced!;
    if (!PipelinedRound.covers(this.config, a.stages)) return null;
    const round = new PipelinedRound({
      replica: rep, config: this.config, key: this.o.key, mesh: this.mesh, round: r, members: a.members, stages: a.stages,
      inRun: (p) => this.peers.includes(p),
      onStep: (i, s) => {
        const tokens = s.processed * this.config.batch * this.config.seq;
        if (s.loss !== null) this.o.onEvent({ event: 'step', round: r, step: i + 1, loss: s.loss, tokensPerSecond: (tokens * 1000) / s.wallMs, busy: s.busyMs / s.wallMs, rerouted: s.rerouted, dropped: s.dropped });
        if (this.commits.has(r)) this.pipeline?.abort('the round closed without us');
      },
    });
    this.pipeline = round;
    for (const m of this.early.splice(0)) if (m.round === r) round.receive(m.from, m.kind, m.payload);
    let loss: number;
    try {
      loss = await round.run();
    } catch (e) {
      if (!(e instanceof SwarmStepError)) throw e;
      this.o.onEvent({ event: 'warning', text: `round ${r} cut short: ${e.message}` });
      await this.exclusive(() => rep.discardRound());
      return null;
    } finally {
      this.pipeline = null;
      // hand-offs the pipeline dropped (bad shape, wrong round, unknown peer …) count as refused
      for (const [reason, n] of Object.entries(round.peer.dropped)) this.rejected[`handoff-${reason}`] = (this.rejected[`handoff-${reason}`] ?? 0) + n;
    }
    if (this.stopMode === 'now' || this.commits.has(r) || this.disconnected) {
      await this.exclusive(() => rep.discardRound());
      return null;
    }
    return this.sendUpdate(r, loss);
  }

  /** Compresses the round's update and sends it to the coordinator and to our stage's members. */
  private async sendUpdate(r: number, loss: number): Promise<number> {
    const rep = this.replica!;
    const payload = await this.exclusive(() => rep.compress(r));
    const envelope = sealEnvelope(this.o.key, { kind: 'update', run: this.config.run, round: r, stage: this.stage }, payload);
    const own = this.received.get(r) ?? new Map<string, Received>();
    own.set(this.address, { hash: toHex(peekEnvelope(envelope).payloadHash), payload });
    this.received.set(r, own);
    const others = this.stageMembers().filter((a) => a !== this.address);
    this.o.onEvent({ event: 'exchange', round: r, bytes: envelope.length, peers: others.length });
    const hash = toHex(peekEnvelope(envelope).payloadHash);
    if (this.client.sendBinary(envelope)) this.wsBytesUp += envelope.length;
    // Peers get it once the coordinator holds it: a copier re-signing our update then always
    // delivers after us (the validator's copy check goes by delivery order). A refusal or a
    // slow coordinator does not hold the round up for long.
    await this.until(() => this.accepted.has(`${r}/${hash}`) || this.commits.has(r), 10_000);
    this.accepted.delete(`${r}/${hash}`);
    const { sent, failed } = await this.mesh.sendAll(others, envelope);
    this.o.onEvent({ event: 'sent', round: r, bytes: envelope.length, delivered: sent.length, failed: failed.length });
    return loss;
  }

  /** The announced round's members of our stage (everyone in a run of one stage). */
  private stageMembers(): string[] {
    const a = this.announced;
    if (!a) return [];
    return a.members.filter((_, i) => (a.stages[i] ?? 0) === this.stage);
  }

  /** Applies commit r: the listed updates, from peers where they arrived intact, else from the coordinator. */
  private async applyCommit(r: number, trained: boolean, loss: number | null): Promise<void> {
    const all = this.commits.get(r)!;
    const commit = { ...all, included: all.included.filter((e) => (e.stage ?? 0) === this.stage) };
    // The last update often reaches the coordinator (and closes the round) a moment before
    // its copy reaches us peer to peer: give linked senders a moment before fetching.
    const arrived = (e: CommitEntry) => this.received.get(r)?.get(e.sender)?.hash === e.hash;
    const expected = commit.included.filter((e) => e.sender === this.address || this.mesh.isConnected(e.sender));
    await this.until(() => expected.every(arrived), 3000);
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
    const report = await this.exclusive(() => this.replica!.apply(payloads, r));
    for (const x of report.rejected) this.count('update-' + x.reason, commit.included[x.index]?.sender ?? '?', x.message);
    this.held = r + 1;
    if (commit.included.some((e) => e.sender === this.address)) this.tokensContributed += this.config.innerSteps * this.config.batch * this.config.seq;
    for (const k of [...this.received.keys()]) if (k <= r) this.received.delete(k);
    for (const k of [...this.commits.keys()]) if (k <= r) this.commits.delete(k);
    const weightsHash = await this.exclusive(() => this.replica!.weightsHash());
    this.client.send({ type: 'synced', round: this.held, weightsHash, stage: this.stage });
    const mesh = this.mesh.stats();
    const bytesUp = mesh.bytesSent + this.wsBytesUp;
    const bytesDown = mesh.bytesReceived + this.wsBytesDown;
    const rejectedTotal = Object.values(this.rejected).reduce((a, b) => a + b, 0) + mesh.dropped;
    if (loss !== null && Number.isFinite(loss)) this.client.send({ type: 'report', round: r, loss, bytesUp, bytesDown, rejected: rejectedTotal, peers: mesh.links });
    this.o.onEvent({ event: 'commit', round: r, trained, loss, included: commit.included.length, fromPeers, fetched, bytesUp, bytesDown, peers: mesh.links, rejected: { ...this.rejected, frames: mesh.dropped }, weightsHash, tokensContributed: this.tokensContributed });
    // One uploader per stage: the commit names stage 0's; other stages' first committed peer.
    const uploader = this.config.stages === 1 || this.stage === 0 ? all.checkpointBy : all.checkpointBy !== null ? (commit.included[0]?.sender ?? null) : null;
    if (uploader === this.address) await this.uploadCheckpoint();
    await this.saveLocal();
  }

  private async fetchUpdate(r: number, sender: string, hash: string): Promise<Received> {
    const bytes = await this.o.http.get(`${this.httpBase}/update/${r}/${sender}`);
    if (!bytes) throw new SyncError(`the coordinator no longer has ${sender}'s update of round ${r}`);
    this.wsBytesDown += bytes.length;
    const { header, payload } = openEnvelope(bytes, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes });
    if (header.sender !== sender || header.round !== r || toHex(header.payloadHash) !== hash) throw new SyncError(`the coordinator's copy of ${sender}'s round-${r} update does not match its commit`);
    return { hash, payload };
  }

  // ---- joining midway ----

  private async sync(state: RunState): Promise<void> {
    const result = await syncWeights({
      state,
      held: this.held,
      replica: this.replica!,
      store: this.o.store,
      http: this.o.http,
      httpBase: this.httpBase,
      run: this.config.run,
      address: this.address,
      stage: this.stage,
      stages: this.config.stages,
      askPeers: (timeoutMs) => this.weights.ask(timeoutMs),
      peerTimeoutMs: this.o.peerSyncTimeoutMs ?? 20_000,
      commitFor: (r) => this.commits.get(r) ?? null,
      currentRound: () => this.coordRound,
      onWarning: (text) => this.o.onEvent({ event: 'warning', text }),
      onProgress: (done, total, text) => this.progress('sync', done, total, text),
      exclusive: (fn) => this.exclusive(fn),
    });
    this.held = result.round;
    for (const k of [...this.commits.keys()]) if (k < this.held) this.commits.delete(k);
    const weightsHash = await this.replica!.weightsHash();
    this.client.send({ type: 'synced', round: this.held, weightsHash, stage: this.stage });
    this.o.onEvent({ event: 'synced', round: this.held, source: result.source, weightsHash });
  }

  private async uploadCheckpoint(): Promise<void> {
    const round = this.held;
    const bytes = await this.exclusive(() => this.replica!.encodeWeights(round));
    const envelope = sealEnvelope(this.o.key, { kind: 'weights', run: this.config.run, round, stage: this.stage }, bytes);
    try {
      const r = await this.o.http.put(`${this.httpBase}/checkpoint`, envelope);
      if (r.status !== 200) this.o.onEvent({ event: 'warning', text: `the coordinator refused our checkpoint of round ${round}: ${r.text}` });
      else {
        this.wsBytesUp += envelope.length;
        this.o.onEvent({ event: 'checkpoint', round, bytes: envelope.length });
      }
    } catch (e) {
      this.o.onEvent({ event: 'warning', text: `checkpoint upload failed: ${(e as Error).message}` });
    }
  }

  private async saveLocal(): Promise<boolean> {
    if (!this.o.store || !this.replica || this.held < 0) return false;
    const c = await this.exclusive(() => this.replica!.saveState(this.held));
    await this.o.store.save(localCheckpointName(this.config.run, this.stage), c);
    return true;
  }

  // ---- incoming ----

  private onServer(m: ServerMessage): void {
    this.wsBytesDown += 64; // control traffic, roughly
    switch (m.type) {
      case 'peers':
        for (const p of this.peers) if (!m.peers.includes(p)) this.pipeline?.peerDown(p);
        this.peers = m.peers;
        this.mesh?.setPeers(m.peers);
        break;
      case 'signal':
        if (this.mesh) this.mesh.signal(m.from, m.data);
        else if (this.earlySignals.length < 64) this.earlySignals.push({ from: m.from, data: m.data });
        break;
      case 'round':
        this.coordRound = m.round;
        this.announced = { round: m.round, members: m.members, stages: m.stages, deadline: m.deadline, tokensTrained: m.tokensTrained };
        break;
      case 'stage':
        if (m.stage !== this.stage) this.movedTo = { stage: m.stage, reason: m.reason };
        this.pipeline?.abort('moved to another stage');
        break;
      case 'commit':
        this.coordRound = m.round + 1;
        if (this.pipeline && m.round >= this.held) this.pipeline.abort('the round closed without us');
        if (m.round >= this.held) this.commits.set(m.round, { round: m.round, included: m.included, checkpointBy: m.checkpointBy });
        break;
      case 'scores':
        if (m.standing.address === this.address) this.o.onEvent({ event: 'reward', round: m.round, standing: m.standing });
        break;
      case 'accepted':
        if (this.accepted.size < 64) this.accepted.add(`${m.round}/${m.hash}`);
        break;
      case 'rejected':
        this.o.onEvent({ event: 'warning', text: `the coordinator refused our ${m.what}: ${m.reason}` });
        break;
      case 'error':
        this.o.onEvent({ event: 'warning', text: `coordinator: ${m.message}` });
        break;
      default:
        break;
    }
    this.wake();
  }

  private count(reason: string, from: string, message: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    this.o.onEvent({ event: 'rejected', from, reason, message });
  }

  private onPeerMessage(from: string, bytes: Uint8Array): void {
    if (!this.config) return;
    let header: EnvelopeHeader;
    let payload: Uint8Array;
    try {
      ({ header, payload } = openEnvelope(bytes, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes }));
    } catch (e) {
      if (e instanceof EnvelopeError) return this.count(`envelope-${e.reason}`, from, e.message);
      throw e;
    }
    if (header.sender !== from) return this.count('wrong-sender', from, `signed by ${header.sender} but sent by ${from}`);
    if (!this.peers.includes(from)) return this.count('unknown-member', from, `${from} is not a peer of this run`);
    const handoff = handoffKind(header.kind);
    if (handoff) {
      if (this.config.stages === 1) return this.count('unexpected-kind', from, `'${header.kind}' in a run of one stage`);
      if (this.pipeline && header.round === this.held) return this.pipeline.receive(from, handoff, payload);
      if (header.round < this.held || header.round > this.coordRound + 1) return this.count('stale-round', from, `'${header.kind}' for round ${header.round}; we are at round ${this.held}`);
      if (this.early.length >= 4096) return this.count('flood', from, 'too many hand-offs ahead of our round');
      this.early = this.early.filter((e) => e.round >= this.held);
      this.early.push({ round: header.round, from, kind: handoff, payload });
      return;
    }
    switch (header.kind) {
      case 'update': {
        if (header.round !== this.held && header.round !== this.coordRound) return this.count('stale-round', from, `update for round ${header.round}; we are at round ${this.held}`);
        if (header.stage !== this.stage) return this.count('wrong-stage', from, `an update of stage ${header.stage}; we hold stage ${this.stage}`);
        const byRound = this.received.get(header.round) ?? new Map<string, Received>();
        if (byRound.has(from)) return this.count('duplicate', from, `a second update for round ${header.round}`);
        const problem = this.replica?.checkUpdate(payload, header.round);
        if (problem) return this.count(`update-${problem.reason}`, from, problem.message);
        byRound.set(from, { hash: toHex(header.payloadHash), payload });
        this.received.set(header.round, byRound);
        return;
      }
      case 'weights-request':
        void this.weights.serve(from, header.stage).catch((e) => this.o.onEvent({ event: 'warning', text: `could not send weights to ${from}: ${(e as Error).message}` }));
        return;
      case 'weights':
        if (!this.weights.answer(from, header.round, payload)) return this.count('unexpected-kind', from, 'weights we did not ask for');
        return;
      default:
        return this.count('unexpected-kind', from, `'${header.kind}' is not part of a data-parallel round`);
    }
  }
}

/** fetch's own failures (no answer, connection reset, timeout), not an HTTP status or a bug. */
function isRequestFailure(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return (e instanceof TypeError && /fetch/i.test(e.message)) || name === 'TimeoutError' || name === 'AbortError';
}

export function localCheckpointName(run: string, stage = 0): string {
  return stage === 0 ? `contributor-${run}` : `contributor-${run}-stage${stage}`;
}
