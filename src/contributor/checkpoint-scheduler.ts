// Which checkpoint piece to fetch from which neighbour, and when to take one from the store:
// a late joiner's checkpoint fetch as a pure state machine on the caller's clock (no I/O;
// checkpoint-peers.ts performs what plan() returns and feeds back what arrives).
//
// The joiner holds the checkpoint's manifest (checked against the commit) and so every
// piece's length and SHA-256. It asks each linked neighbour once which pieces it holds
// (`which`), then fetches each piece from one holder, range after range, with up to
// RANGES_IN_FLIGHT_PER_PEER ranges (≤ BYTES_IN_FLIGHT_PER_PEER) asked of a neighbour at once:
// the neighbour seals the next range while one crosses the link, so neither the round trip
// nor its per-range signature and hash leave the link idle. A neighbour's pipeline runs on
// into its next piece before the last ranges of the one before have arrived; the bytes go
// straight into the checkpoint's buffer, and the whole piece is handed to the caller to
// hash. So:
// - a piece that hashes wrong is dropped, counted (the Refusal returned, once per neighbour),
//   and its neighbour is not asked again for this checkpoint (its other pieces go elsewhere
//   too); the piece is fetched again elsewhere;
// - a neighbour that vanishes, or sends nothing past RANGE_TIMEOUT_MS while ranges are asked
//   of it, loses its pieces (what it sent of them is dropped: a piece is believed whole from
//   one sender, or not at all); a silent one is not asked again for this checkpoint;
// - 'busy' leaves the neighbour alone for BUSY_BACKOFF_MS (the refused range is asked of it
//   again then, nothing else twice), 'spent' for the rest of this checkpoint, 'missing' for
//   that piece;
// - a piece with no neighbour to ask (none holds it, or every holder is excluded) for STALL_MS
//   is read from the store (at most STORE_AT_ONCE at a time), so the store serves exactly what
//   the neighbours lack.
// Environment-free; test/contributor/checkpoint-scheduler.test.ts drives it on a fake clock.
import type { RefuseReason } from '../protocol/peer-messages.ts';
import type { Refusal } from './inbox.ts';

/** How long a neighbour with ranges asked of it may send nothing (a 4 MiB range: 1.7 s on a 20 Mbit/s uplink), or take to answer `which`. */
export const RANGE_TIMEOUT_MS = 20_000;
/** How long a neighbour that answered 'busy' is left alone. */
export const BUSY_BACKOFF_MS = 1000;
/** How long a piece waits with no neighbour to ask before the store is asked for it. */
export const STALL_MS = 2000;
/** Store reads at once (each a piece, in ranges with resume). */
export const STORE_AT_ONCE = 2;
/**
 * Ranges asked of one neighbour at once. One at a time left the link idle for a round trip and
 * the neighbour's sealing of each range (a peer fetch ran at 5–10 MB/s on loopback); the
 * neighbour serves up to this many to one asker at once (checkpoint-peers.ts).
 */
export const RANGES_IN_FLIGHT_PER_PEER = 4;
/** Bytes asked of one neighbour at once: what its send queue and our reassembly may hold for us (4 ranges of 4 MiB). */
export const BYTES_IN_FLIGHT_PER_PEER = 16 * 1024 * 1024;

export type CheckpointAction =
  | { type: 'which'; peer: string }
  | { type: 'want'; peer: string; index: number; hash: string; start: number; end: number }
  | { type: 'store'; index: number; hash: string };

interface Slot {
  hash: string;
  /** This piece's bytes inside the checkpoint's buffer. */
  bytes: Uint8Array;
  state: 'missing' | 'peer' | 'checking' | 'store' | 'done';
  peer: string | null;
  /** Bytes received from `peer` so far. */
  got: number;
  /** The first byte not yet asked of `peer`. */
  next: number;
  /** Ranges asked of `peer` and not yet answered: start → end. */
  readonly asked: Map<number, number>;
  /** Ranges `peer` refused 'busy', to ask again once its backoff ends: start → end. */
  readonly again: Map<number, number>;
  /** Last progress with `peer` on this piece (a range asked or received). */
  at: number;
  /** Last time the piece had a neighbour to ask, or one in flight. */
  lastHope: number;
  /** Neighbours that said 'missing' for this piece. */
  readonly excluded: Set<string>;
}

export interface CheckpointSchedulerOptions {
  now(): number;
  /** The manifest's pieces, in order, and the buffer they are written into (totalBytes long). */
  pieces: readonly string[];
  pieceBytes: number;
  buffer: Uint8Array;
  /** Bytes asked at once (≤ MAX_CHECKPOINT_RANGE_BYTES). */
  rangeBytes: number;
  /** Ranges asked of one neighbour at once (RANGES_IN_FLIGHT_PER_PEER). */
  rangesInFlight?: number;
  /** Bytes asked of one neighbour at once (BYTES_IN_FLIGHT_PER_PEER); one range is always allowed. */
  bytesInFlight?: number;
}

export interface CheckpointSources {
  piecesFromPeers: number;
  piecesFromStore: number;
  bytesFromPeers: number;
  bytesFromStore: number;
  /** Pieces each neighbour gave. */
  byPeer: Record<string, number>;
}

/** What is asked of one neighbour now. */
interface Load {
  ranges: number;
  bytes: number;
}

export class CheckpointScheduler {
  private readonly slots: Slot[];
  /** Neighbours asked `which` (when) and what they answered (null: not yet). */
  private readonly holds = new Map<string, { at: number; pieces: Set<string> | null }>();
  private readonly bad = new Set<string>();
  private readonly silent = new Set<string>();
  private readonly spent = new Set<string>();
  private readonly busyUntil = new Map<string, number>();
  /** A neighbour's last progress: a range received from it, or the first asked of it while none was outstanding. */
  private readonly progressAt = new Map<string, number>();
  private readonly rangesInFlight: number;
  private readonly bytesInFlight: number;
  readonly sources: CheckpointSources = { piecesFromPeers: 0, piecesFromStore: 0, bytesFromPeers: 0, bytesFromStore: 0, byPeer: {} };

  constructor(private readonly o: CheckpointSchedulerOptions) {
    const now = o.now();
    this.rangesInFlight = Math.max(1, o.rangesInFlight ?? RANGES_IN_FLIGHT_PER_PEER);
    this.bytesInFlight = o.bytesInFlight ?? BYTES_IN_FLIGHT_PER_PEER;
    this.slots = o.pieces.map((hash, i) => ({
      hash, bytes: o.buffer.subarray(i * o.pieceBytes, Math.min(o.buffer.length, (i + 1) * o.pieceBytes)),
      state: 'missing', peer: null, got: 0, next: 0, asked: new Map(), again: new Map(), at: now, lastHope: now, excluded: new Set(),
    }));
  }

  get complete(): boolean {
    return this.slots.every((s) => s.state === 'done');
  }

  /** What to do now; `connected`: the neighbours linked now. Actions returned are taken as performed. */
  plan(connected: readonly string[]): CheckpointAction[] {
    const now = this.o.now();
    const linked = new Set(connected);
    const actions: CheckpointAction[] = [];
    for (const peer of connected) {
      if (this.holds.has(peer)) continue;
      this.holds.set(peer, { at: now, pieces: null });
      actions.push({ type: 'which', peer });
    }
    this.expire(now, linked);
    const load = new Map<string, Load>();
    const loadOf = (peer: string) => load.get(peer) ?? (load.set(peer, { ranges: 0, bytes: 0 }), load.get(peer)!);
    /** Neighbours whose pieces still have bytes to ask: they take no new piece. */
    const unfinished = new Set<string>();
    for (const s of this.slots) {
      if (s.state !== 'peer') continue;
      const l = loadOf(s.peer!);
      for (const [start, end] of s.asked) {
        l.ranges++;
        l.bytes += end - start;
      }
    }
    // Pieces under way first, oldest first: each neighbour's pipeline filled up to its bounds.
    for (const [index, s] of this.slots.entries()) {
      if (s.state !== 'peer') continue;
      s.lastHope = now;
      const peer = s.peer!;
      if ((this.busyUntil.get(peer) ?? -Infinity) <= now) {
        for (let r = this.nextRange(s); r && this.room(loadOf(peer), r); r = this.nextRange(s)) actions.push(this.ask(s, index, r, loadOf(peer), now));
      }
      if (this.nextRange(s)) unfinished.add(peer);
    }
    let storing = this.slots.filter((s) => s.state === 'store').length;
    // A neighbour asked `which` and not silent past RANGE_TIMEOUT_MS may still answer: wait for it.
    const answering = connected.some((p) => this.holds.get(p)?.pieces === null && now - this.holds.get(p)!.at < RANGE_TIMEOUT_MS && !this.silent.has(p));
    for (const [index, s] of this.slots.entries()) {
      if (s.state !== 'missing') continue;
      const holders = connected.filter((p) => this.usable(p, s) && this.holds.get(p)?.pieces?.has(s.hash));
      const first = { start: 0, end: Math.min(s.bytes.length, this.o.rangeBytes) };
      const free = holders.filter((p) => !unfinished.has(p) && (this.busyUntil.get(p) ?? -Infinity) <= now && this.room(loadOf(p), first));
      if (free.length > 0) {
        const peer = free.sort((a, b) => loadOf(a).ranges - loadOf(b).ranges || (this.sources.byPeer[a] ?? 0) - (this.sources.byPeer[b] ?? 0) || (a < b ? -1 : 1))[0];
        Object.assign(s, { state: 'peer', peer, got: 0, next: 0, lastHope: now });
        for (let r = this.nextRange(s); r && this.room(loadOf(peer), r); r = this.nextRange(s)) actions.push(this.ask(s, index, r, loadOf(peer), now));
        if (this.nextRange(s)) unfinished.add(peer);
        continue;
      }
      if (holders.length > 0 || (answering && now - s.lastHope < STALL_MS)) {
        if (holders.length > 0) s.lastHope = now;
        continue;
      }
      if (now - s.lastHope >= STALL_MS && storing < STORE_AT_ONCE) {
        s.state = 'store';
        storing++;
        actions.push({ type: 'store', index, hash: s.hash });
      }
    }
    return actions;
  }

  /** When plan() may have something new to do without a message arriving, or null. */
  wakeAt(): number | null {
    let at = Infinity;
    const now = this.o.now();
    for (const s of this.slots) {
      if (s.state === 'peer') at = Math.min(at, (s.asked.size > 0 ? (this.progressAt.get(s.peer!) ?? s.at) : s.at) + RANGE_TIMEOUT_MS);
      if (s.state === 'missing') at = Math.min(at, s.lastHope + STALL_MS);
    }
    for (const h of this.holds.values()) if (h.pieces === null) at = Math.min(at, h.at + RANGE_TIMEOUT_MS);
    for (const until of this.busyUntil.values()) if (until > now) at = Math.min(at, until);
    return Number.isFinite(at) ? at : null;
  }

  /** Neighbour `from` answered `which` with the hashes it holds (others than the manifest's are ignored). */
  onHolds(from: string, pieces: readonly string[]): Refusal | null {
    const h = this.holds.get(from);
    if (!h) return { reason: 'unasked', message: `a checkpoint holds we did not ask ${from} for` };
    h.pieces = new Set(pieces);
    return null;
  }

  /**
   * Bytes [start, start + data.length) of piece `hash` from `from`: kept when they answer a
   * range asked of it. Returns the piece's index once it is whole (the caller hashes it and
   * calls checked()), a Refusal for bytes nobody asked for, or null.
   */
  onRange(from: string, hash: string, start: number, data: Uint8Array): { whole: number } | Refusal | null {
    const index = this.slots.findIndex((s) => s.hash === hash && s.state === 'peer' && s.peer === from);
    const s = this.slots[index];
    if (!s) return this.slots.some((x) => x.hash === hash) ? null : { reason: 'unasked', message: `a range of ${hash.slice(0, 12)}…, not a piece of the checkpoint we fetch, from ${from}` }; // a late answer: no fault
    const end = s.asked.get(start);
    if (end === undefined) return null;
    if (data.length !== end - start) {
      const message = `${from} sent ${data.length} bytes of piece ${index} for the ${end - start} asked`;
      this.drop(s, from);
      return { reason: 'bad-checkpoint-range', message };
    }
    s.bytes.set(data, start);
    s.asked.delete(start);
    s.got += data.length;
    s.at = this.o.now();
    this.progressAt.set(from, s.at);
    if (s.got < s.bytes.length) return null;
    s.state = 'checking';
    return { whole: index };
  }

  /** The caller hashed piece `index` (whole from its neighbour): kept, or dropped and its sender never asked again. */
  checked(index: number, ok: boolean): Refusal | null {
    const s = this.slots[index];
    if (s?.state !== 'checking') return null;
    const peer = s.peer!;
    if (!ok) {
      // Blamed once: its other pieces in hand when the first failed were in flight together.
      const blamed = this.bad.has(peer);
      this.drop(s, peer);
      return blamed ? null : { reason: 'bad-checkpoint-piece', message: `piece ${index} of the checkpoint from ${peer} does not match the manifest's hash` };
    }
    s.state = 'done';
    this.sources.piecesFromPeers++;
    this.sources.bytesFromPeers += s.bytes.length;
    this.sources.byPeer[peer] = (this.sources.byPeer[peer] ?? 0) + 1;
    return null;
  }

  /** Neighbour `from` refused the range of `hash` at `start`. */
  onRefuse(from: string, hash: string, start: number, reason: RefuseReason): Refusal | null {
    const s = this.slots.find((x) => x.hash === hash && x.state === 'peer' && x.peer === from);
    if (!s) return null; // late, or about a piece we no longer ask it for
    const end = s.asked.get(start);
    if (end === undefined) return null; // not a range outstanding
    s.asked.delete(start);
    if (reason === 'busy') {
      s.again.set(start, end);
      this.busyUntil.set(from, this.o.now() + BUSY_BACKOFF_MS);
    } else if (reason === 'spent') {
      this.spent.add(from);
      for (const x of this.slots) if (x.state === 'peer' && x.peer === from) this.release(x);
    } else {
      s.excluded.add(from);
      this.release(s);
    }
    return null;
  }

  /** Neighbour `peer`'s link dropped: its pieces go back to missing. */
  linkDown(peer: string): void {
    for (const s of this.slots) if (s.state === 'peer' && s.peer === peer) this.release(s);
    this.holds.delete(peer); // asked again should it come back
  }

  /** The store's piece `index`, checked by the caller against its hash. */
  fromStore(index: number): void {
    const s = this.slots[index];
    if (s.state !== 'store') return;
    s.state = 'done';
    this.sources.piecesFromStore++;
    this.sources.bytesFromStore += s.bytes.length;
  }

  /** Per piece, where it stands (for tests and the progress line). */
  states(): Slot['state'][] {
    return this.slots.map((s) => s.state);
  }

  /** Ranges asked of each neighbour and not yet answered (for tests). */
  inFlight(): Map<string, Load> {
    const load = new Map<string, Load>();
    for (const s of this.slots) {
      if (s.state !== 'peer') continue;
      const l = load.get(s.peer!) ?? { ranges: 0, bytes: 0 };
      for (const [start, end] of s.asked) {
        l.ranges++;
        l.bytes += end - start;
      }
      load.set(s.peer!, l);
    }
    return load;
  }

  /** The piece's bytes (a view into the checkpoint's buffer). */
  bytesOf(index: number): Uint8Array {
    return this.slots[index].bytes;
  }

  // ---- inside ----

  private usable(p: string, s: Slot): boolean {
    return !this.bad.has(p) && !this.silent.has(p) && !this.spent.has(p) && !s.excluded.has(p);
  }

  /** The next range of `s` to ask of its neighbour: one refused 'busy' first, else the next unasked bytes; null when all are asked. */
  private nextRange(s: Slot): { start: number; end: number } | null {
    for (const [start, end] of s.again) return { start, end };
    return s.next < s.bytes.length ? { start: s.next, end: Math.min(s.bytes.length, s.next + this.o.rangeBytes) } : null;
  }

  /** Whether `r` fits the neighbour's bounds beside what is asked of it (one range always does). */
  private room(l: Load, r: { start: number; end: number }): boolean {
    return l.ranges === 0 || (l.ranges < this.rangesInFlight && l.bytes + (r.end - r.start) <= this.bytesInFlight);
  }

  private ask(s: Slot, index: number, r: { start: number; end: number }, l: Load, now: number): CheckpointAction {
    if (s.again.has(r.start)) s.again.delete(r.start);
    else s.next = r.end;
    s.asked.set(r.start, r.end);
    s.at = now;
    if (l.ranges === 0) this.progressAt.set(s.peer!, now); // asking more of a neighbour that owes ranges is no progress
    l.ranges++;
    l.bytes += r.end - r.start;
    return { type: 'want', peer: s.peer!, index, hash: s.hash, start: r.start, end: r.end };
  }

  private release(s: Slot): void {
    s.asked.clear();
    s.again.clear();
    Object.assign(s, { state: 'missing', peer: null, got: 0, next: 0, lastHope: this.o.now() });
  }

  private drop(s: Slot, peer: string): void {
    this.bad.add(peer);
    for (const x of this.slots) if (x.state === 'peer' && x.peer === peer) this.release(x);
    this.release(s);
  }

  /**
   * A neighbour that sent nothing past RANGE_TIMEOUT_MS while ranges were asked of it (or did
   * not answer `which`), or is no longer linked, loses its pieces; a piece kept waiting on a
   * 'busy' neighbour that long goes to another holder or the store.
   */
  private expire(now: number, linked: ReadonlySet<string>): void {
    const silenced = (peer: string) => {
      if (this.silent.has(peer)) return;
      this.silent.add(peer);
      // The pieces that waited for it wait STALL_MS from now before taking the store.
      for (const s of this.slots) if (s.state === 'missing') s.lastHope = now;
    };
    for (const [peer, h] of this.holds) if (h.pieces === null && now - h.at >= RANGE_TIMEOUT_MS) silenced(peer);
    for (const s of this.slots) if (s.state === 'peer' && s.asked.size > 0 && now - (this.progressAt.get(s.peer!) ?? s.at) >= RANGE_TIMEOUT_MS) silenced(s.peer!);
    for (const s of this.slots) {
      if (s.state !== 'peer') continue;
      if (!linked.has(s.peer!) || this.silent.has(s.peer!)) this.release(s);
      else if (s.asked.size === 0 && now - s.at >= RANGE_TIMEOUT_MS) {
        s.excluded.add(s.peer!); // kept 'busy' that long: another holder, or the store
        this.release(s);
      }
    }
  }
}
