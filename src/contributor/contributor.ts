// A contributor: joins a run, gets the current weights, and then round after round trains H
// inner steps, sends its SparseLoCo update once to the coordinator (the run's update store),
// and applies the commit — the K updates the coordinator closed the round with, the same for
// everyone, gathered from neighbours or the store, so all replicas hold identical weights. Environment-free: a page, a
// worker and `tessera contribute` run this same class with their own sockets and WebRTC.
//
// This file is the lifecycle and the wiring: measure, join, fetch the data, build the
// replica, sync, run the rounds, follow a stage move, rejoin a lost coordinator with
// backoff, stop. The rounds themselves are exchange.ts (gather.ts: the committed updates from
// neighbours or the store); what peers send is admitted by inbox.ts; a pipelined run's hand-offs are handoff.ts; checkpoint-upload.ts, traffic.ts,
// sync.ts and peer-weights.ts do one job each.
// Over ~400 lines on purpose: the lifecycle is one sequence read top to bottom (start, join,
// sync, rounds, stage move, rejoin, stop); cut further, its steps would lose their order.
import type { Gpu } from '../gpu/gpu.ts';
import { splitShard } from '../train/sampler.ts';
import { decodeShard } from '../train/shards.ts';
import type { CheckpointStore } from '../train/checkpoint.ts';
import type { Hotkey } from '../wallet/keys.ts';
import { PeerMesh } from '../net/mesh.ts';
import { CoordinatorClient, CoordinatorError, type OpenSocket, type Welcome } from '../net/signaling.ts';
import type { Capacity, CommitEntry, RunState, ServerMessage } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import { parseRunConfig, type IceServer, type RunConfig } from '../protocol/run-config.ts';
import { ModelReplica } from '../round/replica.ts';
import { measureCapacity } from './calibrate.ts';
import { checkpointUploader, uploadCheckpoint } from './checkpoint-upload.ts';
import type { ContributorEvent, StopMode } from './events.ts';
import { Exchange, type SwarmCounts } from './exchange.ts';
import { Handoffs } from './handoff.ts';
import { Inbox, Refusals } from './inbox.ts';
import { PeerWeights } from './peer-weights.ts';
import { CheckpointPeers } from './checkpoint-peers.ts';
import { maxCheckpointBytes, splitPieces } from '../protocol/checkpoint-manifest.ts';
import { StallWatch, mib, throttled, type ProgressPhase } from './progress.ts';
import { SyncError, localCheckpointName, syncWeights, type CommitInfo } from './sync.ts';
import { Traffic } from './traffic.ts';
import { Changes, Serial, systemClock } from './waiting.ts';

export type { ContributorEvent, RunDescription, StopMode } from './events.ts';
export { localCheckpointName } from './sync.ts';

/** How long a (re)joining contributor waits for a peer to send weights before asking the coordinator. */
export const PEER_SYNC_TIMEOUT_MS = 20_000;
/** Reconnecting to a lost coordinator: the first wait, doubling up to the longest. */
export const REJOIN_FIRST_WAIT_MS = 1000;
export const REJOIN_LONGEST_WAIT_MS = 30_000;
/**
 * Room the mesh allows around the largest payload: an envelope's header and signature
 * (MAX_HEADER_BYTES + SIGNATURE_BYTES in net/envelope.ts, under 1 KiB) with a wide margin.
 */
export const ENVELOPE_ROOM_BYTES = 64 * 1024;
/** Signaling kept from before the mesh exists (a quick peer's offer and ICE candidates): a few per peer. */
export const MAX_EARLY_SIGNALS = 64;
/** The share of the data shard held out of training, as in `tessera train`, for validation. */
const HELD_OUT_FRACTION = 0.01;

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
  /** The largest run checkpoint kept in memory to serve its pieces to late joiners (default DEFAULT_KEEP_CHECKPOINT_BYTES, 1 GiB). */
  keepCheckpointBytes?: number;
}

export class Contributor {
  private client!: CoordinatorClient;
  private mesh!: PeerMesh;
  private config!: RunConfig;
  private replica: ModelReplica | null = null;
  /** Our pipeline stage (0 in a run of one stage), and a move the coordinator asked for. */
  private stage = 0;
  private movedTo: { stage: number; reason: string } | null = null;
  private capacity: Capacity | undefined;
  private trainTokens: ArrayLike<number> = [];
  /** Our neighbours (the coordinator picks at most `config.neighbours`), and the swarm's counts. */
  private peers: string[] = [];
  private swarm: SwarmCounts | null = null;
  /** The coordinator's latest STUN/TURN grant (its `ice` message), beside the run config's iceServers. */
  private iceGrant: IceServer[] = [];
  private readonly earlySignals: { from: string; data: unknown }[] = [];
  private stopMode: StopMode | null = null;
  /** Aborted by stop(): ends the wait before a reconnection. */
  private readonly stopping = new AbortController();
  private disconnected: string | null = null;
  private readonly clock = systemClock;
  private readonly changes = new Changes(this.clock, () => this.stopMode === 'now' || !!this.disconnected);
  private readonly traffic = new Traffic();
  private readonly refusals = new Refusals((e) => this.o.onEvent(e));
  private readonly exchange: Exchange;
  private readonly handoffs: Handoffs;
  private readonly inbox: Inbox;
  private readonly weights: PeerWeights;
  /** The run's checkpoint pieces to and from neighbours (checkpoint-peers.ts). */
  private readonly checkpointPeers: CheckpointPeers;
  /** Replica work, one piece at a time (a peer's weights request reads θ_start meanwhile). */
  private readonly replicaWork = new Serial();
  /** This process's responsiveness: while it runs no timer it sends no heartbeat. */
  private readonly stalls = new StallWatch((ms) =>
    this.o.onEvent({ event: 'warning', text: `this process was unresponsive for ${(ms / 1000).toFixed(0)} s (the coordinator drops a peer silent for ${this.config.heartbeatSeconds * this.config.heartbeatMisses} s): is the machine overloaded?` }),
  );

  constructor(private readonly o: ContributorOptions) {
    const exclusive = <T>(fn: () => Promise<T> | T) => this.replicaWork.run(fn);
    this.exchange = new Exchange({
      key: o.key, clock: this.clock, changes: this.changes, http: o.http, httpBase: this.httpBase,
      config: () => this.config,
      stage: () => this.stage,
      replica: () => this.replica,
      mesh: () => this.mesh,
      coordinator: () => this.client,
      swarm: () => this.swarm,
      stopMode: () => this.stopMode,
      disconnected: () => !!this.disconnected,
      moving: () => !!this.movedTo,
      trainPipelined: (r, members, stages) => this.handoffs.train(r, members, stages),
      committed: (commit, ours) => this.committed(commit, ours),
      exclusive, onEvent: o.onEvent, refusals: this.refusals, traffic: this.traffic,
    });
    this.handoffs = new Handoffs({
      key: o.key,
      config: () => this.config,
      replica: () => this.replica!,
      mesh: () => this.mesh,
      held: () => this.exchange.held,
      coordRound: () => this.exchange.coordRound,
      inRun: (p) => this.peers.includes(p),
      closed: (r) => this.exchange.commitFor(r) !== null,
      exclusive, onEvent: o.onEvent, refusals: this.refusals,
    });
    this.weights = new PeerWeights({
      key: () => o.key,
      mesh: () => this.mesh,
      run: () => this.config.run,
      stage: () => this.stage,
      coordRound: () => this.exchange.coordRound,
      held: () => (this.replica ? this.exchange.held : -1),
      encodeHeld: () => this.replicaWork.run(async () => ({ round: this.exchange.held, bytes: await this.replica!.encodeWeights(this.exchange.held) })),
      until: (ready, timeoutMs) => this.changes.until(ready, timeoutMs),
    });
    this.checkpointPeers = new CheckpointPeers({
      key: o.key, clock: this.clock, changes: this.changes,
      config: () => this.config,
      stage: () => this.stage,
      mesh: () => this.mesh,
      refused: (r, from) => this.refusals.count(r.reason, from, r.message),
      keepBytes: o.keepCheckpointBytes,
    });
    this.inbox = new Inbox({
      config: () => this.config,
      peers: () => this.peers,
      piece: (from, header, payload) => this.exchange.gather.admitPiece(from, header, payload),
      gather: (from, payload) => this.exchange.gather.admitMessage(from, payload),
      handoff: (from, header, kind, payload) => this.handoffs.admit(from, header, kind, payload),
      weightsRequest: (from, stage) => void this.weights.serve(from, stage).catch((e) => this.o.onEvent({ event: 'warning', text: `could not send weights to ${from}: ${(e as Error).message}` })),
      weights: (from, round, payload) => this.weights.answer(from, round, payload),
      checkpoint: (from, payload) => this.checkpointPeers.admit(from, payload),
      checkpointRange: (from, header, payload) => this.checkpointPeers.admitRange(from, header, payload),
    }, this.refusals);
  }

  get address(): string {
    return this.o.key.address;
  }

  /** Refused messages by reason. */
  get rejected(): Record<string, number> {
    return this.refusals.byReason;
  }

  private get httpBase(): string {
    return this.o.coordinator.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');
  }

  /** Asks to stop: 'now' at the next step (the round's work is dropped), or after the round's commit. */
  stop(mode: StopMode = 'now'): void {
    if (this.stopMode !== 'now') this.stopMode = mode;
    if (this.stopMode === 'now') this.handoffs.abort('stopping');
    this.stopping.abort();
    this.changes.notify();
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
      iceServers: () => [...this.config.iceServers, ...this.iceGrant],
      maxMessageBytes: this.config.maxMessageBytes + ENVELOPE_ROOM_BYTES,
      sendSignal: (to, data) => this.client.send({ type: 'signal', to, data }),
      onMessage: (from, m) => this.inbox.admit(from, m),
      onLink: (peer, up, reason, route) => {
        if (!up) {
          this.handoffs.peerDown(peer);
          this.exchange.gather.linkDown(peer);
          this.checkpointPeers.linkDown(peer);
        } else this.exchange.gather.linkUp(peer);
        this.o.onEvent({ event: 'link', peer, up, reason, ...(route ? { path: route.path, route: `${route.local}/${route.remote}` } : {}) });
      },
      onRoute: (peer, route) => this.o.onEvent({ event: 'path', peer, path: route.path, route: `${route.local}/${route.remote}` }),
    });
    // The neighbours (and a quick peer's first offer) can arrive with the welcome, before the
    // mesh existed: hand them over now.
    this.mesh.setPeers(this.peers);
    for (const s of this.earlySignals.splice(0)) this.mesh.signal(s.from, s.data);
    const heartbeat = setInterval(() => this.client.send({ type: 'heartbeat' }), this.config.heartbeatSeconds * 1000);
    try {
      const shard = await this.fetchShard();
      const { tokens } = decodeShard(shard, 'the run’s data shard');
      const { train } = splitShard(tokens, { validFraction: HELD_OUT_FRACTION });
      this.trainTokens = train;
      await this.buildReplica();
      let state = welcome.state;
      for (;;) {
        try {
          await this.sync(state);
          await this.exchange.run();
          if (this.movedTo && this.stopMode === null && !this.disconnected) {
            // The coordinator moved us to a starved stage: that stage's layers and weights. The
            // state held is saved under the stage it is of first (saved after the switch, it was
            // the old stage's layers under the new stage's name, and loading it ended the process).
            await this.saveLocal().catch(() => false);
            this.stage = this.movedTo.stage;
            this.o.onEvent({ event: 'stage', stage: this.stage, reason: this.movedTo.reason });
            this.movedTo = null;
            await this.buildReplica();
            this.exchange.hold(-1);
            state = { ...state, round: this.exchange.coordRound };
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
      // Each link's path as it stands at the end, for the summaries built from these events.
      await this.mesh.refreshRoutes();
      // A neighbour never linked (its link still trying, say while no TURN server answers) is
      // told as a link down too: how that pair exchanged updates is the store.
      for (const peer of this.mesh.neverLinked()) this.o.onEvent({ event: 'link', peer, up: false, reason: 'never linked' });
      this.o.onEvent({ event: 'stopped', round: this.exchange.held, saved, longestStallMs: Math.round(this.stalls.longestMs) });
      this.mesh.close();
      this.client.close();
      this.replica?.destroy();
      this.replica = null;
    }
  }

  /** Opens a connection to the coordinator and joins. */
  private async connect(): Promise<Welcome> {
    const client = new CoordinatorClient(this.o.coordinator, this.o.key, this.o.openSocket, this.capacity);
    client.onMessage((m, bytes) => this.onServer(m, bytes));
    client.onClose((reason) => {
      if (this.client !== client) return;
      this.disconnected = reason;
      this.changes.notify();
    });
    const welcome = await client.connect();
    this.client = client;
    this.disconnected = null;
    this.exchange.joined(welcome.state.round);
    if (this.config && welcome.stage !== this.stage) this.movedTo = { stage: welcome.stage, reason: 'placed anew after reconnecting' };
    return welcome;
  }

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
    this.replica = new ModelReplica(this.o.gpu, this.config, this.trainTokens, this.o.sampleAs ?? this.address, this.stage);
    // Compile every kernel now, off the event loop: drivers compile synchronously on first
    // use, which would stall this peer (heartbeats included) in its first round.
    await this.replica.warmUp({ onProgress: this.compileProgress("the model's kernels") });
  }

  /** After losing the coordinator: retries with backoff until it answers or we are stopped. */
  private async rejoin(): Promise<Welcome | null> {
    const lost = this.disconnected;
    for (let attempt = 0; this.stopMode === null; attempt++) {
      const wait = Math.min(REJOIN_LONGEST_WAIT_MS, REJOIN_FIRST_WAIT_MS * 2 ** attempt);
      this.o.onEvent({ event: 'warning', text: `lost the coordinator (${lost}); reconnecting in ${wait / 1000} s` });
      await this.clock.sleep(wait, this.stopping.signal);
      if (this.stopMode !== null) return null;
      try {
        return await this.connect();
      } catch (e) {
        if (e instanceof CoordinatorError && !e.retry) throw e;
      }
    }
    return null;
  }

  // ---- joining midway ----

  private async sync(state: RunState): Promise<void> {
    const result = await syncWeights({
      state,
      held: this.exchange.held,
      replica: this.replica!,
      store: this.o.store,
      http: this.o.http,
      httpBase: this.httpBase,
      run: this.config.run,
      config: this.config,
      address: this.address,
      stage: this.stage,
      stages: this.config.stages,
      askPeers: (timeoutMs) => this.weights.ask(timeoutMs),
      checkpointPeers: this.checkpointPeers,
      peerTimeoutMs: this.o.peerSyncTimeoutMs ?? PEER_SYNC_TIMEOUT_MS,
      commitFor: (r) => this.exchange.commitFor(r),
      currentRound: () => this.exchange.coordRound,
      onWarning: (text) => this.o.onEvent({ event: 'warning', text }),
      onProgress: (done, total, text) => this.progress('sync', done, total, text),
      exclusive: (fn) => this.replicaWork.run(fn),
    });
    this.exchange.hold(result.round);
    const weightsHash = await this.replica!.weightsHash();
    this.client.send({ type: 'synced', round: result.round, weightsHash, stage: this.stage });
    this.o.onEvent({ event: 'synced', round: result.round, source: result.source, weightsHash });
  }

  /**
   * After each commit: at a checkpoint round, θ_start as the run's checkpoint file, cut into its
   * pieces and kept to serve to late joiners (when it fits keepCheckpointBytes) and uploaded if
   * ours to upload; then our own state.
   */
  private async committed(commit: CommitInfo, ours: readonly CommitEntry[]): Promise<void> {
    const upload = checkpointUploader(commit, ours, this.stage, this.config.stages) === this.address;
    const keep = commit.checkpointBy !== null && maxCheckpointBytes(this.config, this.stage) <= this.checkpointPeers.keepBytes;
    if (upload || keep) {
      const round = this.exchange.held;
      const pieces = await this.replicaWork
        .run(() => this.replica!.encodeWeights(round))
        .then((file) => splitPieces(file, this.config.checkpointPieceBytes))
        .catch((e: Error) => void this.o.onEvent({ event: 'warning', text: `could not encode the checkpoint of round ${round}: ${e.message}` }));
      if (pieces && keep) this.checkpointPeers.keep(round, this.stage, pieces);
      if (pieces && upload) await uploadCheckpoint({
        key: this.o.key, http: this.o.http, httpBase: this.httpBase, run: this.config.run, stage: this.stage, round, pieceBytes: this.config.checkpointPieceBytes,
        pieces, weights: async () => pieces.map((p) => p.bytes),
        fingerprint: () => this.replicaWork.run(() => this.replica!.weightsHash()),
        traffic: this.traffic, onEvent: this.o.onEvent,
      });
    }
    await this.saveLocal();
  }

  private async saveLocal(): Promise<boolean> {
    const round = this.exchange.held;
    if (!this.o.store || !this.replica || round < 0) return false;
    const c = await this.replicaWork.run(() => this.replica!.saveState(round));
    await this.o.store.save(localCheckpointName(this.config.run, this.stage), c);
    return true;
  }

  // ---- the coordinator's messages ----

  /** A control message and its size as received (bytes of its text). */
  private onServer(m: ServerMessage, bytes: number): void {
    this.traffic.received(bytes);
    switch (m.type) {
      case 'neighbours':
        for (const p of this.peers) if (!m.neighbours.includes(p)) this.handoffs.peerDown(p);
        this.peers = m.neighbours;
        this.mesh?.setPeers(m.neighbours);
        break;
      case 'swarm':
        this.swarm = { peers: m.peers, ready: m.ready, need: m.need };
        break;
      case 'signal':
        if (this.mesh) this.mesh.signal(m.from, m.data);
        else if (this.earlySignals.length < MAX_EARLY_SIGNALS) this.earlySignals.push({ from: m.from, data: m.data });
        break;
      case 'round':
        this.exchange.announce(m);
        break;
      case 'ice':
        this.iceGrant = m.servers; // links dialled from now on use them
        break;
      case 'stage':
        if (m.stage !== this.stage) this.movedTo = { stage: m.stage, reason: m.reason };
        this.handoffs.abort('moved to another stage');
        break;
      case 'commit':
        if (m.round >= this.exchange.held) this.handoffs.abort('the round closed without us');
        this.exchange.commitHeard(m);
        break;
      case 'scores':
        if (m.standing.address === this.address) this.o.onEvent({ event: 'reward', round: m.round, standing: m.standing });
        break;
      case 'accepted':
        this.exchange.confirmed(m.round, m.hash);
        break;
      case 'upload-url':
        this.exchange.uploads.offer(m);
        break;
      case 'rejected':
        this.exchange.uploads.refused(m.what);
        this.o.onEvent({ event: 'warning', text: `the coordinator refused our ${m.what}: ${m.reason}` });
        break;
      case 'error':
        this.o.onEvent({ event: 'warning', text: `coordinator: ${m.message}` });
        break;
      default:
        break;
    }
    this.changes.notify();
  }
}

/** fetch's own failures (no answer, connection reset, timeout), not an HTTP status or a bug. */
function isRequestFailure(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return (e instanceof TypeError && /fetch/i.test(e.message)) || name === 'TimeoutError' || name === 'AbortError';
}
