// The gather exchange, one contributor's side: after a round's commit every replica needs
// exactly the K committed updates. Each is taken from what we hold (our own), else in pieces
// from the neighbours that announced it (`have`), else from the run's update store
// (GET /update/<round>/<sender>: only the missing pieces, as byte ranges). Which piece to ask
// of whom, timeouts and resuming are piece-scheduler.ts; how a piece is checked is
// src/net/pieces.ts: a neighbour's piece list is believed only when it hashes to the root the
// commit names, each piece only when it matches its hash in that list, and the assembled
// envelope is opened once more and checked against the commit's payload hash.
//
// Bounds, whatever the swarm's size N:
// - upload: our update once to the store, plus at most servingCap(K) = 2(K+1) updates' worth
//   of pieces served to neighbours per round (a want beyond it is refused 'spent');
// - memory: our own update and the round's committed K (the previous round's are dropped
//   when a new round's gather starts, and nothing we were not asked for is kept);
// - waits: a peer sends at most MAX_CONCURRENT_SERVES pieces at once and refuses wants
//   beyond that at once ('busy'); the scheduler's timeouts move a silent neighbour's pieces to
//   another, and an update no neighbour can give takes the store after STALL_MS.
// Bad bytes from a neighbour are refused and counted (Refusals), never fatal.
// Environment-free; a state machine on the host's clock (test/contributor/gather.test.ts).
import { SIGNATURE_BYTES, maxEnvelopeBytes, peekEnvelope, sealEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import { decodePiece, encodePiece, listPieces, pieceRange, type PieceList } from '../net/pieces.ts';
import { FORGED_PAYLOAD, type CommitEntry } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import { encodePeerMessage, parsePeerMessage, MAX_HAVE_HASHES, type PeerMessage, type RefuseReason } from '../protocol/peer-messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { Refusal } from './inbox.ts';
import { PieceScheduler, type PieceAction } from './piece-scheduler.ts';
import { isBucketCopy, openAssembled } from './assembled.ts';
import { readFromStore } from './store-read.ts';
import { SyncError } from './sync.ts';
import type { Traffic } from './traffic.ts';
import type { Changes, Clock } from './waiting.ts';

/**
 * Pieces a peer sends at once; a want beyond it is refused 'busy' at once rather than queued
 * behind them (the asker tries another holder, or this one again after a moment).
 */
export const MAX_CONCURRENT_SERVES = 2;
/** A peer serves at most this many updates' worth of pieces per K+1 of a round: its upload stays bounded by K, not N. */
export const SERVE_FACTOR = 2;

/** Updates' worth a peer serves per round at most: 2(K+1). */
export function servingCap(gatherK: number): number {
  return SERVE_FACTOR * (gatherK + 1);
}

export type GatherMesh = Pick<PeerMesh, 'send' | 'isConnected' | 'connectedPeers'>;

export interface GatherHost {
  key: Hotkey;
  clock: Clock;
  changes: Changes;
  http: HttpClient;
  httpBase: string;
  config(): RunConfig;
  stage(): number;
  mesh(): GatherMesh;
  /** The round whose θ_start we hold, and the coordinator's: messages outside [held − 1, coordRound + 1] are stale. */
  held(): number;
  coordRound(): number;
  traffic: Traffic;
}

interface Held {
  sender: string;
  envelope: Uint8Array;
  payload: Uint8Array;
  /** Its piece list, made when a neighbour first asks for it. */
  list?: PieceList;
  /**
   * Applied but not offered to neighbours: a forged body, or the store's envelope whose piece
   * root is not the commit's (its list would not check against the root askers hold).
   */
  unservable?: boolean;
}

/** One round's side of the exchange. */
class RoundGather {
  /** Whole updates we hold, by payload hash: our own and those gathered for the commit. */
  readonly held = new Map<string, Held>();
  /** Who announced what: payload hash → neighbours. */
  readonly holders = new Map<string, Set<string>>();
  /** Hashes each neighbour announced (a flood bound). */
  readonly announcedBy = new Map<string, number>();
  /** The commit's transfers (made when the gather starts). */
  pieces: PieceScheduler | null = null;
  /** Bumped by everything that may let a transfer move (a list, a piece, a refusal, a link, the store). */
  version = 0;
  /** Updates' worth served (a piece counts its share of its update), and the bytes. */
  served = 0;
  servedBytes = 0;
  refusedBusy = 0;
}

/** What gathering a commit's updates took. */
export interface Gathered {
  payloads: Uint8Array[];
  /** Updates gathered wholly from neighbours, and with at least one piece from the store. */
  fromPeers: number;
  fromStore: number;
  /** Senders whose envelope in the store is not the one their committed piece root names (applied all the same: store-read.ts). */
  badRoots: string[];
}

export class Gather {
  private readonly rounds = new Map<number, RoundGather>();
  /** Pieces being sent to neighbours now. */
  private serving = 0;

  constructor(private readonly h: GatherHost) {}

  /** Updates held now, every round together (at most K + 1 once a commit's gather starts). */
  get heldCount(): number {
    let n = 0;
    for (const g of this.rounds.values()) n += g.held.size;
    return n;
  }

  /** Updates' worth of round r served to neighbours (2 decimals), and wants refused 'busy' or 'spent'. */
  servedIn(r: number): { served: number; refusedBusy: number } {
    const g = this.rounds.get(r);
    return { served: Math.round((g?.served ?? 0) * 100) / 100, refusedBusy: g?.refusedBusy ?? 0 };
  }

  private roundOf(r: number): RoundGather {
    let g = this.rounds.get(r);
    if (!g) this.rounds.set(r, (g = new RoundGather()));
    return g;
  }

  /** Forgets every round before `r`. */
  private dropBefore(r: number): void {
    for (const k of [...this.rounds.keys()]) if (k < r) this.rounds.delete(k);
  }

  private changed(g: RoundGather): void {
    g.version++;
    this.h.changes.notify();
  }

  // ---- our own update ----

  /**
   * Our update of round r, as sent to the store (its envelope); offered to neighbours once the
   * store accepts it. Returns its piece list (made now: neighbours will ask for it, and a
   * bucket upload signs its root).
   */
  own(r: number, hash: string, envelope: Uint8Array): PieceList {
    this.dropBefore(r - 1); // the previous round's committed K stay a round longer: slower neighbours may still want them
    // The payload as a view into the envelope: one copy of the update in memory, not two.
    const { payloadLength } = peekEnvelope(envelope);
    const end = envelope.length - SIGNATURE_BYTES;
    const list = listPieces(envelope);
    this.roundOf(r).held.set(hash, { sender: this.h.key.address, envelope, payload: envelope.subarray(end - payloadLength, end), list });
    return list;
  }

  /** The store holds our update of round r: tell our neighbours; says how many were told (0 if it is not ours). */
  accepted(r: number, hash: string): number {
    if (!this.rounds.get(r)?.held.has(hash)) return 0;
    const peers = this.h.mesh().connectedPeers;
    for (const p of peers) this.send(p, { type: 'have', round: r, hashes: [hash] });
    return peers.length;
  }

  /** A neighbour's link came up: what we hold of the current rounds, so it can ask us. */
  linkUp(peer: string): void {
    for (const [round, g] of this.rounds) {
      const hashes = [...g.held].filter(([, u]) => !u.unservable).map(([hash]) => hash).slice(0, MAX_HAVE_HASHES);
      if (hashes.length > 0) this.send(peer, { type: 'have', round, hashes });
    }
  }

  /** A neighbour's link dropped: the pieces it was asked for are asked of others (or the store). */
  linkDown(peer: string): void {
    for (const g of this.rounds.values()) {
      g.pieces?.linkDown(peer);
      this.changed(g);
    }
  }

  // ---- a commit's updates ----

  /** Exactly the committed updates of round r, in the commit's order; throws SyncError when the store lacks one we could not get elsewhere. */
  async collect(r: number, entries: readonly CommitEntry[]): Promise<Gathered> {
    this.dropBefore(r);
    const g = this.roundOf(r);
    const own = this.h.key.address;
    // Our own update stays only if committed: we hold the round's K and nothing else.
    for (const [hash, u] of g.held) if (u.sender === own && !entries.some((e) => e.hash === hash)) g.held.delete(hash);
    const config = this.h.config();
    const sched = (g.pieces = new PieceScheduler({ now: () => this.h.clock.now(), maxEnvelopeBytes: maxEnvelopeBytes(config.maxMessageBytes) }));
    // One transfer per distinct payload (a copier's re-signed update has its original's hash).
    const pending = new Map<string, CommitEntry>();
    for (const e of entries) if (!g.held.has(e.hash) && !pending.has(e.hash)) pending.set(e.hash, e);
    let fromPeers = 0;
    let fromStore = 0;
    let storeError: unknown = null;
    const badRoots = new Set<string>();
    const storeReads = new Set<Promise<void>>();
    const perform = (a: PieceAction) => {
      if (a.type === 'want-list') return void this.send(a.peer, { type: 'want-list', round: r, hash: a.hash });
      if (a.type === 'want') return void this.send(a.peer, { type: 'want', round: r, hash: a.hash, piece: a.piece });
      const e = pending.get(a.hash)!;
      const read = readFromStore(this.h, r, sched, e, a.pieces, () => badRoots.add(a.hash))
        .catch((e: unknown) => void (storeError ??= e))
        .finally(() => {
          storeReads.delete(read);
          this.changed(g);
        });
      storeReads.add(read);
    };
    for (const e of pending.values()) {
      sched.start(e.hash, e.pieces ?? '');
      // A commit saved before pieces names no root: such an update comes whole from the store.
      if (e.pieces === undefined) {
        sched.toStoreWhole(e.hash);
        perform({ type: 'store', hash: e.hash, pieces: null });
      }
    }
    const holders = (hash: string) => {
      const mesh = this.h.mesh();
      return [...(g.holders.get(hash) ?? [])].filter((p) => mesh.isConnected(p)).sort();
    };
    while (pending.size > 0) {
      if (storeError) throw storeError;
      for (const a of sched.plan(holders)) perform(a);
      for (const [hash, e] of pending) {
        const bytes = sched.assembled(hash);
        if (!bytes) continue;
        const whole = sched.wholeFromStore(hash);
        if (!whole && !isBucketCopy(e, bytes)) {
          badRoots.add(hash);
          sched.toStoreWhole(hash);
          perform({ type: 'store', hash, pieces: null });
          continue;
        }
        if (!this.keepAssembled(r, g, e, bytes, whole)) {
          // Every piece matched a list that hashed to the commit's root, yet the whole does not
          // open as committed: only a wrong root (or a forged body) does that. The store's
          // envelope, whole, once: it decides, as on every replica that reads it.
          if (whole) throw new SyncError(`the coordinator's copy of ${e.sender}'s round-${r} update does not open as its commit says`);
          sched.toStoreWhole(hash);
          perform({ type: 'store', hash, pieces: null });
          continue;
        }
        if (sched.sources(hash).store > 0) fromStore++;
        else fromPeers++;
        sched.finish(hash);
        pending.delete(hash);
        const kept = g.held.get(hash)!;
        if (kept.payload === FORGED_PAYLOAD || badRoots.has(hash)) kept.unservable = true;
        else this.announce(r, hash);
      }
      if (pending.size === 0) break;
      const seen = g.version;
      const wake = sched.wakeAt();
      const timeout = wake === null ? Infinity : Math.max(1, wake - this.h.clock.now());
      const until = this.h.clock.now() + timeout;
      if (!(await this.h.changes.until(() => g.version !== seen, timeout)) && this.h.clock.now() < until) {
        // Interrupted (stopping now, or the coordinator is gone): what is missing comes from
        // the store, as it always could; wait for those reads rather than for neighbours.
        sched.allToStore().forEach(perform);
        await Promise.all([...storeReads]);
      }
    }
    const bad = entries.filter((e) => badRoots.has(e.hash)).map((e) => e.sender);
    return { payloads: entries.map((e) => g.held.get(e.hash)!.payload), fromPeers, fromStore, badRoots: bad };
  }

  /** The assembled envelope of entry `e`, opened whole and checked against the commit (assembled.ts): kept, or false. */
  private keepAssembled(r: number, g: RoundGather, e: CommitEntry, bytes: Uint8Array, fromStore: boolean): boolean {
    const opened = openAssembled(this.h.config(), this.h.stage(), r, e, bytes, fromStore);
    if (opened) g.held.set(e.hash, { ...opened, envelope: bytes });
    return opened !== null;
  }

  /** Tells our neighbours we hold `hash` of round r (they may ask us for it). */
  private announce(r: number, hash: string): void {
    for (const p of this.h.mesh().connectedPeers) this.send(p, { type: 'have', round: r, hashes: [hash] });
  }

  // ---- what neighbours send, admitted by the inbox ----

  /** A 'piece' envelope from neighbour `from` (signed by it, checked by the inbox): kept only if it answers one of our wants and matches its hash. */
  admitPiece(from: string, header: EnvelopeHeader, payload: Uint8Array): Refusal | null {
    const piece = decodePiece(payload);
    if (!piece) return { reason: 'gather-malformed', message: `a piece of ${payload.length} bytes, shorter than its header` };
    const g = this.rounds.get(header.round);
    if (!g?.pieces) return g?.held.has(piece.hash) ? null : { reason: 'unasked', message: `a piece of round ${header.round}, which we are not gathering` };
    const refusal = g.pieces.onPiece(from, piece.hash, piece.index, piece.data);
    this.changed(g);
    return refusal;
  }

  /** A neighbour's have/want-list/list/want/refuse (the payload of its signed 'gather' envelope). */
  admitMessage(from: string, payload: Uint8Array): Refusal | null {
    const m = parsePeerMessage(payload);
    if (!m) return { reason: 'gather-malformed', message: 'a gather message that does not parse' };
    const held = this.h.held();
    if (m.round > this.h.coordRound() + 1) return { reason: 'stale-round', message: `a '${m.type}' for round ${m.round}; we are at round ${held}` };
    switch (m.type) {
      case 'have':
        // A slower neighbour's news of a round we are past is no use, and no fault: ignored.
        return m.round + 1 < held ? null : this.heard(from, m.round, m.hashes);
      case 'want-list':
        this.serveList(from, m.round, m.hash);
        return null;
      case 'want':
        this.servePiece(from, m.round, m.hash, m.piece);
        return null;
      case 'list':
      case 'refuse': {
        const g = this.rounds.get(m.round);
        if (!g?.pieces) return { reason: 'unasked', message: `a '${m.type}' of round ${m.round}, which we are not gathering` };
        const refusal =
          m.type === 'list'
            ? g.pieces.onList(from, m.hash, { bytes: m.bytes, pieceBytes: m.pieceBytes, hashes: m.pieces })
            : g.pieces.onRefuse(from, m.hash, m.piece, m.reason);
        this.changed(g);
        return refusal;
      }
    }
  }

  private heard(from: string, round: number, hashes: readonly string[]): Refusal | null {
    const g = this.roundOf(round);
    const count = (g.announcedBy.get(from) ?? 0) + hashes.length;
    const most = this.h.config().gatherK + 1; // its own and the committed K
    if (count > most) return { reason: 'gather-flood', message: `${from} announced more than ${most} updates of round ${round}` };
    g.announcedBy.set(from, count);
    for (const hash of hashes) {
      const set = g.holders.get(hash) ?? new Set<string>();
      set.add(from);
      g.holders.set(hash, set);
    }
    this.changed(g);
    return null;
  }

  /** Answers a want-list: the piece list of an update we hold whole (a few hundred bytes; not counted against the cap). */
  private serveList(to: string, round: number, hash: string): void {
    const u = this.rounds.get(round)?.held.get(hash);
    if (!u || u.unservable) return void this.send(to, { type: 'refuse', round, hash, reason: 'missing' });
    u.list ??= listPieces(u.envelope);
    this.send(to, { type: 'list', round, hash, bytes: u.list.bytes, pieceBytes: u.list.pieceBytes, pieces: u.list.hashes });
  }

  /** Answers a want: the piece in a 'piece' envelope while our serving cap lasts and few sends are under way, else a refusal at once. */
  private servePiece(to: string, round: number, hash: string, index: number): void {
    const g = this.rounds.get(round);
    const u = g?.held.get(hash);
    const refuse = (reason: RefuseReason) => this.send(to, { type: 'refuse', round, hash, piece: index, reason });
    if (!g || !u || u.unservable) return void refuse('missing');
    // The asker may have the list from another neighbour: ours is made on the first ask either way.
    u.list ??= listPieces(u.envelope);
    if (index >= u.list.hashes.length) return void refuse('missing');
    const envelopeBytes = u.envelope.length;
    const at = pieceRange(u.list, index);
    const data = u.envelope.subarray(at.start, at.end);
    if (g.servedBytes + data.length > servingCap(this.h.config().gatherK) * envelopeBytes) {
      g.refusedBusy++;
      return void refuse('spent');
    }
    if (this.serving >= MAX_CONCURRENT_SERVES) {
      g.refusedBusy++;
      return void refuse('busy');
    }
    g.servedBytes += data.length;
    g.served += data.length / envelopeBytes;
    this.serving++;
    const envelope = sealEnvelope(this.h.key, { kind: 'piece', run: this.h.config().run, round, stage: this.h.stage() }, encodePiece(hash, index, data));
    void this.h.mesh().send(to, envelope).finally(() => this.serving--);
  }

  /** A gather message to one neighbour (fire and forget: the link keeps the order); false when not linked. */
  private send(to: string, m: PeerMessage): boolean {
    const mesh = this.h.mesh();
    if (!mesh.isConnected(to)) return false;
    const envelope = sealEnvelope(this.h.key, { kind: 'gather', run: this.h.config().run, round: m.round, stage: this.h.stage() }, encodePeerMessage(m));
    void mesh.send(to, envelope);
    return true;
  }
}
