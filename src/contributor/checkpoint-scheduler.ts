// Which checkpoint piece to fetch from which neighbour, and when to take one from the store:
// a late joiner's checkpoint fetch as a pure state machine on the caller's clock (no I/O;
// checkpoint-peers.ts performs what plan() returns and feeds back what arrives).
//
// The joiner holds the checkpoint's manifest (checked against the commit) and so every
// piece's length and SHA-256. It asks each linked neighbour once which pieces it holds
// (`which`), then fetches each piece from one holder, range after range (one range
// outstanding per neighbour; the bytes go straight into the checkpoint's buffer), and hands
// the whole piece to the caller to hash. So:
// - a piece that hashes wrong is dropped, counted (the Refusal returned), and its neighbour
//   is not asked again for this checkpoint; the piece is fetched again elsewhere;
// - a neighbour that vanishes, or stays silent past RANGE_TIMEOUT_MS, loses its piece (what
//   it sent of it is dropped: a piece is believed whole from one sender, or not at all); a
//   silent one is not asked again for this checkpoint;
// - 'busy' leaves the neighbour alone for BUSY_BACKOFF_MS (its piece waits for it), 'spent'
//   for the rest of this checkpoint, 'missing' for that piece;
// - a piece with no neighbour to ask (none holds it, or every holder is excluded) for STALL_MS
//   is read from the store (at most STORE_AT_ONCE at a time), so the store serves exactly what
//   the neighbours lack.
// Environment-free; test/contributor/checkpoint-scheduler.test.ts drives it on a fake clock.
import type { RefuseReason } from '../protocol/peer-messages.ts';
import type { Refusal } from './inbox.ts';

/** How long a neighbour gets for one asked range (4 MiB: 1.7 s on a 20 Mbit/s uplink), or to answer `which`. */
export const RANGE_TIMEOUT_MS = 20_000;
/** How long a neighbour that answered 'busy' is left alone. */
export const BUSY_BACKOFF_MS = 1000;
/** How long a piece waits with no neighbour to ask before the store is asked for it. */
export const STALL_MS = 2000;
/** Store reads at once (each a piece, in ranges with resume). */
export const STORE_AT_ONCE = 2;

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
  /** The range asked of `peer` and not yet answered, or null (waiting out a 'busy'). */
  asked: { start: number; end: number } | null;
  /** Last progress with `peer` (ask, range). */
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
}

export interface CheckpointSources {
  piecesFromPeers: number;
  piecesFromStore: number;
  bytesFromPeers: number;
  bytesFromStore: number;
  /** Pieces each neighbour gave. */
  byPeer: Record<string, number>;
}

export class CheckpointScheduler {
  private readonly slots: Slot[];
  /** Neighbours asked `which` (when) and what they answered (null: not yet). */
  private readonly holds = new Map<string, { at: number; pieces: Set<string> | null }>();
  private readonly bad = new Set<string>();
  private readonly silent = new Set<string>();
  private readonly spent = new Set<string>();
  private readonly busyUntil = new Map<string, number>();
  readonly sources: CheckpointSources = { piecesFromPeers: 0, piecesFromStore: 0, bytesFromPeers: 0, bytesFromStore: 0, byPeer: {} };

  constructor(private readonly o: CheckpointSchedulerOptions) {
    const now = o.now();
    this.slots = o.pieces.map((hash, i) => ({
      hash, bytes: o.buffer.subarray(i * o.pieceBytes, Math.min(o.buffer.length, (i + 1) * o.pieceBytes)),
      state: 'missing', peer: null, got: 0, asked: null, at: now, lastHope: now, excluded: new Set(),
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
    const occupied = new Set(this.slots.flatMap((s) => (s.state === 'peer' ? [s.peer!] : [])));
    let storing = this.slots.filter((s) => s.state === 'store').length;
    // A neighbour asked `which` and not silent past RANGE_TIMEOUT_MS may still answer: wait for it.
    const answering = connected.some((p) => this.holds.get(p)?.pieces === null && now - this.holds.get(p)!.at < RANGE_TIMEOUT_MS && !this.silent.has(p));
    for (const [index, s] of this.slots.entries()) {
      if (s.state === 'peer') {
        s.lastHope = now;
        if (!s.asked && (this.busyUntil.get(s.peer!) ?? -Infinity) <= now) actions.push(this.ask(s, index, now));
        continue;
      }
      if (s.state !== 'missing') continue;
      const holders = connected.filter((p) => this.usable(p, s) && this.holds.get(p)?.pieces?.has(s.hash));
      const free = holders.filter((p) => !occupied.has(p) && (this.busyUntil.get(p) ?? -Infinity) <= now);
      if (free.length > 0) {
        const peer = free.sort((a, b) => (this.sources.byPeer[a] ?? 0) - (this.sources.byPeer[b] ?? 0) || (a < b ? -1 : 1))[0];
        occupied.add(peer);
        Object.assign(s, { state: 'peer', peer, got: 0, asked: null, lastHope: now });
        actions.push(this.ask(s, index, now));
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
      if (s.state === 'peer') at = Math.min(at, s.at + RANGE_TIMEOUT_MS);
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
   * Bytes [start, start + data.length) of piece `hash` from `from`: kept when they answer the
   * range asked of it. Returns the piece's index once it is whole (the caller hashes it and
   * calls checked()), a Refusal for bytes nobody asked for, or null.
   */
  onRange(from: string, hash: string, start: number, data: Uint8Array): { whole: number } | Refusal | null {
    const index = this.slots.findIndex((s) => s.hash === hash && s.state === 'peer' && s.peer === from);
    const s = this.slots[index];
    if (!s) return this.slots.some((x) => x.hash === hash) ? null : { reason: 'unasked', message: `a range of ${hash.slice(0, 12)}…, not a piece of the checkpoint we fetch, from ${from}` }; // a late answer: no fault
    if (!s.asked || s.asked.start !== start) return null;
    if (data.length !== s.asked.end - start) {
      const message = `${from} sent ${data.length} bytes of piece ${index} for the ${s.asked.end - start} asked`;
      this.drop(s, from);
      return { reason: 'bad-checkpoint-range', message };
    }
    s.bytes.set(data, start);
    s.got = s.asked.end;
    s.asked = null;
    s.at = this.o.now();
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
      this.drop(s, peer);
      return { reason: 'bad-checkpoint-piece', message: `piece ${index} of the checkpoint from ${peer} does not match the manifest's hash` };
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
    if (s.asked?.start === start) s.asked = null;
    if (reason === 'busy') this.busyUntil.set(from, this.o.now() + BUSY_BACKOFF_MS);
    else {
      if (reason === 'spent') this.spent.add(from);
      else s.excluded.add(from);
      this.release(s);
    }
    return null;
  }

  /** Neighbour `peer`'s link dropped: its piece goes back to missing. */
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

  /** The piece's bytes (a view into the checkpoint's buffer). */
  bytesOf(index: number): Uint8Array {
    return this.slots[index].bytes;
  }

  // ---- inside ----

  private usable(p: string, s: Slot): boolean {
    return !this.bad.has(p) && !this.silent.has(p) && !this.spent.has(p) && !s.excluded.has(p);
  }

  private ask(s: Slot, index: number, now: number): CheckpointAction {
    const end = Math.min(s.bytes.length, s.got + this.o.rangeBytes);
    s.asked = { start: s.got, end };
    s.at = now;
    return { type: 'want', peer: s.peer!, index, hash: s.hash, start: s.got, end };
  }

  private release(s: Slot): void {
    Object.assign(s, { state: 'missing', peer: null, got: 0, asked: null, lastHope: this.o.now() });
  }

  private drop(s: Slot, peer: string): void {
    this.bad.add(peer);
    for (const x of this.slots) if (x.state === 'peer' && x.peer === peer) this.release(x);
    this.release(s);
  }

  /** A neighbour silent past RANGE_TIMEOUT_MS (on a range, or on `which`), or no longer linked, loses its piece. */
  private expire(now: number, linked: ReadonlySet<string>): void {
    const silenced = (peer: string) => {
      if (this.silent.has(peer)) return;
      this.silent.add(peer);
      // The pieces that waited for it wait STALL_MS from now before taking the store.
      for (const s of this.slots) if (s.state === 'missing') s.lastHope = now;
    };
    for (const [peer, h] of this.holds) if (h.pieces === null && now - h.at >= RANGE_TIMEOUT_MS) silenced(peer);
    for (const s of this.slots) {
      if (s.state !== 'peer') continue;
      if (!linked.has(s.peer!)) this.release(s);
      else if (now - s.at >= RANGE_TIMEOUT_MS) {
        if (s.asked) silenced(s.peer!);
        else s.excluded.add(s.peer!); // kept 'busy' that long: another holder, or the store
        this.release(s);
      }
    }
  }
}
