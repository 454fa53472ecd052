// One WebRTC connection to one remote peer, through simple-peer: an ordered, reliable data
// channel that carries whole binary messages, framed (framing.ts) so any size fits and sent
// with backpressure so a 100 MB message never sits in memory twice over. Environment-free:
// in Node the caller passes `wrtc` (@roamhq/wrtc); in a browser it is omitted and simple-peer
// uses the page's RTCPeerConnection.
//
// Messages on one link go out one after another, in send() order; the receiver therefore has
// at most one message of ours half-received. Nothing from the remote is trusted: its frames
// go through a Reassembler with the caller's limits, and simple-peer's errors close the link
// with a reason instead of escaping as exceptions.
//
// Liveness: an idle link sends an empty message (one 13-byte frame; no real message is empty)
// every keepaliveMs, and a link that has received nothing for silenceMs closes itself. A
// relayed path can die on one side only (seen behind symmetric NATs: one end's ICE failed,
// the other still "connected"); without this, the side that still thinks it is up would never
// notice, and the mesh, which redials from the dialler's side, might never redial.
import SimplePeer from 'simple-peer';
import { DEFAULT_CHUNK_BYTES, Reassembler, iterateFrames, type ReassemblyLimits, type ReassemblyStats } from './framing.ts';
import { routeFromStats, type LinkRoute } from './link-path.ts';

export interface PeerLinkOptions {
  initiator: boolean;
  /** @roamhq/wrtc in Node; omit in browsers. */
  wrtc?: unknown;
  /** STUN/TURN servers; omitted: simple-peer's defaults (public STUN). Loopback needs none. */
  iceServers?: { urls: string | string[]; username?: string; credential?: string }[];
  /** 'relay': only TURN candidates (a benchmark of the relay; the default 'all' lets ICE pick). */
  iceTransportPolicy?: 'all' | 'relay';
  limits: ReassemblyLimits;
  /** Bytes per frame, header included (DEFAULT_CHUNK_BYTES). */
  chunkBytes?: number;
  /** The link closes unless connected this soon (30 s). */
  connectTimeoutMs?: number;
  /** An idle link sends a keepalive this often (DEFAULT_KEEPALIVE_MS; 0: never). */
  keepaliveMs?: number;
  /** A connected link that receives nothing this long closes (DEFAULT_SILENCE_MS; 0: never). */
  silenceMs?: number;
}

export type PeerLinkStats = { bytesSent: number; bytesReceived: number; messagesSent: number; messagesReceived: number; keepalivesSent: number; keepalivesReceived: number } & ReassemblyStats;

// What this module uses of a simple-peer instance (its own types need the DOM and Node).
interface RawPeer {
  signal(data: unknown): void;
  write(chunk: Uint8Array): boolean;
  destroy(err?: Error): void;
  on(event: string, cb: (...args: never[]) => void): unknown;
  once(event: string, cb: () => void): unknown;
  removeListener(event: string, cb: () => void): unknown;
  readonly bufferSize: number;
  getStats(cb: (err: Error | null, reports: Record<string, unknown>[]) => void): void;
}
type RawPeerCtor = new (opts: Record<string, unknown>) => RawPeer;

/** The link was closed (by either side or by an error) before a send finished. */
export class LinkClosedError extends Error {
  constructor(readonly remote: string, readonly reason: string) {
    super(`link to ${remote} closed: ${reason}`);
    this.name = 'LinkClosedError';
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Keepalive period of an idle link: well under the silence limit, so a few may be lost or late. */
export const DEFAULT_KEEPALIVE_MS = 5000;
/** Silence that closes a link: as long as WebRTC's own consent check allows (RFC 7675: 30 s). */
export const DEFAULT_SILENCE_MS = 30_000;
/** onConnect callbacks wait at most this long for the stats that say the link's route. */
const ROUTE_PROBE_TIMEOUT_MS = 2000;

export class PeerLink {
  readonly #peer: RawPeer | null;
  readonly #reassembler: Reassembler;
  readonly #chunkBytes: number;
  readonly #sweepEveryMs: number;
  readonly #counts = { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, keepalivesSent: 0, keepalivesReceived: 0 };
  readonly #keepaliveMs: number;
  readonly #silenceMs: number;
  /** When the last frame arrived and the last one went out (performance.now()). */
  #lastReceivedAt = 0;
  #lastSentAt = 0;
  /** Sends queued or in progress (a keepalive is sent only when there are none). */
  #sending = 0;
  readonly #onMessage: ((m: Uint8Array) => void)[] = [];
  readonly #onConnect: (() => void)[] = [];
  readonly #onClose: ((reason: string) => void)[] = [];
  /** Resolves once connected; rejects when the link closes first. */
  readonly #ready: Promise<void>;
  #readyResolve!: () => void;
  #readyReject!: (e: Error) => void;
  /** Waiters for the stream's 'drain' (or the link's close). */
  #drainWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #sendChain: Promise<void> = Promise.resolve();
  #nextId = 0;
  #connected = false;
  #closeReason: string | null = null;
  #timers: { connect: unknown; sweep: unknown; liveness: unknown } = { connect: null, sweep: null, liveness: null };
  #pendingError: string | null = null;
  #route: LinkRoute | null = null;
  /** The onConnect callbacks ran (after the route was read). */
  #announced = false;

  constructor(readonly remote: string, options: PeerLinkOptions, onSignal: (data: unknown) => void) {
    this.#reassembler = new Reassembler(options.limits);
    this.#chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.#keepaliveMs = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.#silenceMs = options.silenceMs ?? DEFAULT_SILENCE_MS;
    this.#sweepEveryMs = Math.max(100, Math.min(5000, options.limits.timeoutMs / 2));
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.#ready.catch(() => {}); // a link that never connects is not an unhandled rejection
    const opts: Record<string, unknown> = { initiator: options.initiator, trickle: true };
    if (options.wrtc !== undefined) opts.wrtc = options.wrtc;
    if (options.iceServers !== undefined) opts.config = { iceServers: options.iceServers, ...(options.iceTransportPolicy ? { iceTransportPolicy: options.iceTransportPolicy } : {}) };
    let peer: RawPeer;
    try {
      peer = new (SimplePeer as unknown as RawPeerCtor)(opts);
    } catch (e) {
      // No WebRTC here, or a bad configuration: the link exists, closed, with the reason.
      this.#peer = null;
      queueMicrotask(() => this.#shutdown(`cannot create a WebRTC connection: ${message(e)}`));
      return;
    }
    this.#peer = peer;
    peer.on('signal', (data: unknown) => {
      if (this.#closeReason !== null) return;
      try {
        onSignal(data);
      } catch (e) {
        console.error(`PeerLink ${remote}: the signal callback threw:`, e);
      }
    });
    peer.on('connect', () => this.#connectedNow());
    peer.on('data', (chunk: Uint8Array) => this.#receive(chunk));
    peer.on('drain', () => this.#drained());
    peer.on('error', (err: Error & { code?: string }) => {
      this.#pendingError = `${err.code ? `${err.code}: ` : ''}${err.message}`;
    });
    peer.on('close', () => this.#shutdown(this.#pendingError ?? 'closed by the remote peer'));
    const connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#timers.connect = setTimeout(() => {
      if (!this.#connected) this.close(`not connected within ${connectMs} ms`);
    }, connectMs);
  }

  get connected(): boolean {
    return this.#connected && this.#closeReason === null;
  }

  /** Direct or relayed (TURN), and the candidate types of each end; null until connected (or when the stats did not say). */
  get route(): LinkRoute | null {
    return this.#route;
  }

  /** Why the link closed, or null while it has not. */
  get closeReason(): string | null {
    return this.#closeReason;
  }

  get stats(): PeerLinkStats {
    const r = this.#reassembler.stats;
    return { ...this.#counts, framesDropped: r.framesDropped, messagesDropped: r.messagesDropped, messagesCompleted: r.messagesCompleted, reasons: { ...r.reasons } };
  }

  /** The remote's signaling data (offer, answer, candidates); ignored once closed. */
  signal(data: unknown): void {
    if (this.#closeReason !== null || !this.#peer) return;
    try {
      this.#peer.signal(data);
    } catch (e) {
      this.close(`bad signaling data: ${message(e)}`);
    }
  }

  /**
   * Sends one message, after those already queued; resolves once its last frame is handed to
   * the data channel. Waits for the connection; rejects with LinkClosedError if the link closes.
   */
  send(message: Uint8Array): Promise<void> {
    if (message.length === 0) return Promise.reject(new RangeError('a PeerLink message cannot be empty: an empty one is the link\'s keepalive'));
    return this.#enqueue(message, false);
  }

  #enqueue(message: Uint8Array, keepalive: boolean): Promise<void> {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0;
    this.#sending++;
    const run = this.#sendChain.then(() => this.#sendNow(id, message, keepalive)).finally(() => this.#sending--);
    this.#sendChain = run.catch(() => {});
    return run;
  }

  onMessage(cb: (message: Uint8Array) => void): void {
    this.#onMessage.push(cb);
  }

  /** Called once connected and its route read (at once, if already). */
  onConnect(cb: () => void): void {
    if (this.connected && this.#announced) queueMicrotask(cb);
    else if (this.#closeReason === null) this.#onConnect.push(cb);
  }

  /** Called once when the link closes, for whatever reason (at once, if it already has). */
  onClose(cb: (reason: string) => void): void {
    if (this.#closeReason !== null) {
      const reason = this.#closeReason;
      queueMicrotask(() => cb(reason));
    } else {
      this.#onClose.push(cb);
    }
  }

  /** Closes the link (the remote sees its channel close); pending sends reject. */
  close(reason = 'closed locally'): void {
    if (this.#closeReason !== null) return;
    this.#pendingError = reason;
    this.#peer?.destroy();
    // simple-peer finishes destroying in a microtask and then emits 'close'; the link is
    // closed for its user from now on.
    this.#shutdown(reason);
  }

  async #sendNow(id: number, msg: Uint8Array, keepalive: boolean): Promise<void> {
    if (this.#closeReason !== null) throw new LinkClosedError(this.remote, this.#closeReason);
    await this.#ready;
    const peer = this.#peer!;
    for (const frame of iterateFrames(id, msg, this.#chunkBytes)) {
      if (this.#closeReason !== null) throw new LinkClosedError(this.remote, this.#closeReason);
      this.#counts.bytesSent += frame.length;
      this.#lastSentAt = performance.now();
      if (!peer.write(frame)) await this.#waitDrain();
    }
    if (keepalive) this.#counts.keepalivesSent++;
    else this.#counts.messagesSent++;
  }

  #waitDrain(): Promise<void> {
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  #drained(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w.resolve();
  }

  #connectedNow(): void {
    if (this.#closeReason !== null || this.#connected) return;
    this.#connected = true;
    clearTimeout(this.#timers.connect);
    this.#scheduleSweep();
    this.#lastReceivedAt = this.#lastSentAt = performance.now();
    this.#scheduleLiveness();
    this.#readyResolve();
    void this.#probeRoute().then(() => {
      if (!this.connected) return;
      this.#announced = true;
      for (const cb of this.#onConnect.splice(0)) guard(this.remote, 'onConnect', () => cb());
    });
  }

  /**
   * Reads the route again: ICE may nominate a relayed pair first (the first to answer, under
   * load) and move to a direct one once its checks succeed. Null once closed.
   */
  async refreshRoute(): Promise<LinkRoute | null> {
    if (!this.connected) return null;
    await this.#probeRoute();
    return this.#route;
  }

  /** Reads the selected candidate pair from the stats (bounded: a stats call that hangs is given up). */
  #probeRoute(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ROUTE_PROBE_TIMEOUT_MS);
      try {
        this.#peer!.getStats((err, reports) => {
          if (!err) this.#route = routeFromStats(reports);
          clearTimeout(timer);
          resolve();
        });
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  #scheduleSweep(): void {
    this.#timers.sweep = setTimeout(() => {
      if (this.#closeReason !== null) return;
      this.#reassembler.sweep();
      this.#scheduleSweep();
    }, this.#sweepEveryMs);
  }

  /** Keepalives out while idle; closes the link once the remote has been silent too long. */
  #scheduleLiveness(): void {
    const tick = Math.min(...[this.#keepaliveMs, this.#silenceMs / 3].filter((ms) => ms > 0));
    if (!Number.isFinite(tick)) return;
    this.#timers.liveness = setTimeout(() => {
      if (this.#closeReason !== null) return;
      const now = performance.now();
      if (this.#silenceMs > 0 && now - this.#lastReceivedAt > this.#silenceMs) {
        return this.close(`silent for ${Math.round((now - this.#lastReceivedAt) / 1000)} s: nothing from the remote, not even a keepalive (its side of the link is gone or the path died)`);
      }
      if (this.#keepaliveMs > 0 && this.#sending === 0 && now - this.#lastSentAt >= this.#keepaliveMs) this.#enqueue(new Uint8Array(0), true).catch(() => {});
      this.#scheduleLiveness();
    }, tick);
  }

  #receive(chunk: Uint8Array): void {
    if (this.#closeReason !== null) return;
    this.#lastReceivedAt = performance.now();
    // Node hands out Buffers: a plain view of the same bytes (the Reassembler copies).
    const frame = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#counts.bytesReceived += frame.length;
    const msg = this.#reassembler.push(frame);
    if (!msg) return;
    if (msg.length === 0) return void this.#counts.keepalivesReceived++;
    this.#counts.messagesReceived++;
    for (const cb of this.#onMessage) guard(this.remote, 'onMessage', () => cb(msg));
  }

  #shutdown(reason: string): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = reason;
    this.#connected = false;
    clearTimeout(this.#timers.connect);
    clearTimeout(this.#timers.sweep);
    clearTimeout(this.#timers.liveness);
    this.#reassembler.clear();
    // simple-peer 9 never clears its 5 s ICE-complete timer, which would hold a closing Node
    // process open that long.
    if (this.#peer) clearTimeout((this.#peer as { _iceCompleteTimer?: unknown })._iceCompleteTimer);
    const err = new LinkClosedError(this.remote, reason);
    this.#readyReject(err);
    for (const w of this.#drainWaiters.splice(0)) w.reject(err);
    this.#onConnect.length = 0;
    for (const cb of this.#onClose.splice(0)) guard(this.remote, 'onClose', () => cb(reason));
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A user callback that throws is reported, not allowed to unwind into simple-peer. */
function guard(remote: string, what: string, f: () => void): void {
  try {
    f();
  } catch (e) {
    console.error(`PeerLink ${remote}: ${what} callback threw:`, e);
  }
}
