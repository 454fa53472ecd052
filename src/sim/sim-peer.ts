// One simulated contributor: a lightweight client of protocol 2 over a real WebSocket to the
// real coordinator, with a real sr25519 key and signed join. It "trains" for a delay, uploads
// a valid update envelope of the preset's real size (update-templates.ts) — over the WebSocket,
// or with --store bucket to the modelled bucket at the presigned URL the coordinator sent
// (sim-bucket.ts) followed by `uploaded` with its signed piece root (src/net/signed-root.ts:
// committed, so neighbours may serve it) — and applies each commit by fetching the K named
// updates — from a neighbour that holds one (modelled by the link model: no socket) or from
// the store (a real HTTP GET to the coordinator, which answers with the bytes or a redirect to
// the bucket) — and decoding them (one real decode per update in the process, each peer
// waiting its measured time).
// Its weights are a fingerprint chain (fingerprint.ts). Everything it sends is counted.
// With a bucket store it uploads as a contributor does (update-store-client.ts): a PUT to the
// presigned URL of `upload-url`, then `uploaded`; refused, over the socket.
import WebSocket from 'ws';
import { toHex } from '../base/hex.ts';
import { openEnvelope, sealEnvelope } from '../net/envelope.ts';
import { PROTOCOL_VERSION, joinChallenge, parseCommitView, parseServerMessage, type ClientMessage, type CommitEntry, type ServerMessage } from '../protocol/messages.ts';
import type { Hotkey } from '../wallet/keys.ts';
import { COORDINATOR_NODE, type SimContext } from './sim-context.ts';
import { genesisFingerprint, nextFingerprint } from './fingerprint.ts';
import type { UpdateTemplates } from './update-templates.ts';
import { BUCKET_NODE, SimBucket, type BucketRecord } from './sim-bucket.ts';
import { HASH_BYTES, SIGNATURE_BYTES } from '../net/envelope.ts';
import { signPieceRoot, type SignedRoot } from '../net/signed-root.ts';

/** A peer cut off (its coordinator restarting) tries again this often, ms. */
const RECONNECT_MS = 500;
/** A store read that fails (the coordinator restarting) is retried this often, ms. */
const RETRY_MS = 300;

export type PeerEvent =
  | { type: 'round'; round: number; memberCount: number; deadline: number }
  | { type: 'commit'; round: number; included: number; delivered: number }
  | { type: 'applied'; round: number }
  | { type: 'refused'; what: string; reason: string };

export interface SimPeerOptions {
  index: number;
  key: Hotkey;
  ctx: SimContext;
  wsUrl: string;
  templates: UpdateTemplates;
  /** This round's training delay, ms. */
  trainMs: () => number;
  onEvent: (peer: SimPeer, e: PeerEvent) => void;
  /** Sees every text message this peer receives that it does not handle (counted as unknown). */
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export class SimPeer {
  readonly index: number;
  readonly address: string;
  /** θ_start fingerprint of `held`. */
  fingerprint: string;
  /** The round whose θ_start this peer holds. */
  held = 0;
  neighbours: string[] = [];
  /** Messages it could not parse (a protocol mismatch shows here). */
  unknownMessages = 0;
  private ws: WebSocket | null = null;
  /** Bumped per connection: work begun on an older one is dropped. */
  private generation = 0;
  private trainingRound = -1;
  /** Welcomed on the current connection. */
  private joined = false;
  private applying: Promise<void> = Promise.resolve();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** Off the network by choice (left mid-round, or stopped): no reconnecting. */
  private away = false;
  private stopped = false;
  /** Leave after this fraction of the training delay of the round given. */
  private leaveIn: { round: number; fraction: number } | null = null;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Presigned upload URLs by round (--store bucket, modelled; --store s3, a real bucket). */
  private readonly uploadUrls = new Map<number, string>();
  /**
   * The update sent to the bucket and announced (`uploaded`), until the round's answer: sent
   * over the WebSocket if the bucket intake refuses it (the modelled bucket's record, or the
   * envelope itself for a real bucket).
   */
  private inBucket: { round: number; record: BucketRecord } | { round: number; envelope: Uint8Array } | null = null;

  constructor(private readonly o: SimPeerOptions) {
    this.index = o.index;
    this.address = o.key.address;
    this.fingerprint = genesisFingerprint(o.ctx.config);
    this.sleep = o.sleep ?? defaultSleep;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  connect(): void {
    if (this.stopped || this.away) return;
    const gen = ++this.generation;
    this.trainingRound = -1;
    this.joined = false;
    const ws = new WebSocket(this.o.wsUrl);
    this.ws = ws;
    ws.on('open', () => this.send({ type: 'hello', version: PROTOCOL_VERSION }));
    ws.on('message', (data, isBinary) => {
      if (isBinary || gen !== this.generation) return;
      const text = data.toString();
      this.o.ctx.countControl(Buffer.byteLength(text));
      const m = parseServerMessage(text);
      if (!m) return void this.unknownMessages++;
      this.onMessage(m, gen);
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (gen !== this.generation) return;
      this.ws = null;
      if (!this.stopped && !this.away) setTimeout(() => this.connect(), RECONNECT_MS * (1 + Math.random()));
    });
    // Only a joined peer beats (the coordinator refuses anything else before the join).
    this.heartbeat ??= setInterval(() => this.joined && this.send({ type: 'heartbeat' }), this.o.ctx.config.heartbeatSeconds * 1000);
  }

  /** Leaves during `round`'s training, after `fraction` of its delay; comes back with rejoin(). */
  leaveDuring(round: number, fraction: number): void {
    this.leaveIn = { round, fraction };
  }

  get isAway(): boolean {
    return this.away;
  }

  rejoin(): void {
    if (!this.away) return;
    this.away = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.ws?.close(1000, 'simulation over');
  }

  private send(m: ClientMessage): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(m);
    this.o.ctx.countControl(Buffer.byteLength(text));
    this.ws.send(text);
  }

  private onMessage(m: ServerMessage, gen: number): void {
    const { ctx } = this.o;
    switch (m.type) {
      case 'challenge':
        return this.send({ type: 'join', address: this.address, signature: toHex(this.o.key.sign(joinChallenge(m.run, m.nonce))) });
      case 'welcome':
        this.joined = true;
        // After the apply in progress (if any): then catch up to the run's round and say so.
        this.applying = this.applying.then(() => this.catchUp(m.state.round, m.state.oldestCommit, gen)).catch(() => {});
        return;
      case 'neighbours':
        this.neighbours = m.neighbours;
        return;
      case 'round':
        this.o.onEvent(this, { type: 'round', round: m.round, memberCount: m.memberCount, deadline: m.deadline });
        if (m.round === this.held && this.trainingRound !== m.round) {
          this.trainingRound = m.round;
          void this.train(m.round, gen);
        }
        return;
      case 'accepted':
        if (this.inBucket?.round === m.round) this.inBucket = null;
        ctx.hold(m.round, m.hash, this.index, ctx.now());
        return;
      case 'upload-url':
        for (const r of this.uploadUrls.keys()) if (r < m.round) this.uploadUrls.delete(r);
        this.uploadUrls.set(m.round, m.url);
        return;
      case 'commit':
        this.o.onEvent(this, { type: 'commit', round: m.round, included: m.included.length, delivered: m.delivered });
        this.applying = this.applying.then(() => this.applyCommit(m.round, m.included, gen)).catch(() => {});
        return;
      case 'rejected':
        this.o.onEvent(this, { type: 'refused', what: m.what, reason: m.reason });
        // The bucket intake refused it: the protocol's fallback, the update over the WebSocket.
        if (m.what.startsWith('bucket-') && this.inBucket && !this.stale(gen)) {
          const held = this.inBucket;
          this.inBucket = null;
          this.ws?.send('envelope' in held ? held.envelope : ctx.bucket!.bytesOfRecord(held.record));
        }
        return;
      default:
        return; // swarm counts, scores, stage, signal: nothing a simulated peer acts on
    }
  }

  private stale(gen: number): boolean {
    return gen !== this.generation || this.stopped;
  }

  /** Brings the fingerprint to θ_start(round) from the stored commits (or the checkpoint), then says `synced`. */
  private async catchUp(round: number, oldestCommit: number, gen: number): Promise<void> {
    // Simulated weights are a fingerprint, not a model: the coordinator's checkpoint checks
    // (checkpoint-intake.ts) would refuse them, so a simulated peer catches up from commits only.
    if (this.held < oldestCommit) return;
    while (this.held < round) {
      const body = await this.read(`/commit/${this.held}`, gen);
      if (!body) return;
      this.o.ctx.countControl(body.length, 'http');
      const c = parseCommitView(new TextDecoder().decode(body), this.held);
      if (!c) throw new Error(`the coordinator's commit of round ${this.held} is malformed`);
      this.fingerprint = nextFingerprint(this.fingerprint, this.held, c.included.map((e) => e.hash));
      this.held++;
    }
    if (!this.stale(gen)) this.send({ type: 'synced', round: this.held, weightsHash: this.fingerprint, stage: 0 });
  }

  private async train(round: number, gen: number): Promise<void> {
    const { ctx } = this.o;
    const trainMs = this.o.trainMs();
    if (this.leaveIn?.round === round) {
      await this.sleep(trainMs * this.leaveIn.fraction);
      this.leaveIn = null;
      this.away = true;
      this.ws?.close(1000, 'leaving mid-round (simulated)');
      return;
    }
    // Made at the start of the delay, so that making it (all peers' on this one thread) overlaps the "training".
    const started = ctx.now();
    const seed = this.index + 1;
    const { templates } = this.o;
    const payloadBytes = templates.sizeOf(templates.recipe(round, seed).template);
    let envelope: Uint8Array | null = sealEnvelope(this.o.key, { kind: 'update', run: ctx.config.run, round, stage: 0 }, templates.update(round, seed));
    const envelopeBytes = envelope.length;
    // The signed payload hash sits just before the payload (net/envelope.ts).
    const hashAt = envelopeBytes - payloadBytes - SIGNATURE_BYTES - HASH_BYTES;
    const hash = toHex(envelope.subarray(hashAt, hashAt + HASH_BYTES));
    // With the bucket only its record is kept from here on (a round's N envelopes would not fit
    // in memory), and the piece root signed now, as a contributor signs it with `uploaded`
    // (update-store-client.ts): the commit then carries it and neighbours can serve the update.
    const record = ctx.bucket ? ctx.bucket.recordOf(envelope, templates.recipe(round, seed)) : null;
    const root = ctx.bucket ? signPieceRoot(this.o.key, envelope) : null;
    if (record) envelope = null;
    await this.sleep(trainMs - (ctx.now() - started));
    if (this.stale(gen)) return;
    ctx.keepPayload(round, hash, () => templates.update(round, seed), envelopeBytes);
    const url = this.uploadUrls.get(round);
    const key = url ? SimBucket.keyOf(url) : null;
    const t = ctx.links.transfer(this.index, key ? BUCKET_NODE : COORDINATOR_NODE, envelopeBytes, ctx.now());
    await this.sleep(t.done - ctx.now());
    if (this.stale(gen) || this.ws?.readyState !== WebSocket.OPEN) return;
    if (key && record) {
      ctx.bucket!.upload(key, record);
      this.inBucket = { round, record };
      this.send({ type: 'uploaded', round, bytes: envelopeBytes, ...root });
    } else if (envelope && url && !ctx.bucket) await this.upload(round, url, envelope, signPieceRoot(this.o.key, envelope));
    else this.ws.send(envelope ?? ctx.bucket!.bytesOfRecord(record!));
    const b = ctx.peerBytes(round, this.index);
    b.up += envelopeBytes;
    b.held = Math.max(b.held, 1);
  }

  /** To a real bucket at the coordinator's presigned URL (then `uploaded`, with the signed root); over the socket if it refuses. */
  private async upload(round: number, url: string, envelope: Uint8Array, root: SignedRoot): Promise<void> {
    {
      const put = await fetch(url, { method: 'PUT', body: envelope as Uint8Array<ArrayBuffer> }).then((r) => (r.ok ? null : `HTTP ${r.status}`), (e: unknown) => (e as Error).message);
      if (put === null) {
        this.inBucket = { round, envelope };
        return this.send({ type: 'uploaded', round, bytes: envelope.length, ...root });
      }
      this.o.onEvent(this, { type: 'refused', what: 'bucket-refused', reason: `the bucket refused the upload (${put}): sent over the socket` });
    }
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(envelope);
  }

  /** Fetches the commit's K updates (neighbours first, else the store), decodes each, then holds θ_start(round + 1). */
  private async applyCommit(round: number, included: CommitEntry[], gen: number): Promise<void> {
    if (round !== this.held) return; // not this peer's round (it catches up from the stored commits when it syncs)
    const { ctx } = this.o;
    const mine = ctx.peerBytes(round, this.index);
    const neighbours = this.neighbours.map((a) => ctx.indexOf(a)).filter((i): i is number => i !== null);
    // Each peer walks the list from its own offset, so neighbours fetch different updates first and can then share them.
    const start = included.length ? this.index % included.length : 0;
    let holding = mine.up > 0 ? 1 : 0;
    for (let i = 0; i < included.length; i++) {
      const e = included[(start + i) % included.length];
      if (e.sender === this.address) continue;
      const now = ctx.now();
      // As gather.ts: an entry without a piece root (an upload announced without one) comes whole from the store, never from neighbours.
      const from = e.pieces === undefined ? null : ctx.source(round, e.hash, this.index, neighbours, now);
      if (from !== null) {
        const size = ctx.envelopeBytes(e.hash);
        const t = ctx.links.transfer(from, this.index, size, now);
        const served = ctx.peerBytes(round, from);
        served.up += size;
        served.served++;
        mine.down += size;
        ctx.countSource(round, 'neighbour');
        await this.sleep(t.done - now);
      } else {
        const got = await this.readUpdate(round, e.sender);
        if (!got) return;
        const t = ctx.links.transfer(got.from, this.index, got.bytes, now);
        // Made once per distinct update in the process (for its one decode), as sim-context.ts decodes once.
        if (!ctx.hasPayload(e.hash)) ctx.keepPayload(round, e.hash, () => openEnvelope(got.envelope(), { run: ctx.config.run, maxPayloadBytes: ctx.config.maxMessageBytes }).payload, got.bytes);
        mine.down += got.bytes;
        ctx.countSource(round, 'store');
        await this.sleep(t.done - ctx.now());
      }
      ctx.hold(round, e.hash, this.index, ctx.now());
      mine.held = Math.max(mine.held, ++holding);
      await this.sleep(ctx.decodeMs(round, e.hash));
    }
    this.fingerprint = nextFingerprint(this.fingerprint, round, included.map((e) => e.hash));
    this.held = round + 1;
    ctx.noteFingerprint(round, this.index, this.fingerprint);
    this.o.onEvent(this, { type: 'applied', round });
    if (this.stale(gen)) return;
    this.send({ type: 'synced', round: this.held, weightsHash: this.fingerprint, stage: 0 });
  }

  /**
   * A stored update: GET /update/<round>/<sender> from the coordinator, which sends its bytes
   * or (with a bucket) a redirect to a presigned GET, read from the modelled bucket. Its size,
   * where it came from (for the link model) and its bytes on demand; null once stopped.
   */
  private async readUpdate(round: number, sender: string): Promise<{ bytes: number; from: number; envelope: () => Uint8Array } | null> {
    const { ctx } = this.o;
    for (;;) {
      if (this.stopped) return null;
      try {
        const r = await fetch(`${ctx.http}/update/${round}/${sender}`, { redirect: 'manual' });
        const location = r.headers.get('location');
        const key = location ? SimBucket.keyOf(location) : null;
        if (r.ok) {
          const envelope = new Uint8Array(await r.arrayBuffer());
          return { bytes: envelope.length, from: COORDINATOR_NODE, envelope: () => envelope };
        }
        await r.arrayBuffer();
        const bucket = ctx.bucket;
        if (key && bucket) {
          const bytes = bucket.peerRead(key);
          if (bytes !== null) return { bytes, from: BUCKET_NODE, envelope: () => bucket.download(key) ?? new Uint8Array(0) };
        } else if (location) throw new Error(`the coordinator redirected an update to ${location.slice(0, 80)}, not to the modelled bucket`);
      } catch (e) {
        if (e instanceof Error && e.message.startsWith('the coordinator redirected')) throw e;
        // the coordinator restarting: try again
      }
      await this.sleep(RETRY_MS);
    }
  }

  /** GET from the coordinator; retried while it restarts; null once this connection is stale (gen −1: never stale) or stopped. */
  private async read(path: string, gen: number): Promise<Uint8Array | null> {
    for (;;) {
      if (this.stopped || (gen >= 0 && this.stale(gen))) return null;
      try {
        const r = await fetch(`${this.o.ctx.http}${path}`);
        if (r.ok) return new Uint8Array(await r.arrayBuffer());
        if (r.status === 404) await r.arrayBuffer();
      } catch {
        // the coordinator restarting: try again
      }
      await this.sleep(RETRY_MS);
    }
  }
}
