// Which piece of which committed update to ask of which neighbour, and when to turn to the
// store: the gather exchange's transfers as a pure state machine on the caller's clock (no
// I/O; gather.ts performs what plan() returns and feeds back what arrives).
//
// One transfer per committed update we do not hold. It first needs the update's piece list
// (`want-list` to one holder; the list is believed only when it hashes to the commit's root,
// src/net/pieces.ts); then its missing pieces are spread over the holders that announced the
// update, at most ASKS_PER_NEIGHBOUR outstanding per neighbour across every transfer (a
// server sends at most 2 pieces at once to everyone: one ask each leaves room for another
// asker). Every piece is checked against its hash as it arrives and kept in place; so:
// - a neighbour that vanishes (its link drops) or stays silent past PIECE_TIMEOUT_MS loses
//   only the pieces it was asked for: they are asked of another holder (resume);
// - 'busy' keeps a neighbour out for BUSY_BACKOFF_MS; 'spent' (its serving cap) for the rest
//   of the round; 'missing' or a timeout for the rest of this transfer;
// - a bad list or a bad piece is dropped, counted by the caller (the Refusal returned), and
//   its sender is never asked again this round; nothing already checked is lost;
// - a transfer that has had no neighbour to ask and nothing in flight for STALL_MS takes its
//   missing pieces from the store (`store` with their indices; the whole envelope when no list
//   is known yet). A piece answered late is still taken if it checks and is still missing.
// Environment-free; test/contributor/piece-scheduler.test.ts drives it on a fake clock.
import { checkPieceList, pieceCount, pieceMatches, pieceRange, type PieceList } from '../net/pieces.ts';
import type { RefuseReason } from '../protocol/peer-messages.ts';
import type { Refusal } from './inbox.ts';

/** How long a neighbour gets to send an asked piece (or list): 1 MiB takes ~0.4 s on a 20 Mbit/s uplink, behind at most one other. */
export const PIECE_TIMEOUT_MS = 10_000;
/** How long a neighbour that answered 'busy' (sending its most at once) is left alone. */
export const BUSY_BACKOFF_MS = 1000;
/** Asks (pieces or lists) outstanding to one neighbour at once, over all transfers. */
export const ASKS_PER_NEIGHBOUR = 1;
/** How long a transfer waits with no neighbour to ask and nothing in flight before it takes the store. */
export const STALL_MS = 2000;

export type PieceAction =
  | { type: 'want-list'; peer: string; hash: string }
  | { type: 'want'; peer: string; hash: string; piece: number }
  /** From the run's update store: these pieces (byte ranges of the list), or the whole envelope when `pieces` is null. */
  | { type: 'store'; hash: string; pieces: number[] | null };

interface Ask {
  peer: string;
  at: number;
}

class Transfer {
  list: PieceList | null = null;
  bytes: Uint8Array | null = null;
  /** Per piece: null missing, an Ask while asked, 'done' once checked and kept. */
  pieces: (Ask | 'done' | null)[] = [];
  listAsk: Ask | null = null;
  /** Neighbours not to ask again for this update (they said 'missing' or timed out). */
  readonly excluded = new Set<string>();
  /** The store is fetching what is missing (nothing more is asked of neighbours). */
  fromStore = false;
  /** Last time the transfer had a neighbour to ask or something in flight. */
  lastHope: number;
  /** Pieces taken from neighbours and from the store. */
  piecesFromPeers = 0;
  piecesFromStore = 0;
  /** The bytes are the store's envelope read whole (storeWhole): what every replica reading the store gets. */
  wholeFromStore = false;

  constructor(
    readonly hash: string,
    readonly root: string,
    now: number,
  ) {
    this.lastHope = now;
  }

  get complete(): boolean {
    return this.list !== null && this.pieces.every((p) => p === 'done');
  }

  inFlight(): number {
    return this.pieces.filter((p) => p !== null && p !== 'done').length + (this.listAsk ? 1 : 0);
  }

  missing(): number[] {
    return this.pieces.flatMap((p, i) => (p === null ? [i] : []));
  }
}

export interface SchedulerOptions {
  now(): number;
  /** Largest envelope the run allows: a list declaring more is refused before anything is allocated. */
  maxEnvelopeBytes: number;
}

export class PieceScheduler {
  private readonly transfers = new Map<string, Transfer>();
  /** Neighbours that sent a bad list or piece: never asked again this round. */
  private readonly bad = new Set<string>();
  /** Neighbours whose serving cap for the round is spent. */
  private readonly spent = new Set<string>();
  private readonly busyUntil = new Map<string, number>();
  /** Every "peer/hash/piece" asked (piece -1: the list): an answer to one of them is never blamed. */
  private readonly askedEver = new Set<string>();

  constructor(private readonly o: SchedulerOptions) {}

  /** Starts gathering the update with payload hash `hash`, whose piece root the commit names. */
  start(hash: string, root: string): void {
    if (!this.transfers.has(hash)) this.transfers.set(hash, new Transfer(hash, root, this.o.now()));
  }

  has(hash: string): boolean {
    return this.transfers.has(hash);
  }

  /** The assembled envelope once every piece is in (checked piece by piece; the caller opens it whole). */
  assembled(hash: string): Uint8Array | null {
    const t = this.transfers.get(hash);
    return t?.complete ? t.bytes : null;
  }

  /** The checked piece list of `hash`, once a neighbour gave one. */
  list(hash: string): PieceList | null {
    return this.transfers.get(hash)?.list ?? null;
  }

  /** Pieces of `hash` taken from neighbours and from the store so far. */
  sources(hash: string): { peers: number; store: number } {
    const t = this.transfers.get(hash);
    return { peers: t?.piecesFromPeers ?? 0, store: t?.piecesFromStore ?? 0 };
  }

  /** Whether the bytes of `hash` are the store's envelope read whole (storeWhole): what every replica reading the store gets. */
  wholeFromStore(hash: string): boolean {
    return this.transfers.get(hash)?.wholeFromStore ?? false;
  }

  /** Forgets a transfer (done, or given up). */
  finish(hash: string): void {
    this.transfers.delete(hash);
  }

  /**
   * Hands the transfer to the store, whole (the caller fetches it): the assembled envelope did
   * not open as the commit says, or the store's pieces do not match the list — only a root
   * that is not the store's envelope's (an author's lie, with a bucket) or a broken store does that.
   */
  toStoreWhole(hash: string): void {
    const t = this.transfers.get(hash);
    if (!t) return;
    t.list = null;
    t.bytes = null;
    t.pieces = [];
    t.listAsk = null;
    t.fromStore = true;
    t.piecesFromPeers = 0;
    t.wholeFromStore = false;
  }

  /**
   * What to do now. `holders(hash)`: the connected neighbours that announced the whole update.
   * Asks returned are taken as sent; a `store` action as started (answer with storePieces or
   * storeWhole).
   */
  plan(holders: (hash: string) => readonly string[]): PieceAction[] {
    const now = this.o.now();
    const actions: PieceAction[] = [];
    const connected = new Set([...this.transfers.keys()].flatMap((h) => holders(h)));
    for (const t of this.transfers.values()) if (!t.complete && !t.fromStore) this.expire(t, now, connected);
    const load = this.load();
    for (const t of this.transfers.values()) {
      if (t.complete || t.fromStore) continue;
      const usable = holders(t.hash).filter((p) => !this.bad.has(p) && !this.spent.has(p) && !t.excluded.has(p) && (this.busyUntil.get(p) ?? -Infinity) <= now);
      if (usable.length > 0 || t.inFlight() > 0) t.lastHope = now;
      else if (now - t.lastHope >= STALL_MS) {
        t.fromStore = true;
        actions.push({ type: 'store', hash: t.hash, pieces: t.list ? t.missing() : null });
        continue;
      }
      const free = () => usable.filter((p) => (load.get(p) ?? 0) < ASKS_PER_NEIGHBOUR).sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || (a < b ? -1 : 1));
      if (!t.list) {
        const peer = t.listAsk ? undefined : free()[0];
        if (peer) {
          t.listAsk = this.ask(peer, t.hash, -1, now, load);
          actions.push({ type: 'want-list', peer, hash: t.hash });
        }
        continue;
      }
      for (const i of t.missing()) {
        const peer = free()[0];
        if (!peer) break;
        t.pieces[i] = this.ask(peer, t.hash, i, now, load);
        actions.push({ type: 'want', peer, hash: t.hash, piece: i });
      }
    }
    return actions;
  }

  /** Every unfinished transfer to the store at once (we are stopping, or the coordinator is gone): the store actions to perform. */
  allToStore(): PieceAction[] {
    const actions: PieceAction[] = [];
    for (const t of this.transfers.values()) {
      if (t.complete || t.fromStore) continue;
      t.fromStore = true;
      t.listAsk = null;
      t.pieces = t.pieces.map((p) => (p === 'done' ? p : null));
      actions.push({ type: 'store', hash: t.hash, pieces: t.list ? t.missing() : null });
    }
    return actions;
  }

  /** When plan() may have something new to do without any message arriving: the earliest timeout, backoff or stall; null: nothing pending. */
  wakeAt(): number | null {
    let at = Infinity;
    for (const t of this.transfers.values()) {
      if (t.complete || t.fromStore) continue;
      if (t.inFlight() === 0) at = Math.min(at, t.lastHope + STALL_MS);
      if (t.listAsk) at = Math.min(at, t.listAsk.at + PIECE_TIMEOUT_MS);
      for (const p of t.pieces) if (p && p !== 'done') at = Math.min(at, p.at + PIECE_TIMEOUT_MS);
    }
    for (const until of this.busyUntil.values()) if (until > this.o.now()) at = Math.min(at, until);
    return Number.isFinite(at) ? at : null;
  }

  /** Neighbour `from` sent the piece list of `hash`: kept when it hashes to the commit's root. */
  onList(from: string, hash: string, list: PieceList): Refusal | null {
    const t = this.transfers.get(hash);
    if (!this.askedEver.has(`${from}/${hash}/-1`)) return { reason: 'unasked', message: `a piece list we did not ask ${from} for` };
    if (t?.listAsk?.peer === from) t.listAsk = null;
    if (!t || t.list || t.fromStore) return null; // a late answer: no fault
    const why = checkPieceList(list, t.root, this.o.maxEnvelopeBytes);
    if (why) {
      this.bad.add(from);
      return { reason: 'bad-piece-list', message: `${from} sent ${why}` };
    }
    t.list = list;
    t.bytes = new Uint8Array(list.bytes);
    t.pieces = Array.from({ length: pieceCount(list.bytes, list.pieceBytes) }, () => null);
    return null;
  }

  /** Neighbour `from` sent piece `index` of `hash`: kept when it matches its hash and is still missing. */
  onPiece(from: string, hash: string, index: number, data: Uint8Array): Refusal | null {
    if (!this.askedEver.has(`${from}/${hash}/${index}`)) return { reason: 'unasked', message: `piece ${index} of ${hash.slice(0, 12)}, which we did not ask ${from} for` };
    const t = this.transfers.get(hash);
    if (!t?.list || t.fromStore) return null; // done, or the store took over: a late answer
    const state = t.pieces[index];
    if (state && state !== 'done' && state.peer === from) t.pieces[index] = null;
    if (!pieceMatches(t.list, index, data)) {
      this.bad.add(from);
      this.dropAsksOf(from);
      return { reason: 'bad-piece', message: `piece ${index} of ${hash.slice(0, 12)} from ${from} does not match its hash` };
    }
    if (t.pieces[index] === 'done') return null;
    t.bytes!.set(data, pieceRange(t.list, index).start);
    t.pieces[index] = 'done';
    t.piecesFromPeers++;
    return null;
  }

  /** Neighbour `from` refused our want of piece `piece` of `hash` (undefined: of its list). */
  onRefuse(from: string, hash: string, piece: number | undefined, reason: RefuseReason): Refusal | null {
    if (!this.askedEver.has(`${from}/${hash}/${piece ?? -1}`)) return { reason: 'unasked', message: `a refusal of a want we did not send ${from}` };
    const t = this.transfers.get(hash);
    if (t) {
      if (piece === undefined && t.listAsk?.peer === from) t.listAsk = null;
      const state = piece === undefined ? undefined : t.pieces[piece];
      if (state && state !== 'done' && state.peer === from) t.pieces[piece!] = null;
      if (reason === 'missing') t.excluded.add(from);
    }
    if (reason === 'busy') this.busyUntil.set(from, this.o.now() + BUSY_BACKOFF_MS);
    if (reason === 'spent') this.spent.add(from);
    return null;
  }

  /** Neighbour `peer`'s link dropped: what it was asked for is missing again (asked of others next plan). */
  linkDown(peer: string): void {
    this.dropAsksOf(peer);
  }

  /** The store's bytes for piece `index` of `hash`: false when they do not match the list (the caller fetches the whole envelope). */
  storePiece(hash: string, index: number, data: Uint8Array): boolean {
    const t = this.transfers.get(hash);
    if (!t?.list) return false;
    if (!pieceMatches(t.list, index, data)) return false;
    if (t.pieces[index] !== 'done') {
      t.bytes!.set(data, pieceRange(t.list, index).start);
      t.pieces[index] = 'done';
      t.piecesFromStore++;
    }
    return true;
  }

  /** The whole envelope from the store (the caller checked it against the commit). */
  storeWhole(hash: string, envelope: Uint8Array, list: PieceList): void {
    const t = this.transfers.get(hash);
    if (!t) return;
    t.piecesFromStore += t.list ? t.pieces.filter((p) => p !== 'done').length : list.hashes.length;
    t.list = list;
    t.bytes = envelope;
    t.pieces = list.hashes.map(() => 'done');
    t.wholeFromStore = true;
  }

  // ---- inside ----

  private ask(peer: string, hash: string, piece: number, now: number, load: Map<string, number>): Ask {
    this.askedEver.add(`${peer}/${hash}/${piece}`);
    load.set(peer, (load.get(peer) ?? 0) + 1);
    return { peer, at: now };
  }

  /** Asks outstanding per neighbour, over every transfer. */
  private load(): Map<string, number> {
    const load = new Map<string, number>();
    const add = (a: Ask) => load.set(a.peer, (load.get(a.peer) ?? 0) + 1);
    for (const t of this.transfers.values()) {
      if (t.listAsk) add(t.listAsk);
      for (const p of t.pieces) if (p && p !== 'done') add(p);
    }
    return load;
  }

  /** Asks past PIECE_TIMEOUT_MS, or of a neighbour no longer linked, go back to missing; a silent neighbour is not asked for this update again. */
  private expire(t: Transfer, now: number, connected: ReadonlySet<string>): void {
    const lapsed = (a: Ask) => now - a.at >= PIECE_TIMEOUT_MS || !connected.has(a.peer);
    if (t.listAsk && lapsed(t.listAsk)) {
      if (connected.has(t.listAsk.peer)) t.excluded.add(t.listAsk.peer);
      t.listAsk = null;
    }
    t.pieces.forEach((p, i) => {
      if (!p || p === 'done' || !lapsed(p)) return;
      if (connected.has(p.peer)) t.excluded.add(p.peer);
      t.pieces[i] = null;
    });
  }

  private dropAsksOf(peer: string): void {
    for (const t of this.transfers.values()) {
      if (t.listAsk?.peer === peer) t.listAsk = null;
      t.pieces.forEach((p, i) => {
        if (p && p !== 'done' && p.peer === peer) t.pieces[i] = null;
      });
    }
  }
}
