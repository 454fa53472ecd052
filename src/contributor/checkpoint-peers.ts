// The run's checkpoint between neighbours, both sides (the vocabulary is
// src/protocol/checkpoint-peer-messages.ts, the joiner's scheduling checkpoint-scheduler.ts).
//
// Holding: a contributor keeps the pieces of the latest checkpoint of its stage it has — the
// one it encoded at a checkpoint round (θ_start as the run's checkpoint file is a pure function
// of the weights and the round, so every replica's pieces are the uploader's, with the same
// SHA-256s), or the one it fetched when it joined — when the checkpoint is at most
// `keepBytes` (DEFAULT_KEEP_CHECKPOINT_BYTES: a base checkpoint, 494 MB, is kept; a 1b one,
// 4.02 GB, only where the contributor allows that much memory).
//
// Serving, bounded per peer: at most MAX_CONCURRENT_CHECKPOINT_SENDS ranges sealed and queued
// or on the wire at once, to everyone together, and RANGES_IN_FLIGHT_PER_PEER to one asker
// (more are refused 'busy' at once: a joiner asks at most that many of one neighbour, so only
// a crowd of joiners meets it), each asker at most one checkpoint's worth and everyone
// together at most CHECKPOINT_SERVES checkpoints' worth per checkpoint held ('spent' beyond).
//
// Fetching: the joiner, holding a manifest checked against the commit, asks its neighbours
// which pieces they hold and takes each from one of them (several ranges asked at once of
// each: checkpoint-scheduler.ts), hashed whole against the manifest
// before it is kept; what no neighbour gives comes from the store (`fromStore`: HTTP ranges
// with resume, hashed too). A bad piece or range is refused, counted and blamed on its sender
// alone, which is not asked again for this checkpoint. Environment-free.
import { sealEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import { pieceHash, type CheckpointManifest } from '../protocol/checkpoint-manifest.ts';
import {
  MAX_CHECKPOINT_RANGE_BYTES, decodeRange, encodeCheckpointPeerMessage, encodeRange, parseCheckpointPeerMessage,
  type CheckpointPeerMessage,
} from '../protocol/checkpoint-peer-messages.ts';
import type { RefuseReason } from '../protocol/peer-messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { Hotkey } from '../wallet/keys.ts';
import { CheckpointFetchError } from './checkpoint-fetch.ts';
import { CheckpointScheduler, RANGES_IN_FLIGHT_PER_PEER, type CheckpointAction, type CheckpointSources } from './checkpoint-scheduler.ts';
import type { Refusal } from './inbox.ts';
import type { Changes, Clock } from './waiting.ts';

/** Ranges a peer has sealed and queued or on the wire at once, to everyone together (8 × 4 MiB: 32 MiB of envelopes); to one asker, RANGES_IN_FLIGHT_PER_PEER. */
export const MAX_CONCURRENT_CHECKPOINT_SENDS = 8;
/** Checkpoints' worth a peer serves, everyone together, per checkpoint it holds. */
export const CHECKPOINT_SERVES = 4;
/** The largest checkpoint a contributor keeps to serve, unless told otherwise. */
export const DEFAULT_KEEP_CHECKPOINT_BYTES = 1024 ** 3;

export interface CheckpointPeersHost {
  key: Hotkey;
  clock: Clock;
  changes: Changes;
  config(): RunConfig;
  stage(): number;
  mesh(): Pick<PeerMesh, 'send' | 'isConnected' | 'connectedPeers'>;
  /** A refusal found after the message that caused it was admitted (a piece that hashes wrong). */
  refused(r: Refusal, from: string): void;
  /** Largest checkpoint kept to serve (default DEFAULT_KEEP_CHECKPOINT_BYTES). */
  keepBytes?: number;
}

interface Held {
  round: number;
  stage: number;
  totalBytes: number;
  pieces: Map<string, Uint8Array>;
  servedTo: Map<string, number>;
  served: number;
}

interface Fetching {
  round: number;
  stage: number;
  sched: CheckpointScheduler;
  version: number;
  /** A piece is in (from a neighbour or the store): its bytes. */
  progress(bytes: number): void;
}

/** What a fetch took from where. */
export interface CheckpointFetched {
  bytes: Uint8Array;
  sources: CheckpointSources;
}

export class CheckpointPeers {
  private held: Held | null = null;
  private fetching: Fetching | null = null;
  /** The checkpoint fetched last: a neighbour's late answer about it is no fault. */
  private lastFetched: { round: number; stage: number } | null = null;
  private sending = 0;
  /** Ranges being sent, per asker. */
  private readonly sendingTo = new Map<string, number>();
  /** Ranges sent and refused 'busy' or 'spent' (for the report). */
  readonly serving = { ranges: 0, bytes: 0, refused: 0 };

  constructor(private readonly h: CheckpointPeersHost) {}

  get keepBytes(): number {
    return this.h.keepBytes ?? DEFAULT_KEEP_CHECKPOINT_BYTES;
  }

  /** Keeps `pieces` (θ_start(round) of `stage`, as the run's checkpoint file cut by the manifest's rule) to serve; false when over keepBytes. */
  keep(round: number, stage: number, pieces: readonly { hash: string; bytes: Uint8Array }[]): boolean {
    const totalBytes = pieces.reduce((n, p) => n + p.bytes.length, 0);
    if (totalBytes > this.keepBytes) return false;
    this.held = { round, stage, totalBytes, pieces: new Map(pieces.map((p) => [p.hash, p.bytes])), servedTo: new Map(), served: 0 };
    return true;
  }

  /** The checkpoint held to serve: its round, stage and piece count, or null. */
  holding(): { round: number; stage: number; pieces: number } | null {
    return this.held ? { round: this.held.round, stage: this.held.stage, pieces: this.held.pieces.size } : null;
  }

  /** Forgets the held checkpoint (a stage move: another stage's layers). */
  drop(): void {
    this.held = null;
  }

  // ---- fetching ----

  /**
   * The checkpoint `m` names (checked against the commit by the caller), its pieces from the
   * neighbours that hold them and the rest from `fromStore`, every piece hashed. Throws what
   * `fromStore` throws, or an Error when interrupted (stopping, or the coordinator gone).
   */
  async fetch(m: CheckpointManifest, fromStore: (hash: string, length: number) => Promise<Uint8Array>, onProgress?: (done: number, total: number) => void): Promise<CheckpointFetched> {
    const buffer = new Uint8Array(m.totalBytes);
    const clock = this.h.clock;
    const sched = new CheckpointScheduler({ now: () => clock.now(), pieces: m.pieces, pieceBytes: m.pieceBytes, buffer, rangeBytes: MAX_CHECKPOINT_RANGE_BYTES });
    let done = 0;
    const progress = (bytes: number) => onProgress?.((done += bytes), m.totalBytes);
    const f: Fetching = { round: m.round, stage: m.stage, sched, version: 0, progress };
    this.fetching = f;
    this.lastFetched = { round: m.round, stage: m.stage };
    let failure: unknown = null;
    const changed = () => {
      f.version++;
      this.h.changes.notify();
    };
    const perform = (a: CheckpointAction) => {
      if (a.type === 'which') return void this.send(a.peer, { type: 'which', round: m.round, stage: m.stage });
      if (a.type === 'want') return void this.send(a.peer, { type: 'want', round: m.round, stage: m.stage, hash: a.hash, start: a.start, end: a.end });
      const into = sched.bytesOf(a.index);
      void fromStore(a.hash, into.length)
        .then((bytes) => {
          into.set(bytes);
          sched.fromStore(a.index);
          progress(into.length);
        })
        .catch((e: unknown) => void (failure ??= e))
        .finally(changed);
    };
    try {
      for (;;) {
        if (failure) throw failure;
        for (const a of sched.plan(this.h.mesh().connectedPeers)) perform(a);
        if (sched.complete) break;
        const seen = f.version;
        const wake = sched.wakeAt();
        const timeout = wake === null ? Infinity : Math.max(1, wake - clock.now());
        const until = clock.now() + timeout;
        if (!(await this.h.changes.until(() => f.version !== seen, timeout)) && clock.now() < until) throw new CheckpointFetchError('the checkpoint fetch was interrupted');
      }
      // Kept to serve in turn (views into the fetched file: no second copy).
      this.keep(m.round, m.stage, m.pieces.map((hash, i) => ({ hash, bytes: sched.bytesOf(i) })));
      return { bytes: buffer, sources: sched.sources };
    } finally {
      if (this.fetching === f) this.fetching = null;
    }
  }

  /** A neighbour's link dropped: its piece is fetched elsewhere. */
  linkDown(peer: string): void {
    if (!this.fetching) return;
    this.fetching.sched.linkDown(peer);
    this.fetching.version++;
    this.h.changes.notify();
  }

  // ---- what neighbours send, admitted by the inbox ----

  /** A 'checkpoint' envelope's payload from neighbour `from`. */
  admit(from: string, payload: Uint8Array): Refusal | null {
    const m = parseCheckpointPeerMessage(payload);
    if (!m) return { reason: 'checkpoint-malformed', message: 'a checkpoint message that does not parse' };
    switch (m.type) {
      case 'which': {
        const held = this.held?.round === m.round && this.held.stage === m.stage ? [...this.held.pieces.keys()] : [];
        this.send(from, { type: 'holds', round: m.round, stage: m.stage, pieces: held });
        return null;
      }
      case 'want':
        this.serve(from, m);
        return null;
      case 'holds':
      case 'refuse': {
        const f = this.fetching;
        if (!f || f.round !== m.round || f.stage !== m.stage) return this.late(m.round, m.stage) ? null : { reason: 'unasked', message: `a checkpoint '${m.type}' for round ${m.round}, which we are not fetching` };
        const refusal = m.type === 'holds' ? f.sched.onHolds(from, m.pieces) : f.sched.onRefuse(from, m.hash, m.start, m.reason);
        f.version++;
        this.h.changes.notify();
        return refusal;
      }
    }
  }

  /** A 'checkpoint-range' envelope from neighbour `from`: kept when it answers our want; a whole piece is hashed against the manifest. */
  admitRange(from: string, header: EnvelopeHeader, payload: Uint8Array): Refusal | null {
    const r = decodeRange(payload);
    if (!r) return { reason: 'checkpoint-malformed', message: `a checkpoint range of ${payload.length} bytes, shorter than its header` };
    const f = this.fetching;
    if (!f || f.round !== header.round) return this.late(header.round, f?.stage ?? this.lastFetched?.stage ?? -1) ? null : { reason: 'unasked', message: `a checkpoint range of round ${header.round}, which we are not fetching` };
    const got = f.sched.onRange(from, r.hash, r.start, r.data);
    f.version++;
    this.h.changes.notify();
    if (!got || 'reason' in got) return got;
    const bytes = f.sched.bytesOf(got.whole);
    void pieceHash(bytes).then((hash) => {
      const refusal = f.sched.checked(got.whole, hash === r.hash);
      if (refusal) this.h.refused(refusal, from);
      else f.progress(bytes.length);
      f.version++;
      this.h.changes.notify();
    });
    return null;
  }

  /** An answer about the checkpoint we fetched last, arriving after the fetch ended. */
  private late(round: number, stage: number): boolean {
    return !this.fetching && this.lastFetched?.round === round && this.lastFetched.stage === stage;
  }

  // ---- serving ----

  private serve(to: string, m: Extract<CheckpointPeerMessage, { type: 'want' }>): void {
    const held = this.held;
    const piece = held?.round === m.round && held.stage === m.stage ? held.pieces.get(m.hash) : undefined;
    const refuse = (reason: RefuseReason) => this.send(to, { type: 'refuse', round: m.round, stage: m.stage, hash: m.hash, start: m.start, reason });
    if (!held || !piece || m.end > piece.length) return void refuse('missing');
    const length = m.end - m.start;
    const toAsker = held.servedTo.get(to) ?? 0;
    if (toAsker + length > held.totalBytes + MAX_CHECKPOINT_RANGE_BYTES || held.served + length > CHECKPOINT_SERVES * held.totalBytes) {
      this.serving.refused++;
      return void refuse('spent');
    }
    const toNow = this.sendingTo.get(to) ?? 0;
    if (this.sending >= MAX_CONCURRENT_CHECKPOINT_SENDS || toNow >= RANGES_IN_FLIGHT_PER_PEER) {
      this.serving.refused++;
      return void refuse('busy');
    }
    held.servedTo.set(to, toAsker + length);
    held.served += length;
    this.serving.ranges++;
    this.serving.bytes += length;
    this.sending++;
    this.sendingTo.set(to, toNow + 1);
    const envelope = sealEnvelope(this.h.key, { kind: 'checkpoint-range', run: this.h.config().run, round: m.round, stage: this.h.stage() }, encodeRange(m.hash, m.start, piece.subarray(m.start, m.end)));
    void this.h.mesh().send(to, envelope).finally(() => {
      this.sending--;
      const left = (this.sendingTo.get(to) ?? 1) - 1;
      if (left > 0) this.sendingTo.set(to, left);
      else this.sendingTo.delete(to);
    });
  }

  private send(to: string, m: CheckpointPeerMessage): boolean {
    const mesh = this.h.mesh();
    if (!mesh.isConnected(to)) return false;
    void mesh.send(to, sealEnvelope(this.h.key, { kind: 'checkpoint', run: this.h.config().run, round: m.round, stage: this.h.stage() }, encodeCheckpointPeerMessage(m)));
    return true;
  }
}
